/* WhatsApp-style formatting of bot text, without the DOM: `parse(text)` returns a tree of
 * plain objects, and dom.js builds it with text nodes and a few elements (never HTML).
 *
 *   {type: "text", text}                 plain text
 *   {type: "link", url}                  an http(s) URL (the same rule as unformatted text)
 *   {type: "bold"|"italic"|"strike", children}    *bold*  _italic_  ~strike~
 *   {type: "code", text}                 `inline code`, taken literally
 *   {type: "pre", text}                  ```monospace block```, taken literally, may span lines
 *
 * The rules, as WhatsApp has them: an opening marker starts the text or follows a character
 * that is not a letter or digit, and is followed by a non-space; the closing one follows a
 * non-space and ends the text or comes before a non-letter, non-digit; both on one line.
 * Different markers nest (*_both_*), the same one does not. Text inside code is literal, and
 * a URL is one piece: markers never cut it (snake_case_paths stay as they are). */

const MARKERS = { "*": "bold", _: "italic", "~": "strike" };
const URL_AT = /https?:\/\/[^\s<>"'`]+/y;
// Punctuation (and our own markers) that ends a sentence rather than the URL.
const TRAILING = /[.,;:!?'")\]}*_~，。！？；：、）】]+$/;
const WORD = /[\p{L}\p{N}]/u;

function isHttpUrl(value) {
  try {
    const u = new URL(value);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** The http(s) URL starting at `i`, or "". */
export function urlAt(s, i) {
  if (s[i] !== "h") return "";
  URL_AT.lastIndex = i;
  const m = URL_AT.exec(s);
  if (!m) return "";
  const url = m[0].replace(TRAILING, "");
  return url && isHttpUrl(url) ? url : "";
}

const isWord = (c) => c !== undefined && WORD.test(c);
const isSpace = (c) => c === undefined || /\s/.test(c);

/** Where the literal piece at `i` (a ``` block, a `code` span, a URL) ends, or -1. */
function literalEnd(s, i, end) {
  if (s.startsWith("```", i)) {
    const close = s.indexOf("```", i + 3);
    return close > i + 3 && close + 3 <= end ? close + 3 : -1;
  }
  if (s[i] === "`") {
    const close = s.indexOf("`", i + 1);
    const ok = close > i + 1 && close < end && !s.slice(i + 1, close).includes("\n");
    return ok ? close + 1 : -1;
  }
  const url = urlAt(s, i);
  return url && i + url.length <= end ? i + url.length : -1;
}

/** The index of the marker closing the span `c` opened at `i`, or -1. */
function closingOf(s, c, i, end) {
  let k = i + 1;
  while (k < end) {
    const ch = s[k];
    if (ch === "\n") return -1;
    const skip = literalEnd(s, k, end);
    if (skip > k) {
      k = skip;
      continue;
    }
    if (ch === c && k > i + 1 && !isSpace(s[k - 1]) && !isWord(s[k + 1])) return k;
    k++;
  }
  return -1;
}

function inline(s, start, end, open) {
  const nodes = [];
  let buf = "";
  const flush = () => {
    if (buf) nodes.push({ type: "text", text: buf });
    buf = "";
  };
  let i = start;
  while (i < end) {
    const lit = literalEnd(s, i, end);
    if (lit > i) {
      flush();
      if (s.startsWith("```", i)) nodes.push({ type: "pre", text: s.slice(i + 3, lit - 3) });
      else if (s[i] === "`") nodes.push({ type: "code", text: s.slice(i + 1, lit - 1) });
      else nodes.push({ type: "link", url: s.slice(i, lit) });
      i = lit;
      continue;
    }
    const c = s[i];
    const type = MARKERS[c];
    if (type && !open.has(c) && !isWord(s[i - 1]) && !isSpace(s[i + 1])) {
      const close = closingOf(s, c, i, end);
      if (close > 0) {
        flush();
        const children = inline(s, i + 1, close, new Set([...open, c]));
        nodes.push({ type, children });
        i = close + 1;
        continue;
      }
    }
    buf += c;
    i++;
  }
  flush();
  return nodes;
}

export function parse(text) {
  const s = String(text ?? "");
  return inline(s, 0, s.length, new Set());
}

/** The tree without the DOM, for tests: ["text", "*", ...]-free plain text. */
export function plainText(nodes) {
  return nodes
    .map((n) => (n.children ? plainText(n.children) : n.type === "link" ? n.url : n.text))
    .join("");
}
