/* The socket's life: its URL, reconnects with back-off and jitter, online/offline. It knows
 * nothing of messages; it hands parsed frames on and says how the connection is. */

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30000;

/** /ws/{callId} on `server`, continuing after the last seq shown in that epoch. */
export function socketUrl(server, callId, { after = 0, epoch = null, token = null } = {}) {
  const url = new URL(`/ws/${encodeURIComponent(callId)}`, server);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (after > 0) url.searchParams.set("after", String(after));
  if (epoch) url.searchParams.set("epoch", epoch);
  if (token) url.searchParams.set("token", token);
  return url.href;
}

/** Doubling from 0.5 s up to 30 s, a random point in the upper half of that: tabs that lost
 * the same server do not all come back in the same instant. */
export function backoffDelay(attempt, random = Math.random) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return cap / 2 + (random() * cap) / 2;
}

const OPEN = 1;

export class Connection {
  /**
   * url(): the URL for the next socket, read at each connect (after=, epoch, token move on).
   * onOpening(): a socket is being opened. onFrame(frame): a parsed server frame.
   * onClose(): the socket closed by itself (not by drop()). onState(name): "connecting",
   * "reconnecting" or "offline". env: the window (tests pass a fake one).
   */
  constructor({ url, onOpening, onFrame, onClose, onState }, env = globalThis) {
    Object.assign(this, { url, onOpening, onFrame, onClose, onState, env });
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this._online = () => this.reconnectNow();
    env.addEventListener("online", this._online);
  }

  connect() {
    if (this.stopped) return;
    this.env.clearTimeout(this.timer);
    this.timer = null;
    this.onOpening();
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new this.env.WebSocket(this.url());
    } catch {
      this._schedule();
      return;
    }
    this.ws = ws;
    ws.addEventListener("message", (e) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return; // replaced on purpose (restart, destroy)
      this.ws = null;
      this.onClose();
      // Every close, 1013 (queue overflow) and 1001 (shutdown) included, is followed by a
      // reconnect with after=: the server replays exactly what was missed.
      this._schedule();
    });
  }

  _schedule() {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onState(this.env.navigator?.onLine === false ? "offline" : "reconnecting");
    this.timer = this.env.setTimeout(() => this.connect(), delay);
  }

  /** The server said `ready`: the next drop starts the back-off from the beginning. */
  settled() {
    this.attempt = 0;
  }

  isOpen() {
    return !!this.ws && this.ws.readyState === OPEN;
  }

  /** Sends `frame` when the socket is open; false when it is not (nothing is queued here). */
  send(frame) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Back online: try at once rather than wait out the back-off. */
  reconnectNow() {
    if (this.ws && this.ws.readyState <= OPEN) return; // connecting or open already
    this.connect();
  }

  /** A new socket at once (a new token, a gap in seqs), continuing after the last seq. */
  restart() {
    this.drop();
    this.attempt = 0;
    this.connect();
  }

  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }

  destroy() {
    this.stopped = true;
    this.env.clearTimeout(this.timer);
    this.env.removeEventListener("online", this._online);
    this.drop();
  }
}
