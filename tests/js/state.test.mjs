// The widget's protocol state (static/widget/state.js), driven frame by frame without a browser.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ChatState, Seen } from "../../static/widget/state.js";

const text = (seq, extra = {}) => ({
  seq,
  kind: "text",
  from: "bot",
  ts: 1,
  text: `m${seq}`,
  ...extra,
});
const msg = (seq, extra) => ({ type: "message", message: text(seq, extra) });
const ready = (last_seq, extra = {}) => ({
  type: "ready",
  last_seq,
  epoch: "e1",
  recovered: true,
  max_text_length: 4000,
  ...extra,
});
const types = (effects) => effects.map((e) => e.type);

/** A state past its first `ready`, showing messages 1..n. */
function live(n = 0) {
  const s = new ChatState();
  s.connecting();
  for (let seq = 1; seq <= n; seq++) s.receive(msg(seq));
  s.receive(ready(n));
  return s;
}

/** A `send` that records the frames it is given; `open` says whether the socket is. */
function socket(open = true) {
  const sent = [];
  const send = (frame) => {
    if (!open) return false;
    sent.push(frame);
    return true;
  };
  return { sent, send };
}

describe("replay, ready and seq order", () => {
  test("the replay waits for ready, then shows in order and ends with ready", () => {
    const s = new ChatState();
    s.connecting();
    assert.deepEqual(s.receive(msg(1)), []);
    assert.deepEqual(s.receive({ type: "status", seq: 1, status: "sent" }), []);
    assert.equal(s.messages.size, 0, "nothing applied before ready");
    const effects = s.receive(ready(3));
    assert.deepEqual(types(effects), ["message", "status", "ready"]);
    assert.equal(effects[0].live, false);
    assert.equal(s.lastSeq, 3, "last_seq covers what the server no longer has");
    assert.equal(s.epoch, "e1");
    assert.equal(s.ready, true);
  });

  test("a message seen already, live or replayed again, is dropped", () => {
    const s = live(2);
    assert.deepEqual(s.receive(msg(2)), []);
    assert.deepEqual(s.receive(msg(1)), []);
    const effects = s.receive(msg(3));
    assert.deepEqual(types(effects), ["message"]);
    assert.equal(effects[0].live, true);
    assert.deepEqual(s.receive(msg(3)), []);
    assert.equal(s.messages.size, 3);
  });

  test("a live seq that skips one asks for a reconnect after the last seq and keeps nothing", () => {
    const s = live(2);
    assert.deepEqual(s.receive(msg(4)), [{ type: "gap", after: 2 }]);
    assert.equal(s.lastSeq, 2);
    assert.equal(s.messages.has(4), false);
    // The reconnect's replay fills the hole: 3 and 4 both shown, in order.
    s.closed();
    s.connecting();
    s.receive(msg(3));
    s.receive(msg(4));
    const effects = s.receive(ready(4));
    assert.deepEqual(
      effects.filter((e) => e.type === "message").map((e) => e.message.seq),
      [3, 4],
    );
  });

  test("a replay may start past 1 (trimmed history) without counting as a gap", () => {
    const s = new ChatState();
    s.connecting();
    s.receive(msg(5));
    assert.deepEqual(types(s.receive(ready(5, { recovered: false }))), [
      "reset",
      "message",
      "ready",
    ]);
    assert.equal(s.lastSeq, 5);
  });

  test("recovered: false replaces everything shown, answers and statuses included", () => {
    const s = live(3);
    s.receive(msg(4, { from: "user", reply_to: { seq: 2, option_id: "a" } }));
    s.receive({ type: "status", seq: 4, status: "failed" });
    s.closed();
    s.connecting();
    s.receive(msg(1)); // another history (a restarted server): seq 1 again
    const effects = s.receive(ready(1, { recovered: false, epoch: "e2" }));
    assert.equal(effects[0].type, "reset");
    assert.deepEqual([...s.messages.keys()], [1]);
    assert.equal(s.answered.size, 0);
    assert.equal(s.statuses.size, 0);
    assert.equal(s.lastSeq, 1);
    assert.equal(s.epoch, "e2");
  });

  test("ready's max_text_length is the limit, counted in code points as the server does", () => {
    const s = live();
    assert.equal(s.maxTextLength, 4000);
    const small = new ChatState();
    small.connecting();
    small.receive(ready(0, { max_text_length: 3 }));
    assert.equal(small.tooLong("🙂🙂🙂"), false, "3 code points, 6 UTF-16 units");
    assert.equal(small.tooLong("abcd"), true);
  });

  test("without a usable max_text_length there is no limit", () => {
    for (const value of [undefined, 0, -1, "4000", 1.5]) {
      const s = new ChatState();
      s.connecting();
      s.receive(ready(0, { max_text_length: value }));
      assert.equal(s.maxTextLength, null, String(value));
      assert.equal(s.tooLong("x".repeat(10000)), false);
    }
  });

  test("frames the widget does not know are ignored", () => {
    const s = live(1);
    assert.deepEqual(s.receive({ type: "presence" }), []);
    assert.deepEqual(s.receive(null), []);
    assert.deepEqual(s.receive({ type: "message", message: { seq: "2" } }), []);
    assert.equal(s.lastSeq, 1);
  });
});

