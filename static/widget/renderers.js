/* One renderer per message kind: RENDERERS[kind](bubble, message, ctx) fills the bubble.
 * A new kind is one entry here plus its words in strings.js; an unknown kind gets the
 * `unsupported` notice. ctx: {t, chosen(seq), choose(m, option), openList(m, opener),
 * refreshControl(button), mediaLoaded()}. */

import { button, el, fileNameOf, icon, isHttpUrl, link, richText } from "./dom.js";

function text(bubble, m) {
  bubble.appendChild(el("p", "text")).appendChild(richText(String(m.text ?? "")));
}

/** image, video and audio: the browser's own element; a readable fallback when it fails. */
function media(bubble, m, ctx) {
  const { t } = ctx;
  const kind = m.kind;
  const fallback = () => {
    const box = el("div", "media-failed");
    box.appendChild(icon("alert"));
    box.appendChild(el("span", null, t.mediaFailed[kind]));
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
    node.setAttribute("aria-label", t.openImage);
    const img = el("img", "image");
    img.alt = t.image;
    img.decoding = "async";
    img.src = m.url;
    node.appendChild(img);
    img.addEventListener("error", () => node.replaceWith(fallback()));
    img.addEventListener("load", () => ctx.mediaLoaded());
  } else {
    node = el(kind, kind);
    node.controls = true;
    node.preload = "metadata";
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
  label.appendChild(el("span", "file-name", name));
  label.appendChild(el("span", "file-action", t.download));
  a.appendChild(label);
  a.setAttribute("aria-label", `${t.download} ${name}`);
  bubble.appendChild(a);
}

/** `buttons`: the options in order under the text. `list`: one opener for the sheet, and
 * the chosen row named under the text (the rows themselves live in the sheet). */
function choices(bubble, m, ctx) {
  const { t } = ctx;
  text(bubble, m);
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
  b.appendChild(el("span", "option-title", option.label));
  if (option.description) b.appendChild(el("span", "option-desc", option.description));
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
