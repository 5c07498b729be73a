/* The widget's fixed frame, built once: a Shadow DOM host with its stylesheet, the panel
 * (header, log, notice bar, message box), the list sheet and, when floating, the launcher. */

import { button, el, icon, uuid } from "./dom.js";
import { Sheet } from "./sheet.js";
import { localeOf, RTL } from "./strings.js";

/**
 * o: {t, mode, lang, theme, title, cssHref, row(m, option) for the sheet's rows,
 *     on: {close, toggle, escape, submit}}. Returns the parts the controller updates.
 */
export function buildShell(o) {
  const { t } = o;
  const host = document.createElement("airudder-chat");
  host.setAttribute("data-mode", o.mode);
  host.setAttribute("lang", localeOf(o.lang));
  // "light" or "dark"; otherwise the reader's own (prefers-color-scheme), see widget.css.
  host.setAttribute("data-theme", o.theme === "light" || o.theme === "dark" ? o.theme : "auto");
  // Arabic mirrors the widget; otherwise it follows the page's direction (inherited).
  if (RTL.has(o.lang)) host.dir = "rtl";
  const root = host.attachShadow({ mode: "open" });

  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = o.cssHref;
  root.appendChild(css);
  // Hidden until the stylesheet is in, so the page never flashes unstyled widget parts.
  const shell = el("div", "shell");
  shell.hidden = true;
  const reveal = () => {
    shell.hidden = false;
  };
  css.addEventListener("load", reveal);
  css.addEventListener("error", reveal);
  root.appendChild(shell);

  const panel = el("section", "panel");
  panel.setAttribute("aria-label", o.title);
  const header = el("header", "header");
  const heading = el("div", "heading");
  heading.appendChild(el("h2", "title", o.title));
  const stateEl = el("p", "state");
  stateEl.setAttribute("role", "status");
  heading.appendChild(stateEl);
  header.appendChild(heading);
  if (o.mode === "floating") {
    const closeBtn = button("icon-button close", null, t.close);
    closeBtn.appendChild(icon("close"));
    closeBtn.addEventListener("click", o.on.close);
    header.appendChild(closeBtn);
  }
  panel.appendChild(header);

  const logEl = el("div", "log");
  logEl.setAttribute("role", "log");
  logEl.setAttribute("aria-live", "polite");
  logEl.setAttribute("aria-label", t.messages);
  logEl.tabIndex = 0;
  const emptyEl = el("p", "empty", t.empty);
  const listEl = el("ol", "messages");
  const pendingEl = el("ol", "messages pending");
  // Always there, empty while the bot is not typing: a live region must exist before it
  // speaks. Polite, and outside the log's own live region so it is said once.
  const typingEl = el("div", "typing");
  typingEl.setAttribute("role", "status");
  logEl.append(emptyEl, listEl, pendingEl);
  const logWrap = el("div", "log-wrap");
  const jumpEl = button("jump", null);
  logWrap.append(logEl, typingEl, jumpEl);
  panel.appendChild(logWrap);

  const noticeEl = el("p", "notice-bar");
  noticeEl.setAttribute("role", "alert");
  noticeEl.hidden = true;
  panel.appendChild(noticeEl);

  const composer = buildComposer(t, o.on.submit);
  panel.appendChild(composer.form);
  const sheet = new Sheet(t, root, o.row);
  panel.appendChild(sheet.dialog);
  shell.appendChild(panel);

  let launcher = null;
  let badge = null;
  if (o.mode === "floating") {
    launcher = button("launcher", null, t.open);
    launcher.setAttribute("aria-expanded", "false");
    launcher.appendChild(icon("chat"));
    badge = el("span", "badge");
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(badge);
    launcher.addEventListener("click", o.on.toggle);
    shell.appendChild(launcher);
    root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !sheet.open) o.on.escape();
    });
  }
  const parts = {
    host,
    root,
    logEl,
    emptyEl,
    listEl,
    pendingEl,
    typingEl,
    jumpEl,
    sheet,
    launcher,
  };
  return {
    ...parts,
    ...composer,
    showOpen: openView(t, host, panel, launcher, badge),
    showConnection: connectionView(t, host, stateEl, composer),
    showTyping: typingView(t, typingEl),
    notify: noticeView(noticeEl),
  };
}

/** show(isOpen, unread): the panel shown or not; the launcher's label and unread badge. */
function openView(t, host, panel, launcher, badge) {
  return (isOpen, unread) => {
    host.toggleAttribute("data-open", isOpen);
    panel.hidden = !isOpen;
    if (!launcher) return;
    launcher.setAttribute("aria-expanded", String(isOpen));
    const label = unread ? `${t.open} (${t.unread(unread)})` : t.open;
    launcher.setAttribute("aria-label", isOpen ? t.close : label);
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? "99+" : String(unread);
  };
}

/** show(name): the header's state and, while not online, the reason under the box. The box
 * stays usable: what is written meanwhile waits for the connection (see ui.js). */
function connectionView(t, host, stateEl, { reasonEl }) {
  return (name) => {
    const online = name === "online";
    host.setAttribute("data-state", name);
    stateEl.textContent = t[name];
    reasonEl.textContent = online ? "" : t[`${name}Reason`];
    reasonEl.hidden = online;
  };
}

/** show(on): three dots and, for screen readers, "The bot is typing…" (said politely). */
function typingView(t, typingEl) {
  return (on) => {
    if (on === typingEl.hasChildNodes()) return;
    typingEl.textContent = "";
    if (!on) return;
    const dots = el("span", "dots");
    dots.setAttribute("aria-hidden", "true");
    dots.append(el("span"), el("span"), el("span"));
    typingEl.append(dots, el("span", "sr-only", t.typing));
  };
}

const NOTICE_MS = 6000;

/** notify(text): the notice bar shows `text` for a few seconds; notify(null) hides it. */
function noticeView(bar) {
  let timer = null;
  return (text) => {
    clearTimeout(timer);
    bar.hidden = text === null;
    if (text === null) return;
    bar.textContent = text;
    timer = setTimeout(() => {
      bar.hidden = true;
    }, NOTICE_MS);
  };
}

function buildComposer(t, onSubmit) {
  const form = el("form", "composer");
  form.noValidate = true;
  const id = `input-${uuid()}`;
  const label = el("label", "sr-only", t.inputLabel);
  label.htmlFor = id;
  // No maxLength until the server's `ready` says its limit.
  const input = el("textarea", "input");
  input.id = id;
  input.rows = 1;
  input.placeholder = t.placeholder;
  input.setAttribute("enterkeyhint", "send");
  const sendBtn = button("send", null, t.send);
  sendBtn.type = "submit";
  sendBtn.appendChild(icon("send"));
  const reasonEl = el("p", "composer-reason");
  reasonEl.id = `reason-${uuid()}`;
  input.setAttribute("aria-describedby", reasonEl.id);

  input.addEventListener("keydown", (e) => {
    // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onSubmit();
  });
  const row = el("div", "composer-row");
  row.append(label, input, sendBtn);
  form.append(row, reasonEl);
  return { form, input, sendBtn, reasonEl };
}