describe("pending sends", () => {
  test("sent once ready; the server's message replaces the local copy", () => {
    const s = live(1);
    const { sent, send } = socket();
    const p = s.addSend("c-00000001", "hello");
    assert.equal(s.transmit(p, send), "sending");
    assert.deepEqual(sent, [{ type: "send", client_msg_id: "c-00000001", text: "hello" }]);
    assert.deepEqual(s.receive({ type: "ack", client_msg_id: "c-00000001", seq: 2 }), []);
    assert.equal(p.state, "acked");
    const effects = s.receive(msg(2, { from: "user", client_msg_id: "c-00000001" }));
    assert.deepEqual(types(effects), ["adopt", "message"]);
    assert.equal(effects[0].pending, p);
    assert.equal(s.pending.size, 0);
  });

  test("an ack after its message (another tab's broadcast came first) adopts at once", () => {
    const s = live(1);
    const p = s.addSend("c-00000002", "hi");
    s.transmit(p, socket().send);
    // The message frame carries the id, so it is adopted already when it comes first.
    assert.deepEqual(types(s.receive(msg(2, { from: "user", client_msg_id: "c-00000002" }))), [
      "adopt",
      "message",
    ]);
    assert.deepEqual(s.receive({ type: "ack", client_msg_id: "c-00000002", seq: 2 }), []);
  });

  test("before ready, or over a closed socket, it waits as unsent", () => {
    const s = new ChatState();
    s.connecting();
    const { sent, send } = socket();
    const early = s.addSend("c-00000003", "early");
    assert.equal(s.transmit(early, send), "unsent");
    assert.deepEqual(sent, [], "nothing goes out before the replay is done");
    s.receive(ready(0));
    const late = s.addSend("c-00000004", "late");
    assert.equal(s.transmit(late, socket(false).send), "unsent");
    assert.deepEqual(s.unsent(), [early, late]);
  });

  test("a drop turns what got no ack into unsent, to go again after the next ready", () => {
    const s = live(0);
    const { send } = socket();
    const acked = s.addSend("c-00000005", "acked");
    const lost = s.addSend("c-00000006", "lost");
    s.transmit(acked, send);
    s.transmit(lost, send);
    s.receive({ type: "ack", client_msg_id: "c-00000005", seq: 1 });
    s.closed();
    assert.equal(s.ready, false);
    assert.deepEqual(s.unsent(), [lost]);
    assert.equal(acked.state, "acked");
  });

  test("a refused send is dropped, with the server's reason", () => {
    const s = live(0);
    const p = s.addSend("c-00000007", "x".repeat(5000));
    s.transmit(p, socket().send);
    const effects = s.receive({
      type: "error",
      client_msg_id: "c-00000007",
      error: { code: "text_too_long", detail: "at most 4000 characters" },
    });
    assert.deepEqual(effects, [
      { type: "refused", code: "text_too_long", detail: "at most 4000 characters" },
      { type: "drop", pending: p },
    ]);
    assert.equal(s.pending.size, 0);
  });
});

describe("choices", () => {
  const choices = { seq: 1, kind: "choices", sections: [{ options: [{ id: "a", label: "A" }] }] };
  const option = choices.sections[0].options[0];

  test("one pick at a time; the reply's reply_to answers it for good", () => {
    const s = live(0);
    s.receive({ type: "message", message: choices });
    const p = s.addChoose("c-00000010", choices, option);
    assert.equal(s.transmit(p, socket().send), "sending");
    assert.equal(s.canChoose(1), false, "in flight");
    assert.equal(s.addChoose("c-00000011", choices, option), null);
    const reply = {
      from: "user",
      client_msg_id: "c-00000010",
      reply_to: { seq: 1, option_id: "a" },
    };
    const effects = s.receive(msg(2, reply));
    assert.deepEqual(types(effects), ["adopt", "message", "answered"]);
    assert.equal(s.answered.get(1), "a");
    assert.equal(s.canChoose(1), false, "answered");
  });

  test("an answer from another tab locks it too, and a refused pick unlocks it", () => {
    const s = live(0);
    s.receive({ type: "message", message: choices });
    const p = s.addChoose("c-00000012", choices, option);
    s.transmit(p, socket().send);
    const effects = s.receive({
      type: "error",
      client_msg_id: "c-00000012",
      error: { code: "store_unavailable", detail: "later" },
    });
    assert.deepEqual(types(effects), ["refused", "drop"]);
    assert.equal(s.canChoose(1), true);
    s.receive(msg(2, { from: "user", reply_to: { seq: 1, option_id: "a" } }));
    assert.equal(s.canChoose(1), false);
  });
});

