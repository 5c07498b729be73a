/* One renderer per message kind: RENDERERS[kind](bubble, message, ctx) fills the bubble.
 * A new kind is one entry here plus its words in strings.js; an unknown kind gets the
 * `unsupported` notice. ctx: {t, chosen(seq), choose(m, option), openList(m, opener),
 * refreshControl(button), mediaLoaded(), format}. */

import { button, el, fileNameOf, formattedText, icon, isHttpUrl, link, richText } from "./dom.js";
import { parse } from "./format.js";

/** Message text, its direction from its own first strong character (dir="auto"). The bot's
 * text is formatted (*bold* _italic_ ~strike~ `code`) unless the widget's `format` is off. */
export function textBlock(value, { format }, fromBot = true) {
  const p = el("p", "text");
  p.dir = "auto";
  const s = String(value ?? "");
  p.appendChild(format && fromBot ? formattedText(parse(s)) : richText(s));
  return p;
}

function text(bubble, m, ctx) {
  bubble.appendChild(textBlock(m.text, ctx, m.from !== "user"));
}

/** image, video and audio: the browser's own element; a readable fallback when it fails. */
function media(bubble, m, ctx) {
  const { t } = ctx;
  const kind = m.kind;
  const fallback = () => {
    const box = el("div", "media-failed");
    box.appendChild(icon("alert"));
    const words = el("span", null, t.mediaFailed[kind]);
    if (m.name) words.prepend(el("bdi", "media-name", m.name), ": ");
    box.appendChild(words);
    if (isHttpUrl(m.url)) box.appendChild(link(m.url, t.openLink));
    return box;
  };
  if (!isHttpUrl(m.url)) {
    bubble.appendChild(fallback());
    return;
  }
  let node;
  if (kind === "image") {
    node = link(m.url, null, "image-link");
    node.setAttribute("aria-label", m.name ? `${t.openImage}: ${m.name}` : t.openImage);
    const img = el("img", "image");
    img.alt = m.name || t.image; // the vendor's media.name, when the server carries it
    img.decoding = "async";
    img.src = m.url;
    node.appendChild(img);
    img.addEventListener("error", () => node.replaceWith(fallback()));
    img.addEventListener("load", () => ctx.mediaLoaded());
  } else {
    node = el(kind, kind);
    node.controls = true;
    node.preload = "metadata";
    node.setAttribute("aria-label", m.name || t[kind]);
    if (m.name) node.title = m.name;
    node.src = m.url;
    node.addEventListener("error", () => node.replaceWith(fallback()));
  }
  bubble.appendChild(node);
}

function file(bubble, m, { t }) {
  const name = m.name || fileNameOf(m.url);
  if (!isHttpUrl(m.url)) {
    bubble.appendChild(el("p", "text", name));
    return;
  }
  const a = link(m.url, null, "file");
  a.setAttribute("download", name);
  a.appendChild(icon("file"));
  const label = el("span", "file-label");
  const nameEl = label.appendChild(el("span", "file-name", name));
  nameEl.dir = "auto";
  label.appendChild(el("span", "file-action", t.download));
  a.appendChild(label);
  // No aria-label: the link is named by what it shows ("name Download"), WCAG 2.5.3.
  bubble.appendChild(a);
}

/** `buttons`: the options in order under the text. `list`: one opener for the sheet, and
 * the chosen row named under the text (the rows themselves live in the sheet). */
function choices(bubble, m, ctx) {
  const { t } = ctx;
  text(bubble, m, ctx);
  const group = el("div", `choices style-${m.style === "list" ? "list" : "buttons"}`);
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", m.text || t.options);
  if (m.style === "list") {
    const opener = button("list-open", null);
    opener.appendChild(icon("list"));
    opener.appendChild(el("span", null, m.button || t.choose));
    opener.setAttribute("aria-haspopup", "dialog");
    opener.setAttribute("data-list", String(m.seq));
    opener.addEventListener("click", () => ctx.openList(m, opener));
    renderChosenLabel(group, m, ctx);
    group.appendChild(opener);
  } else {
    for (const option of eachOption(m)) group.appendChild(optionButton("option", m, option, ctx));
  }
  bubble.appendChild(group);
}

function unsupported(bubble, m, { t }) {
  const notice = el("p", "unsupported");
  notice.appendChild(icon("alert"));
  notice.appendChild(el("span", null, t.unsupported(m.content_type || m.kind)));
  bubble.appendChild(notice);
}

export const RENDERERS = {
  text,
  image: media,
  video: media,
  audio: media,
  file,
  choices,
  unsupported,
};

export function renderContent(bubble, m, ctx) {
  const render = Object.hasOwn(RENDERERS, m.kind) ? RENDERERS[m.kind] : unsupported;
  render(bubble, m, ctx);
}

function* eachOption(m) {
  for (const section of m.sections || []) yield* section.options || [];
}

/** A button (`cls` "option" under a message, "row" in the sheet) that picks `option`. */
export function optionButton(cls, m, option, ctx) {
  const b = button(cls);
  b.setAttribute("data-choice", String(m.seq));
  b.setAttribute("data-option", option.id);
  b.appendChild(el("span", "option-title", option.label)).dir = "auto";
  if (option.description) b.appendChild(el("span", "option-desc", option.description)).dir = "auto";
  b.addEventListener("click", () => ctx.choose(m, option));
  ctx.refreshControl(b);
  return b;
}

export function renderChosenLabel(group, m, ctx) {
  group.querySelector(".chosen-label")?.remove();
  const chosen = ctx.chosen(m.seq);
  if (chosen === undefined) return;
  let option = null;
  for (const o of eachOption(m)) if (o.id === chosen) option = o;
  const label = el("p", "chosen-label");
  label.appendChild(icon("check"));
  label.appendChild(el("span", null, `${ctx.t.chosen}: ${option ? option.label : chosen}`));
  group.insertBefore(label, group.firstChild);
}

/** An option's look: enabled or not, and marked (check icon, aria-pressed) when it is the
 * answer `chosen` (an option id, undefined while unanswered). */
export function refreshOption(b, chosen, enabled) {
  b.disabled = !enabled;
  const isChosen = chosen !== undefined && chosen === b.getAttribute("data-option");
  b.classList.toggle("chosen", isChosen);
  if (chosen !== undefined) b.setAttribute("aria-pressed", String(isChosen));
  const mark = b.querySelector(".icon-check");
  if (isChosen && !mark) b.insertBefore(icon("check"), b.firstChild);
  if (!isChosen && mark) mark.remove();
}
