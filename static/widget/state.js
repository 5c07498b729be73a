/* The widget's protocol state, without the DOM, so node's test runner can drive it.
 *
 * `receive(frame)` takes one server frame and returns the effects the view applies, in order:
 *   {type: "reset"}                      recovered: false, the replay replaces what is shown
 *   {type: "message", message, live}     a new message to show (live: not from a replay)
 *   {type: "adopt", pending}             the server's message replaces this local copy
 *   {type: "answered", seq}              a choices message got its answer
 *   {type: "status", seq}                the delivery status of the person's message changed
 *   {type: "refused", code, detail}      an error frame, to tell the person
 *   {type: "drop", pending}              a refused send or pick: the local copy goes
 *   {type: "gap", after}                 a live seq skipped ahead: reconnect with after=
 *   {type: "ready"}                      the replay is done; send what is still unsent
 */

export class ChatState {
  constructor() {
    this.messages = new Map(); // seq -> message, everything shown
    this.answered = new Map(); // seq of a choices message -> chosen option_id
    this.statuses = new Map(); // seq of a person's message -> {status, detail, retryable?}
    this.pending = new Map(); // client_msg_id -> {id, kind, text, state, seq?, choicesSeq?}
    this.retrying = new Map(); // seq -> its status before a retry the server has not answered
    this.lastSeq = 0;
    this.epoch = null;
    this.ready = false;
    this.buffer = []; // the replay's frames, applied once `ready` says how
    this.maxTextLength = null; // the server's limit, from `ready`; none before
  }

  /** A new socket is opening: its replay waits in the buffer for its `ready`. */
  connecting() {
    this.ready = false;
    this.buffer = [];
  }

  /** The socket is gone. What went out on it without an ack is sent again after the next
   * `ready`: the same client_msg_id, so the server records it once. A retry left unanswered
   * gets its status back; the next replay's status frames correct it if it went through. */
  closed() {
    this.ready = false;
    for (const p of this.pending.values()) {
      if (p.state === "sending") p.state = "unsent";
    }
    return [...this.retrying.keys()].flatMap((seq) => this.cancelRetry(seq));
  }

  receive(frame) {
    if (!frame || typeof frame !== "object") return [];
    if (!this.ready) {
      if (frame.type === "ready") return this._ready(frame);
      if (frame.type === "message" || frame.type === "status") {
        this.buffer.push(frame);
        return [];
      }
    }
    switch (frame.type) {
      case "message":
        return this._message(frame.message, true);
      case "status":
        return this._status(frame);
      case "ack":
        return this._ack(frame);
      case "error":
        return this._error(frame);
      default:
        return []; // a newer server's frame
    }
  }

  _ready(frame) {
    const effects = [];
    const buffered = this.buffer;
    this.buffer = [];
    if (!frame.recovered) {
      this._reset();
      effects.push({ type: "reset" });
    }
    this.epoch = frame.epoch;
    this.maxTextLength =
      Number.isInteger(frame.max_text_length) && frame.max_text_length > 0
        ? frame.max_text_length
        : null;
    for (const f of buffered) {
      effects.push(...(f.type === "message" ? this._message(f.message, false) : this._status(f)));
    }
    // Everything up to last_seq has been replayed, or is gone from the server's history.
    if (typeof frame.last_seq === "number") this.lastSeq = Math.max(this.lastSeq, frame.last_seq);
    this.ready = true;
    effects.push({ type: "ready" });
    return effects;
  }

  _reset() {
    this.messages.clear();
    this.answered.clear();
    this.statuses.clear();
    this.retrying.clear();
    this.lastSeq = 0;
  }

  _message(m, live) {
    if (!m || typeof m.seq !== "number") return [];
    if (this.messages.has(m.seq) || m.seq <= this.lastSeq) return []; // shown already
    // Never leave a hole: the server replays everything after lastSeq on the next socket.
    if (this.ready && m.seq > this.lastSeq + 1) return [{ type: "gap", after: this.lastSeq }];
    this.messages.set(m.seq, m);
    this.lastSeq = m.seq;
    const effects = this._adopt(m);
    effects.push({ type: "message", message: m, live });
    if (m.reply_to) {
      this.answered.set(m.reply_to.seq, m.reply_to.option_id);
      effects.push({ type: "answered", seq: m.reply_to.seq });
    }
    return effects;
  }

  _adopt(m) {
    const p = m.from === "user" && m.client_msg_id ? this.pending.get(m.client_msg_id) : null;
    if (!p) return [];
    this.pending.delete(p.id);
    return [{ type: "adopt", pending: p }];
  }

  _status(f) {
    if (typeof f.seq !== "number") return [];
    this.statuses.set(f.seq, { status: f.status, detail: f.detail || "" });
    this.retrying.delete(f.seq); // the server's own word on it: the retry is answered
    return [{ type: "status", seq: f.seq }];
  }

