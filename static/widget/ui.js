/* The widget's controller: it owns one ChatState and one Connection, turns the person's
 * actions into frames and the state's effects into the view. Loaded by ../widget.js. */

import { Connection, socketUrl } from "./connection.js";
import { storage } from "./dom.js";
import { MessageLog, renderDelivery } from "./log.js";
import { optionButton, refreshOption, renderChosenLabel } from "./renderers.js";
import { buildShell } from "./shell.js";
import { pageTitle, ScrollKeeper } from "./scroll.js";
import { ChatState, Seen } from "./state.js";
import { pickLang, STRINGS } from "./strings.js";
import { TALK } from "./talk.js";
import { typingTimeoutMs, typingUntil } from "./typing.js";

export class Chat {
  /** container: the element an inline widget fills (floating ones go to <body>);
   * scriptUrl: widget.js's own URL, the default server and where widget.css is. */
  constructor(container, opts, scriptUrl) {
    const fallbackServer = scriptUrl ? scriptUrl.origin : location.origin;
    this.callId = String(opts.callId);
    this.server = new URL(opts.server || fallbackServer, location.href);
    this.token = opts.token || null;
    this.mode = opts.mode === "inline" ? "inline" : "floating";
    this.lang = pickLang(opts.lang, document.documentElement.lang, navigator.language);
    const t = STRINGS[this.lang];
    this.t = t;
    this.state = new ChatState();
    this.connState = "connecting";
    this.isOpen = this.mode === "inline" || !!opts.open;
    this.unread = 0;
    this.typingMs = typingTimeoutMs(opts.typingTimeout);
    this.typingTimer = null;
    // The page's title counts unread messages only where the page asked (the bridge's own
    // /chat page does): a widget does not touch its host page uninvited.
    this.showTitle = opts.pageTitle === true || opts.pageTitle === "true" ? pageTitle() : null;
    this.seen = new Seen(storage(), `airudder-chat:seen:${this.server.origin}:${this.callId}`);

    this.ctx = {
      t,
      lang: this.lang,
      chosen: (seq) => this.state.answered.get(seq),
      choose: (m, option) => this._choose(m, option),
      openList: (m, opener) => this.ui.sheet.show(m, opener),
      refreshControl: (b) => this._refreshControl(b),
      mediaLoaded: () => this.scroll.settle(),
      format: opts.format !== "off" && opts.format !== false,
    };
    this.ui = buildShell({
      t,
      mode: this.mode,
      lang: this.lang,
      theme: opts.theme,
      title: opts.title || t.title,
      cssHref:
        opts.css ||
        new URL(scriptUrl ? "widget.css" : "/static/widget.css", scriptUrl || this.server).href,
      row: (m, option) => optionButton("row", m, option, this.ctx),
      on: {
        close: () => this.close(),
        toggle: () => this.toggle(),
        escape: () => this.isOpen && this.close(),
        submit: () => this._submit(),
      },
    });
    this.log = new MessageLog(this.ui, this.ctx);
    const { logEl, jumpEl, listEl, pendingEl, typingEl } = this.ui;
    this.scroll = new ScrollKeeper(logEl, jumpEl, t, [listEl, pendingEl, typingEl]);
    this._onVisibility = () => this._visible() && this._markSeen();
    document.addEventListener("visibilitychange", this._onVisibility);
    (this.mode === "inline" ? container : document.body || document.documentElement).appendChild(
      this.ui.host,
    );
    this._renderOpen();
    this._renderState();

    this.conn = new Connection({
      url: () =>
        socketUrl(this.server, this.callId, {
          after: this.state.lastSeq,
          epoch: this.state.epoch,
          token: this.token,
        }),
      onOpening: () => this.state.connecting(),
      onFrame: (frame) => this._apply(this.state.receive(frame)),
      onClose: () => this._lost(),
      onState: (s) => this._setState(s),
    });
    this.conn.connect();
  }

  // ------------------------------------------------------------ open / close / badge

  open() {
    this.isOpen = true;
    this._renderOpen();
    if (this._visible()) this._markSeen();
    this.ui.input.focus();
  }

  close() {
    if (this.mode === "inline") return;
    this.isOpen = false;
    this._renderOpen();
    this.ui.launcher?.focus();
  }

  toggle() {
    if (this.isOpen) this.close();
    else this.open();
  }

  _renderOpen() {
    this.ui.showOpen(this.isOpen, this.unread);
    this.showTitle?.(this.unread);
    if (this.isOpen) this.scroll.settle();
  }

  /** Open, in a tab in front: what arrives is read. */
  _visible() {
    return this.isOpen && document.visibilityState !== "hidden";
  }

  _markSeen() {
    this.unread = 0;
    this.seen.upTo(this.state.lastSeq);
    this._renderOpen();
  }

  // ------------------------------------------------------------ connection

