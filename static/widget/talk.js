/* The person's side of the conversation, as methods of ui.js's Chat (mixed into its
 * prototype, so `this` is the Chat): what they type (sent now, or queued while the
 * connection is down and sent in order after the next `ready`), what they pick, retries. */

import { uuid } from "./dom.js";
import { renderDelivery } from "./log.js";

export const TALK = {
  _submit() {
    const { input } = this.ui;
    const text = input.value;
    if (!text.trim()) return; // offline too: it waits for the connection, in order
    if (this.state.tooLong(text)) {
      this.ui.notify(this.t.tooLong(this.state.maxTextLength));
      return;
    }
    const p = this.state.addSend(uuid(), text);
    input.value = "";
    this._sendPending(p);
  },

  _choose(m, option) {
    if (this.connState !== "online") return;
    const p = this.state.addChoose(uuid(), m, option);
    if (!p) return;
    this._refreshChoices(m.seq);
    if (this.ui.sheet.isShowing(m.seq)) this.ui.sheet.close();
    this._sendPending(p);
  },

  _sendPending(p) {
    this.log.addPending(p);
    this._transmit(p);
    this.scroll.toEnd();
    this._renderTyping();
  },

  _transmit(p) {
    this.state.transmit(p, (frame) => this.conn.send(frame));
    this._renderPending(p);
  },

  _renderPending(p) {
    if (!p.node) return;
    // Unsent: it goes out by itself after the next `ready` (same client_msg_id: recorded once).
    renderDelivery(p.node, { status: p.state === "unsent" ? "queued" : "sending" }, this.t, null);
  },

  _dropPending(p) {
    p.node?.remove();
    if (p.kind === "choose") this._refreshChoices(p.choicesSeq);
    else if (!this.ui.input.value) this.ui.input.value = p.text; // keep the refused text
  },

  /** Only over an open socket. A failed message is not queued for later: the person asked
   * for this retry now, and by the time the socket is back another tab may have retried it
   * (the server would refuse a second one); the message stays failed with its Retry. */
  _retry(seq) {
    if (this.state.retry(seq, (frame) => this.conn.send(frame))) this._renderStatus(seq);
    else if (!this.conn.isOpen() || !this.state.ready) this.ui.notify(this.t.retryWhenBack);
  },
};
