/*
 * airudder-bridge chat widget. Plain JavaScript, no build step, one global: AIRudderChat.
 *
 *   <script src="https://BRIDGE/static/widget.js" data-call-id="..." defer></script>
 *
 * Everything lives in a Shadow DOM with its stylesheet loaded by <link>, so the host page is
 * neither restyled nor broken, and no inline script or style is used (CSP friendly).
 * Server data is only ever put into the page with textContent / attributes, never as HTML.
 * Wire protocol: see docs/readme/widget.md and the server's README.
 */
(function () {
  "use strict";

  if (window.AIRudderChat) return; // loaded twice: keep the first

  var SCRIPT = document.currentScript;
  var SCRIPT_URL = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href) : null;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var NOTICE_MS = 6000;

  var STRINGS = {
    en: {
      title: "Chat",
      open: "Open chat",
      close: "Close chat",
      unread: function (n) { return n === 1 ? "1 unread message" : n + " unread messages"; },
      messages: "Messages",
      connecting: "Connecting…",
      online: "Online",
      reconnecting: "Reconnecting…",
      offline: "Offline",
      offlineReason: "You are offline. You can send again once the connection is back.",
      reconnectingReason: "Connection lost. Reconnecting… you can send again once it is back.",
      connectingReason: "Connecting to the chat…",
      placeholder: "Write a message…",
      inputLabel: "Message",
      send: "Send",
      sending: "Sending…",
      sent: "Sent",
      failed: "Not delivered",
      retry: "Retry",
      you: "You",
      bot: "Bot",
      choose: "Choose",
      options: "Options",
      chosen: "Chosen",
      closeList: "Close",
      image: "Image",
      openImage: "Open image in a new tab",
      download: "Download",
      file: "File",
      mediaFailed: {
        image: "The image could not be loaded.",
        video: "The video could not be loaded.",
        audio: "The audio could not be loaded.",
      },
      openLink: "Open link",
      unsupported: function (t) { return "This message (" + t + ") cannot be shown here."; },
      today: "Today",
      yesterday: "Yesterday",
      refused: "Not accepted: ",
      empty: "No messages yet.",
    },
    zh: {
      title: "在线咨询",
      open: "打开聊天",
      close: "关闭聊天",
      unread: function (n) { return n + " 条未读消息"; },
      messages: "消息",
      connecting: "正在连接…",
      online: "在线",
      reconnecting: "正在重新连接…",
      offline: "离线",
      offlineReason: "当前离线，恢复连接后即可发送。",
      reconnectingReason: "连接已断开，正在重新连接… 恢复后即可发送。",
      connectingReason: "正在连接聊天服务…",
      placeholder: "输入消息…",
      inputLabel: "消息",
      send: "发送",
      sending: "发送中…",
      sent: "已送达",
      failed: "发送失败",
      retry: "重试",
      you: "我",
      bot: "机器人",
      choose: "请选择",
      options: "选项",
      chosen: "已选择",
      closeList: "关闭",
      image: "图片",
      openImage: "在新标签页中打开图片",
      download: "下载",
      file: "文件",
      mediaFailed: {
        image: "图片无法加载。",
        video: "视频无法加载。",
        audio: "音频无法加载。",
      },
      openLink: "打开链接",
      unsupported: function (t) { return "暂不支持显示此类消息（" + t + "）。"; },
      today: "今天",
      yesterday: "昨天",
      refused: "未被接受：",
      empty: "暂无消息。",
    },
  };

  function pickLang(wanted) {
    var candidates = [wanted, document.documentElement.lang, navigator.language];
    for (var i = 0; i < candidates.length; i++) {
      var tag = (candidates[i] || "").toLowerCase();
      if (tag.indexOf("zh") === 0) return "zh";
      if (tag.indexOf("en") === 0) return "en";
    }
    return "en";
  }

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function button(cls, text, label) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
  }

  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M3 11l18-8-8 18-2-8-8-2z",
    file: "M6 2h8l6 6v14H6zM14 2v6h6",
    list: "M4 6h16M4 12h16M4 18h10",
    check: "M5 13l4 4L19 7",
    alert: "M12 8v5M12 16.5v.5M12 3l10 18H2z",
  };

  function icon(name) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon icon-" + name);
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function isHttpUrl(value) {
    try {
      var u = new URL(value);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch (e) {
      return false;
    }
  }

  function link(url, text, cls) {
    var a = el("a", cls, text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  var URL_RE = /https?:\/\/[^\s<>"'`]+/g;
  var TRAILING_PUNCT_RE = /[.,;:!?'")\]}，。！？；：、）】]+$/;

  /** Text as text nodes; http(s) URLs become links. Never parsed as HTML. */
  function richText(text) {
    var frag = document.createDocumentFragment();
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var url = match[0].replace(TRAILING_PUNCT_RE, "");
      if (!url || !isHttpUrl(url)) continue;
      frag.appendChild(document.createTextNode(text.slice(last, match.index)));
      frag.appendChild(link(url, url));
      last = match.index + url.length;
      URL_RE.lastIndex = last;
    }
    frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) {
      try { return crypto.randomUUID(); } catch (e) { /* insecure context: below */ }
    }
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function dayKey(ts) {
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + d.getMonth() + "-" + d.getDate();
  }

  function fileNameOf(url) {
    try {
      var parts = new URL(url).pathname.split("/");
      return decodeURIComponent(parts[parts.length - 1]) || url;
    } catch (e) {
      return url;
    }
  }

  function storage() {
    try { return window.localStorage; } catch (e) { return null; } // sandboxed iframe
  }

  // ---------------------------------------------------------------- the widget

  function Chat(target, opts) {
    opts = opts || {};
    if (!opts.callId) throw new Error("AIRudderChat: callId (data-call-id) is required");
    this.callId = String(opts.callId);
    this.server = new URL(opts.server || (SCRIPT_URL ? SCRIPT_URL.origin : location.origin),
      location.href);
    this.token = opts.token || null;
    this.mode = opts.mode === "inline" ? "inline" : "floating";
    this.lang = pickLang(opts.lang);
    this.t = STRINGS[this.lang];
    this.title = opts.title || this.t.title;
    this.cssHref = opts.css || (SCRIPT_URL ? new URL("widget.css", SCRIPT_URL).href
      : new URL("/static/widget.css", this.server).href);
    this.maxLength = opts.maxLength || 4000;

    this.messages = new Map(); // seq -> message, everything shown
    this.answered = new Map(); // seq of a choices message -> chosen option_id
    this.statuses = new Map(); // seq of a person's message -> {status, detail}
    this.pending = new Map(); // client_msg_id -> {kind, text, node, state, seq?, choicesSeq?}
    this.lastSeq = 0;
    this.epoch = null;
    this.ws = null;
    this.ready = false;
    this.buffer = []; // frames of the replay, applied when `ready` tells how
    this.attempt = 0;
    this.retryTimer = null;
    this.state = "connecting";
    this.isOpen = this.mode === "inline" || !!opts.open;
    this.unread = 0;
    this.destroyed = false;
    this.seenKey = "airudder-chat:seen:" + this.server.origin + ":" + this.callId;
    // "epoch:seq" of the last message seen with the panel open: the badge counts the rest.
    var seen = ((storage() && storage().getItem(this.seenKey)) || "").split(":");
    this.seenEpoch = seen[0] || null;
    this.seenSeq = parseInt(seen[1], 10) || 0;

    this._build(target);
    this._onOnline = this._reconnectNow.bind(this);
    window.addEventListener("online", this._onOnline);
    this.connect();
  }

  Chat.prototype._build = function (target) {
    var t = this.t;
    var host = document.createElement("airudder-chat");
    host.setAttribute("data-mode", this.mode);
    host.setAttribute("lang", this.lang === "zh" ? "zh-CN" : "en");
    this.host = host;
    var root = host.attachShadow({ mode: "open" });
    this.root = root;

    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = this.cssHref;
    root.appendChild(css);

    // Hidden until the stylesheet is in, so the page never flashes unstyled widget parts.
    var shell = el("div", "shell");
    shell.hidden = true;
    var reveal = function () { shell.hidden = false; };
    css.addEventListener("load", reveal);
    css.addEventListener("error", reveal);
    root.appendChild(shell);

    var panel = el("section", "panel");
    panel.setAttribute("aria-label", this.title);
    this.panel = panel;

    var header = el("header", "header");
    var heading = el("div", "heading");
    heading.appendChild(el("h2", "title", this.title));
    this.stateEl = el("p", "state");
    this.stateEl.setAttribute("role", "status");
    heading.appendChild(this.stateEl);
    header.appendChild(heading);
    if (this.mode === "floating") {
      var closeBtn = button("icon-button close", null, t.close);
      closeBtn.appendChild(icon("close"));
      closeBtn.addEventListener("click", this.close.bind(this));
      header.appendChild(closeBtn);
    }
    panel.appendChild(header);

    this.logEl = el("div", "log");
    this.logEl.setAttribute("role", "log");
    this.logEl.setAttribute("aria-live", "polite");
    this.logEl.setAttribute("aria-label", t.messages);
    this.logEl.tabIndex = 0;
    this.emptyEl = el("p", "empty", t.empty);
    this.listEl = el("ol", "messages");
    this.pendingEl = el("ol", "messages pending");
    this.logEl.appendChild(this.emptyEl);
    this.logEl.appendChild(this.listEl);
    this.logEl.appendChild(this.pendingEl);
    panel.appendChild(this.logEl);

    this.noticeEl = el("p", "notice-bar");
    this.noticeEl.setAttribute("role", "alert");
    this.noticeEl.hidden = true;
    panel.appendChild(this.noticeEl);

    panel.appendChild(this._buildComposer());
    panel.appendChild(this._buildDialog());
    shell.appendChild(panel);

    if (this.mode === "floating") {
      var launcher = button("launcher", null, t.open);
      launcher.setAttribute("aria-expanded", "false");
      launcher.appendChild(icon("chat"));
      this.badge = el("span", "badge");
      this.badge.hidden = true;
      this.badge.setAttribute("aria-hidden", "true");
      launcher.appendChild(this.badge);
      launcher.addEventListener("click", this.toggle.bind(this));
      this.launcher = launcher;
      shell.appendChild(launcher);
      root.addEventListener("keydown", function (e) {
        if (e.key === "Escape" && this.isOpen && !this.dialog.open) this.close();
      }.bind(this));
    }

    if (this.mode === "inline") {
      var container = typeof target === "string" ? document.querySelector(target) : target;
      if (!container) throw new Error("AIRudderChat: inline mode needs a target element");
      container.appendChild(host);
    } else {
      (document.body || document.documentElement).appendChild(host);
    }
    this._renderOpen();
    this._renderState();
  };

  Chat.prototype._buildComposer = function () {
    var t = this.t;
    var form = el("form", "composer");
    form.noValidate = true;
    var id = "input-" + uuid();
    var label = el("label", "sr-only", t.inputLabel);
    label.htmlFor = id;
    var input = el("textarea", "input");
    input.id = id;
    input.rows = 1;
    input.placeholder = t.placeholder;
    input.maxLength = this.maxLength;
    input.setAttribute("enterkeyhint", "send");
    var send = button("send", null, t.send);
    send.type = "submit";
    send.appendChild(icon("send"));
    var reason = el("p", "composer-reason");
    reason.id = "reason-" + uuid();
    input.setAttribute("aria-describedby", reason.id);

    input.addEventListener("keydown", function (e) {
      // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      this._submit();
    }.bind(this));

    var row = el("div", "composer-row");
    row.appendChild(label);
    row.appendChild(input);
    row.appendChild(send);
    form.appendChild(row);
    form.appendChild(reason);
    this.input = input;
    this.sendBtn = send;
    this.reasonEl = reason;
    return form;
  };

  Chat.prototype._buildDialog = function () {
    var t = this.t;
    var dialog = el("dialog", "sheet");
    var titleId = "sheet-title-" + uuid();
    dialog.setAttribute("aria-labelledby", titleId);
    var head = el("div", "sheet-head");
    this.sheetTitle = el("h3", "sheet-title");
    this.sheetTitle.id = titleId;
    var closeBtn = button("icon-button", null, t.closeList);
    closeBtn.appendChild(icon("close"));
    closeBtn.addEventListener("click", function () { dialog.close(); });
    head.appendChild(this.sheetTitle);
    head.appendChild(closeBtn);
    this.sheetBody = el("div", "sheet-body");
    dialog.appendChild(head);
    dialog.appendChild(this.sheetBody);
    dialog.addEventListener("click", function (e) {
      if (e.target === dialog) dialog.close(); // a click on the backdrop
    });
    dialog.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        // Closed here rather than by the browser's own "cancel", which Chromium may skip
        // for a dialog opened without a fresh user activation.
        e.preventDefault();
        dialog.close();
        return;
      }
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      var rows = Array.prototype.slice.call(dialog.querySelectorAll("button.row:not(:disabled)"));
      if (!rows.length) return;
      var at = rows.indexOf(this.root.activeElement);
      var next = e.key === "ArrowDown" ? at + 1 : at - 1;
      rows[(next + rows.length) % rows.length].focus();
      e.preventDefault();
    }.bind(this));
    dialog.addEventListener("close", function () {
      // "close" is dispatched as a task: the sheet may have been opened again meanwhile
      // (Esc then Enter at once), and that opening's state must stand.
      if (dialog.open) return;
      if (this.sheetOpener && this.sheetOpener.isConnected) this.sheetOpener.focus();
      this.sheetFor = null;
    }.bind(this));
    this.dialog = dialog;
    return dialog;
  };

  // ---------------------------------------------------------------- open / close / badge

  Chat.prototype.open = function () {
    this.isOpen = true;
    this._renderOpen();
    this._markSeen();
    if (this.input && !this.input.disabled) this.input.focus();
  };

  Chat.prototype.close = function () {
    if (this.mode === "inline") return;
    this.isOpen = false;
    this._renderOpen();
    if (this.launcher) this.launcher.focus();
  };

  Chat.prototype.toggle = function () {
    if (this.isOpen) this.close(); else this.open();
  };

  Chat.prototype._renderOpen = function () {
    this.host.toggleAttribute("data-open", this.isOpen);
    this.panel.hidden = !this.isOpen;
    if (this.launcher) {
      this.launcher.setAttribute("aria-expanded", String(this.isOpen));
      this.launcher.setAttribute("aria-label", this.isOpen ? this.t.close : this._launcherLabel());
    }
    if (this.isOpen) this._scrollToEnd();
  };

  Chat.prototype._launcherLabel = function () {
    return this.unread ? this.t.open + " (" + this.t.unread(this.unread) + ")" : this.t.open;
  };

  Chat.prototype._markSeen = function () {
    this.unread = 0;
    if (this.lastSeq > this.seenSeq) {
      this.seenSeq = this.lastSeq;
      var s = storage();
      if (s) try { s.setItem(this.seenKey, this.seenEpoch + ":" + this.seenSeq); } catch (e) { /* full */ }
    }
    this._renderBadge();
  };

  Chat.prototype._renderBadge = function () {
    if (!this.badge) return;
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 99 ? "99+" : String(this.unread);
    if (!this.isOpen) this.launcher.setAttribute("aria-label", this._launcherLabel());
  };

  // ---------------------------------------------------------------- connection

  Chat.prototype._socketUrl = function () {
    var url = new URL("/ws/" + encodeURIComponent(this.callId), this.server);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.lastSeq > 0) url.searchParams.set("after", String(this.lastSeq));
    if (this.epoch) url.searchParams.set("epoch", this.epoch);
    if (this.token) url.searchParams.set("token", this.token);
    return url.href;
  };

  Chat.prototype.connect = function () {
    if (this.destroyed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.ready = false;
    this.buffer = [];
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    var ws;
    try {
      ws = new WebSocket(this._socketUrl());
    } catch (e) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("message", function (e) {
      if (this.ws !== ws) return;
      var frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      this._onFrame(frame);
    }.bind(this));
    ws.addEventListener("close", function () {
      if (this.ws !== ws) return; // replaced on purpose (setToken, destroy)
      this.ws = null;
      this.ready = false;
      this._markUnackedUnsent();
      // Every close, 1013 (queue overflow) and 1001 (server shutdown) included, is followed
      // by a reconnect with after=: the server replays exactly what was missed.
      this._scheduleReconnect();
    }.bind(this));
  };

  Chat.prototype._scheduleReconnect = function () {
    if (this.destroyed) return;
    var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, this.attempt));
    var delay = cap / 2 + Math.random() * cap / 2; // jitter: tabs do not reconnect in lock-step
    this.attempt += 1;
    this._setState(navigator.onLine === false ? "offline" : "reconnecting");
    this.retryTimer = setTimeout(this.connect.bind(this), delay);
  };

  Chat.prototype._reconnectNow = function () {
    if (this.ws && this.ws.readyState <= 1) return; // connecting or open already
    this.connect();
  };

  Chat.prototype._dropSocket = function () {
    var ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  };

  /** A new token (e.g. a refreshed one): reconnect with it, continuing after the last seq. */
  Chat.prototype.setToken = function (token) {
    this.token = token || null;
    this._dropSocket();
    this.attempt = 0;
    this.connect();
  };

  Chat.prototype.destroy = function () {
    this.destroyed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.noticeTimer);
    window.removeEventListener("online", this._onOnline);
    this._dropSocket();
    this.host.remove();
  };

  Chat.prototype._setState = function (state) {
    this.state = state;
    this._renderState();
  };

  Chat.prototype._renderState = function () {
    var t = this.t;
    var online = this.state === "online";
    this.host.setAttribute("data-state", this.state);
    this.stateEl.textContent = t[this.state];
    // Disabling drops focus: give it back when the connection returns.
    if (!online && this.root.activeElement === this.input) this._refocus = true;
    this.input.disabled = !online;
    this.sendBtn.disabled = !online;
    if (online && this._refocus) { this._refocus = false; this.input.focus(); }
    this.reasonEl.textContent = online ? "" : this.state === "offline" ? t.offlineReason
      : this.state === "reconnecting" ? t.reconnectingReason : t.connectingReason;
    this.reasonEl.hidden = online;
    this.root.querySelectorAll(".choices button, button.row, button.retry").forEach(function (b) {
      this._refreshControl(b);
    }, this);
  };

  // ---------------------------------------------------------------- frames

  Chat.prototype._onFrame = function (frame) {
    if (!this.ready) {
      if (frame.type === "ready") return this._onReady(frame);
      if (frame.type === "message" || frame.type === "status") {
        this.buffer.push(frame);
        return;
      }
    }
    switch (frame.type) {
      case "message": return this._onMessage(frame.message, true);
      case "status": return this._onStatus(frame);
      case "ack": return this._onAck(frame);
      case "error": return this._onError(frame);
      default: return; // a newer server's frame: ignore
    }
  };

  Chat.prototype._onReady = function (frame) {
    var buffered = this.buffer;
    this.buffer = [];
    if (!frame.recovered) this._reset(); // the replay is the whole kept history
    this.epoch = frame.epoch;
    if (this.seenEpoch !== frame.epoch) this.seenSeq = 0; // another server history: seqs restarted
    this.seenEpoch = frame.epoch;
    buffered.forEach(function (f) {
      if (f.type === "message") this._onMessage(f.message, false);
      else this._onStatus(f);
    }, this);
    // Everything up to last_seq has been replayed (or is gone from the server's history).
    this.lastSeq = Math.max(this.lastSeq, frame.last_seq);
    this.ready = true;
    this.attempt = 0;
    this._setState("online");
    if (this.isOpen) this._markSeen();
    else this._countUnreadFromHistory();
    this._flushPending();
    this._scrollToEnd();
  };

  Chat.prototype._reset = function () {
    this.messages.clear();
    this.answered.clear();
    this.statuses.clear();
    this.lastSeq = 0;
    this.listEl.textContent = "";
    this.emptyEl.hidden = this.pending.size > 0;
    this.lastDay = null;
    if (this.dialog.open) this.dialog.close();
  };

  Chat.prototype._countUnreadFromHistory = function () {
    var n = 0;
    this.messages.forEach(function (m) {
      if (m.seq > this.seenSeq && m.from !== "user") n++;
    }, this);
    this.unread = n;
    this._renderBadge();
  };

  Chat.prototype._onMessage = function (m, live) {
    if (!m || typeof m.seq !== "number") return;
    if (this.messages.has(m.seq) || m.seq <= this.lastSeq) return; // shown already
    if (this.ready && m.seq > this.lastSeq + 1) {
      // A gap: never skip a message. Reconnect and let the server replay after lastSeq.
      this._dropSocket();
      this.connect();
      return;
    }
    this.messages.set(m.seq, m);
    this.lastSeq = m.seq;
    this._adoptPending(m);
    this._append(m);
    if (m.reply_to) this._answer(m.reply_to.seq, m.reply_to.option_id);
    if (live && m.from !== "user") {
      if (this.isOpen) this._markSeen();
      else { this.unread++; this._renderBadge(); }
    } else if (this.isOpen && this.ready) {
      this._markSeen();
    }
    if (this.ready) this._scrollToEnd();
  };

  Chat.prototype._onStatus = function (f) {
    this.statuses.set(f.seq, { status: f.status, detail: f.detail || "" });
    var row = this.listEl.querySelector('[data-seq="' + Number(f.seq) + '"]');
    if (row) this._renderDelivery(row, this.messages.get(f.seq));
  };

  Chat.prototype._onAck = function (f) {
    var p = this.pending.get(f.client_msg_id);
    if (!p) return;
    p.seq = f.seq;
    p.state = "acked";
    // The message frame with this seq normally follows (or came first and adopted it).
    if (this.messages.has(f.seq)) this._adoptPending(this.messages.get(f.seq));
  };

  Chat.prototype._onError = function (f) {
    var err = f.error || {};
    var detail = err.detail || err.code || "";
    this.notify(this.t.refused + detail);
    var p = f.client_msg_id && this.pending.get(f.client_msg_id);
    if (!p) return;
    this.pending.delete(f.client_msg_id);
    if (p.node) p.node.remove();
    if (p.kind === "choose") this._unlockChoices(p.choicesSeq);
    else {
      // Keep the refused text: put it back into the box, unless the person typed since.
      if (!this.input.value) this.input.value = p.text;
    }
  };

  // ---------------------------------------------------------------- rendering

  Chat.prototype._append = function (m) {
    this.emptyEl.hidden = true;
    var day = dayKey(m.ts);
    if (day !== this.lastDay) {
      this.lastDay = day;
      var divider = el("li", "divider");
      divider.appendChild(el("span", null, this._dayLabel(m.ts)));
      this.listEl.appendChild(divider);
    }
    this.listEl.appendChild(this._row(m));
  };

  Chat.prototype._dayLabel = function (ts) {
    var d = new Date(ts * 1000);
    var now = new Date();
    var yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (dayKey(ts) === dayKey(now.getTime() / 1000)) return this.t.today;
    if (dayKey(ts) === dayKey(yesterday.getTime() / 1000)) return this.t.yesterday;
    return new Intl.DateTimeFormat(this.lang === "zh" ? "zh-CN" : "en",
      { year: "numeric", month: "long", day: "numeric" }).format(d);
  };

  Chat.prototype._time = function (ts) {
    var d = new Date(ts * 1000);
    var time = el("time", "time", new Intl.DateTimeFormat(this.lang === "zh" ? "zh-CN" : "en",
      { hour: "2-digit", minute: "2-digit" }).format(d));
    time.dateTime = d.toISOString();
    return time;
  };

  Chat.prototype._row = function (m) {
    var from = m.from === "user" ? "user" : m.from === "system" ? "system" : "bot";
    var row = el("li", "row-msg from-" + from + " kind-" + m.kind);
    row.setAttribute("data-seq", String(m.seq));
    var who = el("span", "sr-only", (from === "user" ? this.t.you : this.t.bot) + ": ");
    var bubble = el("div", "bubble");
    bubble.appendChild(who);
    this._content(bubble, m);
    row.appendChild(bubble);
    var meta = el("div", "meta");
    meta.appendChild(this._time(m.ts));
    row.appendChild(meta);
    if (from === "user") this._renderDelivery(row, m);
    return row;
  };

  Chat.prototype._content = function (bubble, m) {
    var t = this.t;
    switch (m.kind) {
      case "text":
        bubble.appendChild(el("p", "text")).appendChild(richText(String(m.text)));
        return;
      case "image":
      case "video":
      case "audio":
        return this._media(bubble, m);
      case "file": {
        var name = m.name || fileNameOf(m.url);
        if (!isHttpUrl(m.url)) {
          bubble.appendChild(el("p", "text", name));
          return;
        }
        var a = link(m.url, null, "file");
        a.setAttribute("download", name);
        a.appendChild(icon("file"));
        var label = el("span", "file-label");
        label.appendChild(el("span", "file-name", name));
        label.appendChild(el("span", "file-action", t.download));
        a.appendChild(label);
        a.setAttribute("aria-label", t.download + " " + name);
        bubble.appendChild(a);
        return;
      }
      case "choices":
        return this._choices(bubble, m);
      default: {
        var notice = el("p", "unsupported");
        notice.appendChild(icon("alert"));
        notice.appendChild(el("span", null, t.unsupported(m.content_type || m.kind)));
        bubble.appendChild(notice);
      }
    }
  };

  Chat.prototype._media = function (bubble, m) {
    var t = this.t;
    var kind = m.kind;
    var fallback = function () {
      var box = el("div", "media-failed");
      box.appendChild(icon("alert"));
      var words = el("span", null, t.mediaFailed[kind]);
      box.appendChild(words);
      if (isHttpUrl(m.url)) box.appendChild(link(m.url, t.openLink));
      return box;
    };
    if (!isHttpUrl(m.url)) {
      bubble.appendChild(fallback());
      return;
    }
    var node;
    if (kind === "image") {
      node = link(m.url, null, "image-link");
      node.setAttribute("aria-label", t.openImage);
      var img = el("img", "image");
      img.alt = t.image;
      img.decoding = "async";
      img.src = m.url;
      node.appendChild(img);
      img.addEventListener("error", function () { node.replaceWith(fallback()); });
      img.addEventListener("load", this._scrollToEnd.bind(this));
    } else {
      node = el(kind, kind);
      node.controls = true;
      node.preload = "metadata";
      node.src = m.url;
      node.addEventListener("error", function () { node.replaceWith(fallback()); });
    }
    bubble.appendChild(node);
  };

  Chat.prototype._choices = function (bubble, m) {
    var t = this.t;
    bubble.appendChild(el("p", "text")).appendChild(richText(String(m.text || "")));
    var group = el("div", "choices style-" + (m.style === "list" ? "list" : "buttons"));
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", m.text || t.options);
    if (m.style === "list") {
      var opener = button("list-open", null);
      opener.appendChild(icon("list"));
      opener.appendChild(el("span", null, m.button || t.choose));
      opener.setAttribute("aria-haspopup", "dialog");
      opener.setAttribute("data-list", String(m.seq));
      opener.addEventListener("click", this._openList.bind(this, m, opener));
      this._chosenLabel(group, m);
      group.appendChild(opener);
    } else {
      (m.sections || []).forEach(function (section) {
        (section.options || []).forEach(function (option) {
          group.appendChild(this._optionButton("option", m, option));
        }, this);
      }, this);
    }
    bubble.appendChild(group);
  };

  /** For a list, the chosen row is named under the body (the rows live in the sheet). */
  Chat.prototype._chosenLabel = function (group, m) {
    var chosen = this.answered.get(m.seq);
    var old = group.querySelector(".chosen-label");
    if (old) old.remove();
    if (chosen === undefined) return;
    var option = findOption(m, chosen);
    var label = el("p", "chosen-label");
    label.appendChild(icon("check"));
    label.appendChild(el("span", null, this.t.chosen + ": " + (option ? option.label : chosen)));
    group.insertBefore(label, group.firstChild);
  };

  function findOption(m, id) {
    var found = null;
    (m.sections || []).forEach(function (s) {
      (s.options || []).forEach(function (o) { if (o.id === id) found = o; });
    });
    return found;
  }

  Chat.prototype._optionButton = function (cls, m, option) {
    var b = button(cls);
    b.setAttribute("data-choice", String(m.seq));
    b.setAttribute("data-option", option.id);
    b.appendChild(el("span", "option-title", option.label));
    if (option.description) b.appendChild(el("span", "option-desc", option.description));
    b.addEventListener("click", this._choose.bind(this, m, option));
    this._refreshControl(b);
    return b;
  };

  /** Enabled only when online and the choices message is neither answered nor being answered. */
  Chat.prototype._refreshControl = function (b) {
    if (b.classList.contains("retry")) {
      b.disabled = this.state !== "online";
      return;
    }
    var seq = Number(b.getAttribute("data-choice"));
    var chosen = this.answered.get(seq);
    var locked = chosen !== undefined || this._pickInFlight(seq);
    b.disabled = locked || this.state !== "online";
    var isChosen = chosen !== undefined && chosen === b.getAttribute("data-option");
    b.classList.toggle("chosen", isChosen);
    if (chosen !== undefined) b.setAttribute("aria-pressed", String(isChosen));
    var mark = b.querySelector(".icon-check");
    if (isChosen && !mark) b.insertBefore(icon("check"), b.firstChild);
    if (!isChosen && mark) mark.remove();
  };

  Chat.prototype._pickInFlight = function (seq) {
    var found = false;
    this.pending.forEach(function (p) { if (p.kind === "choose" && p.choicesSeq === seq) found = true; });
    return found;
  };

  Chat.prototype._answer = function (seq, optionId) {
    this.answered.set(seq, optionId);
    this._refreshChoices(seq);
  };

  Chat.prototype._unlockChoices = function (seq) {
    this._refreshChoices(seq);
  };

  Chat.prototype._refreshChoices = function (seq) {
    this.root.querySelectorAll('[data-choice="' + Number(seq) + '"]').forEach(this._refreshControl, this);
    var row = this.listEl.querySelector('[data-seq="' + Number(seq) + '"]');
    var m = this.messages.get(seq);
    if (row && m && m.style === "list") this._chosenLabel(row.querySelector(".choices"), m);
  };

  Chat.prototype._openList = function (m, opener) {
    var t = this.t;
    this.sheetOpener = opener;
    this.sheetFor = m.seq;
    this.sheetTitle.textContent = m.button || t.choose;
    var body = this.sheetBody;
    body.textContent = "";
    if (m.text) body.appendChild(el("p", "sheet-text", m.text));
    (m.sections || []).forEach(function (section) {
      var group = el("section", "sheet-section");
      if (section.title) group.appendChild(el("h4", "section-title", section.title));
      var list = el("ul", "rows");
      (section.options || []).forEach(function (option) {
        var item = el("li");
        item.appendChild(this._optionButton("row", m, option));
        list.appendChild(item);
      }, this);
      group.appendChild(list);
      body.appendChild(group);
    }, this);
    this.dialog.showModal();
    var first = body.querySelector("button.row:not(:disabled)") ||
      this.dialog.querySelector(".sheet-head button");
    if (first) first.focus();
  };

  // ---------------------------------------------------------------- sending

  Chat.prototype._submit = function () {
    var text = this.input.value;
    if (!text.trim() || this.state !== "online") return;
    var id = uuid();
    var p = { id: id, kind: "send", text: text, state: "sending" };
    this.pending.set(id, p);
    p.node = this._pendingRow(p);
    this.pendingEl.appendChild(p.node);
    this.emptyEl.hidden = true;
    this.input.value = "";
    this._transmit(id, p);
    this._scrollToEnd();
  };

  Chat.prototype._choose = function (m, option) {
    if (this.answered.has(m.seq) || this._pickInFlight(m.seq) || this.state !== "online") return;
    var id = uuid();
    var p = { id: id, kind: "choose", choicesSeq: m.seq, optionId: option.id, text: option.label,
      state: "sending" };
    this.pending.set(id, p);
    this._refreshChoices(m.seq);
    if (this.dialog.open && this.sheetFor === m.seq) this.dialog.close();
    p.node = this._pendingRow(p);
    this.pendingEl.appendChild(p.node);
    this._transmit(id, p);
    this._scrollToEnd();
  };

  Chat.prototype._transmit = function (id, p) {
    var frame = p.kind === "send"
      ? { type: "send", client_msg_id: id, text: p.text }
      : { type: "choose", client_msg_id: id, message_id: p.choicesSeq, option_id: p.optionId };
    p.state = "sending";
    this._renderPending(p);
    if (this.ws && this.ready && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify(frame));
    } else {
      p.state = "unsent";
      this._renderPending(p);
    }
  };

  /** A local copy of what the person sent, shown until the server's message replaces it. */
  Chat.prototype._pendingRow = function (p) {
    var row = el("li", "row-msg from-user kind-text is-pending");
    var bubble = el("div", "bubble");
    bubble.appendChild(el("span", "sr-only", this.t.you + ": "));
    bubble.appendChild(el("p", "text")).appendChild(richText(p.text));
    row.appendChild(bubble);
    row.appendChild(el("div", "meta"));
    return row;
  };

  Chat.prototype._renderPending = function (p) {
    if (!p.node) return;
    var meta = p.node.querySelector(".meta");
    meta.textContent = "";
    if (p.state === "unsent") {
      meta.appendChild(this._deliveryLabel("failed", ""));
      var retry = button("retry", this.t.retry);
      retry.addEventListener("click", this._transmit.bind(this, p.id, p));
      this._refreshControl(retry);
      meta.appendChild(retry);
    } else {
      meta.appendChild(this._deliveryLabel("sending", ""));
    }
  };

  /** Sent over a socket that closed before its ack: sent again after the reconnect's replay
   * (see _flushPending); meanwhile the person sees it is not through yet, with a retry. */
  Chat.prototype._markUnackedUnsent = function () {
    this.pending.forEach(function (p) {
      if (p.state === "sending") { p.state = "unsent"; this._renderPending(p); }
    }, this);
  };

  /** Back online: send again what got no ack. If the server had recorded it, the replay
   * already adopted it; if not, the server keys it by client_msg_id, so it is never doubled. */
  Chat.prototype._flushPending = function () {
    this.pending.forEach(function (p, id) {
      if (p.state === "unsent") this._transmit(id, p);
    }, this);
  };

  Chat.prototype._adoptPending = function (m) {
    if (m.from !== "user" || !m.client_msg_id) return;
    var p = this.pending.get(m.client_msg_id);
    if (!p) return;
    this.pending.delete(m.client_msg_id);
    if (p.node) p.node.remove();
    if (p.kind === "choose") this._refreshChoices(p.choicesSeq);
  };

  Chat.prototype._deliveryLabel = function (status, detail) {
    var t = this.t;
    var label = el("span", "delivery delivery-" + status,
      status === "sent" ? t.sent : status === "failed" ? t.failed : t.sending);
    if (status === "sent") label.insertBefore(icon("check"), label.firstChild);
    if (detail) label.title = detail;
    return label;
  };

  Chat.prototype._renderDelivery = function (row, m) {
    var meta = row.querySelector(".meta");
    var old = meta.querySelectorAll(".delivery, .retry");
    old.forEach(function (n) { n.remove(); });
    var s = this.statuses.get(m.seq);
    if (!s) return;
    meta.appendChild(this._deliveryLabel(s.status, s.detail));
    if (s.status === "failed") {
      var retry = button("retry", this.t.retry);
      retry.addEventListener("click", this._retry.bind(this, m.seq));
      this._refreshControl(retry);
      meta.appendChild(retry);
    }
  };

  Chat.prototype._retry = function (seq) {
    if (!this.ws || !this.ready) return;
    this.ws.send(JSON.stringify({ type: "retry", seq: seq }));
    this._onStatus({ seq: seq, status: "sending" }); // the server confirms with its own status
  };

  // ---------------------------------------------------------------- misc

  Chat.prototype.notify = function (text) {
    var bar = this.noticeEl;
    bar.textContent = text;
    bar.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(function () { bar.hidden = true; }, NOTICE_MS);
  };

  Chat.prototype._scrollToEnd = function () {
    var log = this.logEl;
    if (this.isOpen) log.scrollTop = log.scrollHeight;
  };

  // ---------------------------------------------------------------- the global

  var instances = [];

  function mount(target, opts) {
    var chat = new Chat(target, opts);
    instances.push(chat);
    return chat;
  }

  function first() {
    if (!instances.length) throw new Error("AIRudderChat: nothing mounted");
    return instances[0];
  }

  function fromScript(script) {
    var d = script.dataset;
    return {
      callId: d.callId,
      server: d.server,
      token: d.token,
      mode: d.mode,
      lang: d.lang,
      title: d.title,
      open: d.open === "true",
    };
  }

  window.AIRudderChat = {
    version: "1",
    mount: mount,
    instances: instances,
    open: function () { first().open(); },
    close: function () { first().close(); },
    toggle: function () { first().toggle(); },
    setToken: function (token) { instances.forEach(function (c) { c.setToken(token); }); },
  };

  if (SCRIPT && SCRIPT.dataset.callId) {
    var auto = function () {
      var opts = fromScript(SCRIPT);
      var target = SCRIPT.dataset.target ? document.querySelector(SCRIPT.dataset.target) : null;
      if (opts.mode === "inline" && !target) {
        target = document.createElement("div"); // no target: right where the tag is
        SCRIPT.parentNode.insertBefore(target, SCRIPT);
      }
      mount(target, opts);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
    else auto();
  }
})();
