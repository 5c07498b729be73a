// The typing indicator's rule (static/widget/typing.js), from the session's messages.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  DEFAULT_TYPING_TIMEOUT_MS,
  typingTimeoutMs,
  typingUntil,
} from "../../static/widget/typing.js";

const NOW = 1_800_000_000_000; // ms
const msg = (seq, from, secondsAgo) => ({ seq, from, ts: (NOW - secondsAgo * 1000) / 1000 });
const session = (...list) => new Map(list.map((m) => [m.seq, m]));
const until = (opts) =>
  typingUntil({ statuses: new Map(), pending: [], now: NOW, timeoutMs: 20000, ...opts });

describe("typing indicator", () => {
  test("the person's message is the last one and younger than the timeout: shown", () => {
    const messages = session(msg(1, "bot", 60), msg(2, "user", 5));
    assert.equal(until({ messages }), NOW + 15000);
  });

  test("the bot answered: not shown", () => {
    assert.equal(until({ messages: session(msg(1, "user", 5), msg(2, "bot", 1)) }), null);
    assert.equal(until({ messages: session(msg(1, "user", 5), msg(2, "system", 1)) }), null);
  });

  test("older than the timeout: not shown", () => {
    assert.equal(until({ messages: session(msg(1, "user", 20)) }), null);
    assert.equal(until({ messages: session(msg(1, "user", 30)) }), null);
  });

  test("the last message is decided by seq, not by arrival order", () => {
    const messages = new Map([
      [3, msg(3, "bot", 1)],
      [2, msg(2, "user", 5)],
    ]);
    assert.equal(until({ messages }), null);
  });

  test("a message that failed to reach the bot gets no indicator", () => {
    const statuses = new Map([[1, { status: "failed" }]]);
    assert.equal(until({ messages: session(msg(1, "user", 2)), statuses }), null);
  });

  test("this tab's own send on the way counts from when it was sent", () => {
    const messages = session(msg(1, "bot", 60));
    const pending = [{ state: "sending", since: NOW - 4000 }];
    assert.equal(until({ messages, pending }), NOW + 16000);
  });

  test("a send waiting for the connection is not the bot typing", () => {
    const pending = [{ state: "unsent", since: NOW - 1000 }];
    assert.equal(until({ messages: session(msg(1, "bot", 60)), pending }), null);
  });

  test("a server clock ahead of ours never makes it last longer than the timeout", () => {
    assert.equal(until({ messages: session(msg(1, "user", -30)) }), NOW + 20000);
  });

  test("a timeout of 0 turns it off; the option is in seconds", () => {
    assert.equal(until({ messages: session(msg(1, "user", 1)), timeoutMs: 0 }), null);
    assert.equal(typingTimeoutMs(undefined), DEFAULT_TYPING_TIMEOUT_MS);
    assert.equal(typingTimeoutMs("7.5"), 7500);
    assert.equal(typingTimeoutMs("0"), 0);
    assert.equal(typingTimeoutMs("soon"), DEFAULT_TYPING_TIMEOUT_MS);
    assert.equal(typingTimeoutMs("-3"), DEFAULT_TYPING_TIMEOUT_MS);
  });
});
