/* Small DOM helpers. Server data only ever reaches the page through textContent and
 * attributes, never as HTML; only http(s) URLs become links or media. */

const SVG_NS = "http://www.w3.org/2000/svg";

export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function button(cls, text, label) {
  const b = el("button", cls, text);
  b.type = "button";
  if (label) b.setAttribute("aria-label", label);
  return b;
}

const ICONS = {
  chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
  close: "M6 6l12 12M18 6L6 18",
  send: "M3 11l18-8-8 18-2-8-8-2z",
  file: "M6 2h8l6 6v14H6zM14 2v6h6",
  list: "M4 6h16M4 12h16M4 18h10",
  check: "M5 13l4 4L19 7",
  alert: "M12 8v5M12 16.5v.5M12 3l10 18H2z",
  down: "M12 5v14M6 13l6 6 6-6",
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon icon-${name}`);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name]);
  svg.appendChild(path);
  return svg;
}

export function isHttpUrl(value) {
  try {
    const u = new URL(value);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

export function link(url, text, cls) {
  const a = el("a", cls, text);
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

const URL_RE = /https?:\/\/[^\s<>"'`]+/g;
const TRAILING_PUNCT_RE = /[.,;:!?'")\]}，。！？；：、）】]+$/;

/** Text as text nodes; http(s) URLs become links. Never parsed as HTML. */
export function richText(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const url = match[0].replace(TRAILING_PUNCT_RE, "");
    if (!url || !isHttpUrl(url)) continue;
    frag.appendChild(document.createTextNode(text.slice(last, match.index)));
    frag.appendChild(link(url, url));
    last = match.index + url.length;
  }
  frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}

const FORMAT_TAGS = { bold: "strong", italic: "em", strike: "s" };

/** The tree of format.js's parse() as DOM nodes: text nodes, <strong>, <em>, <s>, <code>,
 * links for http(s) URLs. Never parsed as HTML. */
export function formattedText(nodes) {
  const frag = document.createDocumentFragment();
  for (const n of nodes) {
    if (n.type === "text") frag.appendChild(document.createTextNode(n.text));
    else if (n.type === "link") frag.appendChild(link(n.url, n.url));
    else if (n.type === "code") frag.appendChild(el("code", "code", n.text));
    else if (n.type === "pre") frag.appendChild(el("code", "code-block", n.text));
    else if (FORMAT_TAGS[n.type]) {
      frag.appendChild(el(FORMAT_TAGS[n.type])).appendChild(formattedText(n.children));
    }
  }
  return frag;
}

export function uuid() {
  if (globalThis.crypto?.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      // an insecure context (plain http on a LAN address) has no randomUUID: below
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => (x + 0x100).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function dayKey(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function fileNameOf(url) {
  try {
    const parts = new URL(url).pathname.split("/");
    return decodeURIComponent(parts[parts.length - 1]) || url;
  } catch {
    return url;
  }
}

export function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // a sandboxed iframe may refuse it
  }
}