  _ack(f) {
    const p = this.pending.get(f.client_msg_id);
    if (!p) return [];
    p.seq = f.seq;
    p.state = "acked";
    // The message frame with this seq normally follows; when it came first, adopt now.
    const m = this.messages.get(f.seq);
    return m ? this._adopt(m) : [];
  }

  _error(f) {
    const err = f.error || {};
    const effects = [
      { type: "refused", code: err.code || "", detail: err.detail || err.code || "" },
    ];
    const p = f.client_msg_id ? this.pending.get(f.client_msg_id) : null;
    if (p) {
      this.pending.delete(p.id);
      effects.push({ type: "drop", pending: p });
    } else if (typeof f.seq === "number") {
      // not_failed: the server will not forward it again from here, so offering Retry
      // again would only be refused again. Any other refusal leaves it retryable.
      effects.push(...this.cancelRetry(f.seq, err.code !== "not_failed"));
    } else if (!f.client_msg_id) {
      // An error naming nothing can only answer a retry (sends and picks carry their id):
      // give every unanswered retry its status back rather than "Sending…" for good.
      for (const seq of [...this.retrying.keys()]) effects.push(...this.cancelRetry(seq));
    }
    return effects;
  }

  /** Puts back the status a retry replaced. */
  cancelRetry(seq, retryable = true) {
    if (!this.retrying.has(seq)) return [];
    const before = this.retrying.get(seq);
    this.retrying.delete(seq);
    this.statuses.set(seq, { ...before, retryable });
    return [{ type: "status", seq }];
  }

  /** Asks the server to forward the failed message `seq` again, through `send(frame)`
   * (false when the socket is not open). Nothing changes unless the frame went out. */
  retry(seq, send) {
    const s = this.statuses.get(seq);
    if (s?.status !== "failed" || s.retryable === false || this.retrying.has(seq)) {
      return false;
    }
    if (!this.ready || !send({ type: "retry", seq })) return false;
    this.retrying.set(seq, s);
    this.statuses.set(seq, { status: "sending", detail: "" });
    return true;
  }

  canRetry(seq) {
    const s = this.statuses.get(seq);
    return !!s && s.status === "failed" && s.retryable !== false;
  }

  /** A text the person wrote (now: ms, when), sent now or after the next `ready`. */
  addSend(id, text, now = Date.now()) {
    const p = { id, kind: "send", text, state: "sending", since: now };
    this.pending.set(id, p);
    return p;
  }

  /** A pick of `option` in the choices message `m`, or null when it is answered already or
   * a pick of it is on its way. */
  addChoose(id, m, option, now = Date.now()) {
    if (!this.canChoose(m.seq)) return null;
    const p = { id, kind: "choose", choicesSeq: m.seq, optionId: option.id, text: option.label };
    p.state = "sending";
    p.since = now;
    this.pending.set(id, p);
    return p;
  }

  canChoose(seq) {
    return !this.answered.has(seq) && !this.pickInFlight(seq);
  }

  pickInFlight(seq) {
    for (const p of this.pending.values()) {
      if (p.kind === "choose" && p.choicesSeq === seq) return true;
    }
    return false;
  }

  /** Sends the pending `p` through `send`; before `ready` it waits as "unsent", to go out
   * after the replay (which may show the server has it already). */
  transmit(p, send) {
    const frame =
      p.kind === "send"
        ? { type: "send", client_msg_id: p.id, text: p.text }
        : { type: "choose", client_msg_id: p.id, message_id: p.choicesSeq, option_id: p.optionId };
    p.state = this.ready && send(frame) ? "sending" : "unsent";
    return p.state;
  }

  /** What waits for the connection, in the order it was written (a Map keeps that order). */
  unsent() {
    return [...this.pending.values()].filter((p) => p.state === "unsent");
  }

  /** Over the server's limit, counted as the server counts (code points, not UTF-16 units). */
  tooLong(text) {
    return this.maxTextLength !== null && [...text].length > this.maxTextLength;
  }

  /** Messages from others after `seenSeq`: the launcher's badge. */
  unreadAfter(seenSeq) {
    let n = 0;
    for (const m of this.messages.values()) if (m.seq > seenSeq && m.from !== "user") n++;
    return n;
  }
}

/** The last message seen with the panel open, kept across reloads as "epoch:seq" in `store`
 * (localStorage, or null where the page may not have it): the badge counts what came after. */
export class Seen {
  constructor(store, key) {
    this.store = store;
    this.key = key;
    const [epoch, seq] = (store?.getItem(key) || "").split(":");
    this.epoch = epoch || null;
    this.seq = Number.parseInt(seq, 10) || 0;
  }

  /** The server's history is `epoch`; seqs of another history restarted from 1. */
  epochIs(epoch) {
    if (this.epoch !== epoch) this.seq = 0;
    this.epoch = epoch;
  }

  upTo(seq) {
    if (seq <= this.seq) return;
    this.seq = seq;
    try {
      this.store?.setItem(this.key, `${this.epoch}:${this.seq}`);
    } catch {
      // full or refused: the badge only forgets what was read, across reloads
    }
  }
}
