// Sending while offline (static/widget/state.js): what is written while the connection is
// down waits, goes out in the order written after the next `ready`, with its client_msg_id,
// and the server's message replaces each local copy once. And the page title's count.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { pageTitle } from "../../static/widget/scroll.js";
import { ChatState } from "../../static/widget/state.js";

const ready = (last_seq) => ({ type: "ready", last_seq, epoch: "e1", recovered: true });
const userMsg = (seq, id, text) => ({
  type: "message",
  message: { seq, kind: "text", from: "user", ts: 1, text, client_msg_id: id },
});

function socket() {
  const sent = [];
  let open = false;
  return {
    sent,
    open: () => {
      open = true;
    },
    close: () => {
      open = false;
    },
    send: (frame) => {
      if (!open) return false;
      sent.push(frame);
      return true;
    },
  };
}

describe("offline queue", () => {
  test("written before the first ready: queued, then sent in order", () => {
    const s = new ChatState();
    const ws = socket();
    s.connecting();
    const ps = ["one", "two", "three"].map((w, i) => s.addSend(`id-${i}-xxxx`, w));
    for (const p of ps) assert.equal(s.transmit(p, ws.send), "unsent");
    assert.deepEqual(ws.sent, []);
    ws.open();
    s.receive(ready(0));
    for (const p of s.unsent()) s.transmit(p, ws.send);
    assert.deepEqual(
      ws.sent.map((f) => [f.type, f.client_msg_id, f.text]),
      [
        ["send", "id-0-xxxx", "one"],
        ["send", "id-1-xxxx", "two"],
        ["send", "id-2-xxxx", "three"],
      ],
    );
    assert.deepEqual(s.unsent(), []);
  });

  test("a drop between send and ack sends it again with the same id; one message results", () => {
    const s = new ChatState();
    const ws = socket();
    s.connecting();
    ws.open();
    s.receive(ready(0));
    const a = s.addSend("id-a-xxxx", "a");
    s.transmit(a, ws.send);
    ws.close();
    s.closed(); // no ack came
    const b = s.addSend("id-b-xxxx", "b"); // written while down
    assert.equal(s.transmit(b, ws.send), "unsent");
    assert.deepEqual(
      s.unsent().map((p) => p.id),
      ["id-a-xxxx", "id-b-xxxx"],
    );

    s.connecting();
    ws.open();
    // The server had recorded `a` (seq 1) before the drop: the replay shows it, adopted.
    s.receive(userMsg(1, "id-a-xxxx", "a"));
    const effects = s.receive(ready(1));
    assert.ok(effects.some((e) => e.type === "adopt" && e.pending === a));
    for (const p of s.unsent()) s.transmit(p, ws.send);
    assert.deepEqual(
      ws.sent.map((f) => f.client_msg_id),
      ["id-a-xxxx", "id-b-xxxx"],
      "a went out once before the drop; only b is left to send",
    );
    s.receive({ type: "ack", client_msg_id: "id-b-xxxx", seq: 2 });
    s.receive(userMsg(2, "id-b-xxxx", "b"));
    assert.equal(s.pending.size, 0);
    assert.deepEqual(
      [...s.messages.values()].map((m) => m.text),
      ["a", "b"],
    );
  });

  test("an ack for a resent message, the server's same seq again, shows it once", () => {
    const s = new ChatState();
    const ws = socket();
    s.connecting();
    ws.open();
    s.receive(ready(0));
    const p = s.addSend("id-c-xxxx", "c");
    s.transmit(p, ws.send);
    s.receive({ type: "ack", client_msg_id: "id-c-xxxx", seq: 1 });
    s.receive(userMsg(1, "id-c-xxxx", "c"));
    assert.deepEqual(s.receive(userMsg(1, "id-c-xxxx", "c")), []);
    assert.equal(s.messages.size, 1);
  });

  test("each send knows when it was written (for the typing indicator)", () => {
    const s = new ChatState();
    assert.equal(s.addSend("id-d-xxxx", "d", 1234).since, 1234);
  });
});

describe("page title", () => {
  test("(n) before the page's own title, and only our prefix is ever taken off", () => {
    const doc = { title: "Chat" };
    const show = pageTitle(doc);
    show(2);
    assert.equal(doc.title, "(2) Chat");
    doc.title = "(2) Chat, renamed"; // the page renamed itself meanwhile
    show(3);
    assert.equal(doc.title, "(3) Chat, renamed");
    show(120);
    assert.equal(doc.title, "(99+) Chat, renamed");
    show(0);
    assert.equal(doc.title, "Chat, renamed");
  });
});