  /** A new token (e.g. a refreshed one): reconnect with it, continuing after the last seq. */
  setToken(token) {
    this.token = token || null;
    this._lost();
    this.conn.restart();
  }

  destroy() {
    this.ui.notify(null);
    clearTimeout(this.typingTimer);
    document.removeEventListener("visibilitychange", this._onVisibility);
    this.showTitle?.(0);
    this.conn.destroy();
    this.ui.host.remove();
  }

  /** The socket is gone (closed, or dropped on purpose): see ChatState.closed. */
  _lost() {
    const effects = this.state.closed();
    for (const p of this.state.pending.values()) this._renderPending(p);
    this._apply(effects);
    this._renderTyping();
  }

  _setState(name) {
    this.connState = name;
    this._renderState();
  }

  _renderState() {
    this.ui.showConnection(this.connState);
    for (const b of this.ui.root.querySelectorAll(".choices button, button.row, button.retry")) {
      this._refreshControl(b);
    }
  }

  // ------------------------------------------------------------ server frames

  _apply(effects) {
    for (const e of effects) {
      switch (e.type) {
        case "reset":
          this.log.clear(this.state.pending.size > 0);
          this.ui.sheet.close();
          break;
        case "message":
          this._show(e.message, e.live);
          break;
        case "adopt":
          e.pending.node?.remove();
          if (e.pending.kind === "choose") this._refreshChoices(e.pending.choicesSeq);
          break;
        case "answered":
          this._refreshChoices(e.seq);
          break;
        case "status":
          this._renderStatus(e.seq);
          break;
        case "refused":
          this.ui.notify(e.code === "not_failed" ? this.t.notFailed : this.t.refused + e.detail);
          break;
        case "drop":
          this._dropPending(e.pending);
          break;
        case "gap":
          this._lost();
          this.conn.restart();
          return;
        case "ready":
          this._ready();
          break;
      }
    }
    const live = effects.filter((e) => e.type === "message" && e.live);
    if (live.length) this.scroll.added(live.length, false);
    this._renderTyping();
  }

  /** The typing indicator, from the session's messages (see typing.js), in every tab; it
   * goes by itself at its timeout. */
  _renderTyping() {
    clearTimeout(this.typingTimer);
    const until = typingUntil({
      messages: this.state.messages,
      statuses: this.state.statuses,
      pending: [...this.state.pending.values()],
      now: Date.now(),
      timeoutMs: this.typingMs,
    });
    this.ui.showTyping(until !== null);
    if (until !== null)
      this.typingTimer = setTimeout(() => this._renderTyping(), until - Date.now());
  }

  _ready() {
    const { epoch, maxTextLength } = this.state;
    this.seen.epochIs(epoch);
    if (maxTextLength) this.ui.input.maxLength = maxTextLength;
    else this.ui.input.removeAttribute("maxlength");
    this.conn.settled();
    this._setState("online");
    if (this._visible()) this._markSeen();
    else {
      this.unread = this.state.unreadAfter(this.seen.seq);
      this._renderOpen();
    }
    // What was written while the connection was down goes out now, in the order written.
    for (const p of this.state.unsent()) this._transmit(p);
    this.scroll.settle();
  }

  _show(m, live) {
    const row = this.log.append(m);
    if (m.from === "user") this._renderDelivery(row, m.seq);
    if (!live) return; // the replay: `ready` counts what is unread
    if (m.from !== "user" && !this._visible()) {
      this.unread++;
      this._renderOpen();
    } else if (this._visible()) this._markSeen();
  }

  _renderStatus(seq) {
    const row = this.log.rowOf(seq);
    if (row?.classList.contains("from-user")) this._renderDelivery(row, seq);
  }

  _renderDelivery(row, seq) {
    const onRetry = this.state.canRetry(seq) ? () => this._retry(seq) : null;
    const retry = renderDelivery(row, this.state.statuses.get(seq), this.t, onRetry);
    if (retry) this._refreshControl(retry);
  }

  /** Retry and the options work only online; an option only while its message is
   * neither answered nor being answered. */
  _refreshControl(b) {
    const online = this.connState === "online";
    if (b.classList.contains("retry")) b.disabled = !online;
    else {
      const seq = Number(b.getAttribute("data-choice"));
      refreshOption(b, this.state.answered.get(seq), online && this.state.canChoose(seq));
    }
  }

  _refreshChoices(seq) {
    for (const b of this.ui.root.querySelectorAll(`[data-choice="${Number(seq)}"]`)) {
      this._refreshControl(b);
    }
    const row = this.log.rowOf(seq);
    const m = this.state.messages.get(seq);
    if (row && m?.style === "list") renderChosenLabel(row.querySelector(".choices"), m, this.ctx);
  }
}

// The person's messages (sends, picks, retries): talk.js.
Object.assign(Chat.prototype, TALK);