describe("retry of a failed message", () => {
  /** Message 1 is the person's, and its delivery failed. */
  function failed() {
    const s = live(0);
    s.receive(msg(1, { from: "user", client_msg_id: "c-00000020" }));
    s.receive({ type: "status", seq: 1, status: "failed", detail: "HTTP 500" });
    return s;
  }

  test("goes out as a retry frame and shows sending until the server's status", () => {
    const s = failed();
    const { sent, send } = socket();
    assert.equal(s.retry(1, send), true);
    assert.deepEqual(sent, [{ type: "retry", seq: 1 }]);
    assert.equal(s.statuses.get(1).status, "sending");
    assert.equal(s.retry(1, send), false, "not twice while unanswered");
    assert.deepEqual(s.receive({ type: "status", seq: 1, status: "sent" }), [
      { type: "status", seq: 1 },
    ]);
    assert.equal(s.statuses.get(1).status, "sent");
    assert.equal(s.retrying.size, 0);
  });

  test("over a closed socket nothing changes: still failed, still retryable", () => {
    const s = failed();
    assert.equal(s.retry(1, socket(false).send), false);
    assert.deepEqual(s.statuses.get(1), { status: "failed", detail: "HTTP 500" });
    assert.equal(s.canRetry(1), true);
    s.closed();
    assert.equal(s.retry(1, socket().send), false, "not before the next ready either");
  });

  test("only a failed message is retried", () => {
    const s = live(0);
    s.receive(msg(1, { from: "user" }));
    assert.equal(s.retry(1, socket().send), false, "no status yet");
    s.receive({ type: "status", seq: 1, status: "sent" });
    assert.equal(s.retry(1, socket().send), false);
  });

  test("refused as not_failed: the status it had comes back, without its Retry", () => {
    const s = failed();
    s.retry(1, socket().send);
    const effects = s.receive({
      type: "error",
      seq: 1,
      error: { code: "not_failed", detail: "message 1 has not failed here; nothing to retry" },
    });
    assert.deepEqual(types(effects), ["refused", "status"]);
    assert.equal(effects[0].code, "not_failed");
    assert.equal(s.statuses.get(1).status, "failed", "not left as sending");
    assert.equal(s.canRetry(1), false);
    assert.equal(s.retry(1, socket().send), false);
    // The server's next word on it stands, and may make it retryable again.
    s.receive({ type: "status", seq: 1, status: "failed" });
    assert.equal(s.canRetry(1), true);
  });

  test("a status frame that beat the refusal is kept", () => {
    const s = failed();
    s.retry(1, socket().send);
    s.receive({ type: "status", seq: 1, status: "sending" }); // another tab's retry went through
    const effects = s.receive({ type: "error", seq: 1, error: { code: "not_failed" } });
    assert.deepEqual(types(effects), ["refused"]);
    assert.equal(s.statuses.get(1).status, "sending");
  });

  test("refused for another reason, it is failed and retryable again", () => {
    const s = failed();
    s.retry(1, socket().send);
    s.receive({ type: "error", seq: 1, error: { code: "rate_limited", detail: "slow down" } });
    assert.equal(s.statuses.get(1).status, "failed");
    assert.equal(s.canRetry(1), true);
  });

  test("an error naming no message, or a drop, gives unanswered retries their status back", () => {
    const s = failed();
    s.retry(1, socket().send);
    s.receive({ type: "error", error: { code: "store_unavailable", detail: "later" } });
    assert.equal(s.statuses.get(1).status, "failed");
    s.retry(1, socket().send);
    assert.deepEqual(s.closed(), [{ type: "status", seq: 1 }]);
    assert.equal(s.statuses.get(1).status, "failed");
    assert.equal(s.canRetry(1), true);
  });
});

describe("unread and what was seen", () => {
  function store(initial = {}) {
    const data = { ...initial };
    return {
      data,
      getItem: (k) => (k in data ? data[k] : null),
      setItem: (k, v) => {
        data[k] = v;
      },
    };
  }

  test("counts others' messages after the last one seen", () => {
    const s = live(0);
    s.receive(msg(1));
    s.receive(msg(2, { from: "user" }));
    s.receive(msg(3));
    assert.equal(s.unreadAfter(0), 2);
    assert.equal(s.unreadAfter(1), 1);
    assert.equal(s.unreadAfter(3), 0);
  });

  test("what was seen survives a reload in the same history, not in another", () => {
    const kept = store();
    const seen = new Seen(kept, "k");
    seen.epochIs("e1");
    seen.upTo(4);
    seen.upTo(2); // never backwards
    assert.equal(kept.data.k, "e1:4");
    const again = new Seen(kept, "k");
    again.epochIs("e1");
    assert.equal(again.seq, 4);
    again.epochIs("e2");
    assert.equal(again.seq, 0);
  });

  test("storage that refuses, or is missing, is no error", () => {
    const refusing = {
      getItem: () => null,
      setItem: () => {
        throw new Error("QuotaExceededError");
      },
    };
    const seen = new Seen(refusing, "k");
    seen.upTo(3);
    assert.equal(seen.seq, 3);
    const none = new Seen(null, "k");
    none.upTo(1);
    assert.equal(none.seq, 1);
  });
});
