// The socket's life (static/widget/connection.js) with a fake window: URL, back-off, online.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  BACKOFF_MAX_MS,
  backoffDelay,
  Connection,
  socketUrl,
} from "../../static/widget/connection.js";

describe("socketUrl", () => {
  test("ws: or wss: after the server's scheme, the call_id escaped", () => {
    assert.equal(socketUrl("http://b.example:8080", "abc"), "ws://b.example:8080/ws/abc");
    assert.equal(
      socketUrl(new URL("https://b.example/x/"), "a b/c"),
      "wss://b.example/ws/a%20b%2Fc",
    );
  });

  test("continues after the last seq of its epoch, with the token", () => {
    const url = new URL(
      socketUrl("https://b.example", "c", { after: 7, epoch: "e1", token: "t.k" }),
    );
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      after: "7",
      epoch: "e1",
      token: "t.k",
    });
  });

  test("nothing seen yet: no after=", () => {
    const url = new URL(
      socketUrl("https://b.example", "c", { after: 0, epoch: null, token: null }),
    );
    assert.equal(url.search, "");
  });
});

describe("backoffDelay", () => {
  test("doubles from 0.5 s, each delay in the upper half of its step", () => {
    assert.equal(
      backoffDelay(0, () => 0),
      250,
    );
    assert.equal(
      backoffDelay(0, () => 1),
      500,
    );
    assert.equal(
      backoffDelay(3, () => 0),
      2000,
    );
    assert.equal(
      backoffDelay(3, () => 0.5),
      3000,
    );
  });

  test("stops growing at 30 s", () => {
    assert.equal(
      backoffDelay(6, () => 1),
      BACKOFF_MAX_MS,
    );
    assert.equal(
      backoffDelay(50, () => 1),
      BACKOFF_MAX_MS,
    );
    assert.equal(
      backoffDelay(50, () => 0),
      BACKOFF_MAX_MS / 2,
    );
  });
});

/** A window with fake WebSocket and timers; sockets and timers are kept to be driven. */
function fakeWindow({ onLine = true } = {}) {
  const win = { sockets: [], timers: [], listeners: {}, navigator: { onLine } };
  win.WebSocket = class {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.handlers = {};
      win.sockets.push(this);
    }
    addEventListener(type, fn) {
      this.handlers[type] = fn;
    }
    send(data) {
      this.sent.push(data);
    }
    close() {
      this.readyState = 3;
      this.handlers.close?.();
    }
    open() {
      this.readyState = 1;
    }
    serverSays(data) {
      this.handlers.message({ data });
    }
  };
  win.setTimeout = (fn, ms) => win.timers.push({ fn, ms }) - 1;
  win.clearTimeout = (id) => {
    if (id !== null && id !== undefined && win.timers[id]) win.timers[id].fn = null;
  };
  win.addEventListener = (type, fn) => {
    win.listeners[type] = fn;
  };
  win.removeEventListener = (type, fn) => {
    if (win.listeners[type] === fn) delete win.listeners[type];
  };
  win.fire = () => {
    const timer = win.timers.at(-1);
    const fn = timer.fn;
    timer.fn = null;
    fn?.();
  };
  return win;
}

function connection(win) {
  const log = { frames: [], states: [], closes: 0, openings: 0 };
  let n = 0;
  const conn = new Connection(
    {
      url: () => `ws://b.example/ws/c?n=${n++}`,
      onOpening: () => log.openings++,
      onFrame: (f) => log.frames.push(f),
      onClose: () => log.closes++,
      onState: (s) => log.states.push(s),
    },
    win,
  );
  return { conn, log };
}

describe("Connection", () => {
  test("hands on parsed frames and ignores what is not JSON", () => {
    const win = fakeWindow();
    const { conn, log } = connection(win);
    conn.connect();
    win.sockets[0].serverSays('{"type":"ready","last_seq":0}');
    win.sockets[0].serverSays("not json");
    assert.deepEqual(log.frames, [{ type: "ready", last_seq: 0 }]);
    assert.equal(log.openings, 1);
    assert.deepEqual(log.states, ["connecting"]);
  });

  test("sends only over an open socket", () => {
    const win = fakeWindow();
    const { conn } = connection(win);
    conn.connect();
    assert.equal(conn.send({ type: "retry", seq: 1 }), false, "still connecting");
    win.sockets[0].open();
    assert.equal(conn.send({ type: "retry", seq: 1 }), true);
    assert.deepEqual(win.sockets[0].sent, ['{"type":"retry","seq":1}']);
  });

  test("a close reconnects after a growing delay, from the start again once settled", () => {
    const win = fakeWindow();
    const { conn, log } = connection(win);
    conn.connect();
    win.sockets[0].close();
    assert.equal(log.closes, 1);
    assert.deepEqual(log.states, ["connecting", "reconnecting"]);
    const first = win.timers.at(-1).ms;
    assert.ok(first >= 250 && first <= 500, String(first));
    win.fire();
    assert.equal(win.sockets.length, 2, "a new socket with a fresh URL");
    assert.notEqual(win.sockets[1].url, win.sockets[0].url);
    win.sockets[1].close();
    const second = win.timers.at(-1).ms;
    assert.ok(second >= 500 && second <= 1000, String(second));
    win.fire();
    conn.settled(); // the server said ready
    win.sockets[2].close();
    assert.ok(win.timers.at(-1).ms <= 500, "back to the first step");
  });

  test("offline says so, and coming back online connects at once", () => {
    const win = fakeWindow({ onLine: false });
    const { conn, log } = connection(win);
    conn.connect();
    win.sockets[0].close();
    assert.equal(log.states.at(-1), "offline");
    win.listeners.online();
    assert.equal(win.sockets.length, 2, "without waiting for the timer");
    win.listeners.online(); // a socket is on its way already: not another
    assert.equal(win.sockets.length, 2);
  });

  test("a drop on purpose is no close to recover from; destroy stops everything", () => {
    const win = fakeWindow();
    const { conn, log } = connection(win);
    conn.connect();
    conn.restart();
    assert.equal(win.sockets.length, 2);
    assert.equal(log.closes, 0, "the replaced socket's close is not reported");
    conn.destroy();
    assert.equal(win.sockets[1].readyState, 3);
    assert.equal(win.listeners.online, undefined);
    conn.connect();
    assert.equal(win.sockets.length, 2, "no socket after destroy");
  });
});
