/* The message log's parts: a row per message (bubble, time, delivery), day dividers, and the
 * local copies of what the person sent until the server's message replaces them. */

import { button, dayKey, el, icon } from "./dom.js";
import { renderContent, textBlock } from "./renderers.js";
import { localeOf as locale } from "./strings.js";

function dayDivider(ts, lang, t) {
  const d = new Date(ts * 1000);
  const now = new Date();
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  let label;
  if (dayKey(ts) === dayKey(now.getTime() / 1000)) label = t.today;
  else if (dayKey(ts) === dayKey(yesterday.getTime() / 1000)) label = t.yesterday;
  else {
    const style = { year: "numeric", month: "long", day: "numeric" };
    label = new Intl.DateTimeFormat(locale(lang), style).format(d);
  }
  const divider = el("li", "divider");
  divider.appendChild(el("span", null, label));
  return divider;
}

function timeOf(ts, lang) {
  const d = new Date(ts * 1000);
  const style = { hour: "2-digit", minute: "2-digit" };
  const time = el("time", "time", new Intl.DateTimeFormat(locale(lang), style).format(d));
  time.dateTime = d.toISOString();
  return time;
}

function fromOf(m) {
  return m.from === "user" || m.from === "system" ? m.from : "bot";
}

function bubbleFor(from, t) {
  const bubble = el("div", "bubble");
  bubble.appendChild(el("span", "sr-only", `${from === "user" ? t.you : t.bot}: `));
  return bubble;
}

/** ctx: the renderers' ctx plus lang. */
function messageRow(m, ctx) {
  const from = fromOf(m);
  const row = el("li", `row-msg from-${from} kind-${m.kind}`);
  row.setAttribute("data-seq", String(m.seq));
  const bubble = bubbleFor(from, ctx.t);
  renderContent(bubble, m, ctx);
  row.appendChild(bubble);
  const meta = el("div", "meta");
  meta.appendChild(timeOf(m.ts, ctx.lang));
  row.appendChild(meta);
  return row;
}

/** A local copy of what the person sent, shown until the server's message replaces it. */
function pendingRow(p, ctx) {
  const row = el("li", "row-msg from-user kind-text is-pending");
  const bubble = bubbleFor("user", ctx.t);
  bubble.appendChild(textBlock(p.text, ctx, false));
  row.appendChild(bubble);
  row.appendChild(el("div", "meta"));
  return row;
}

function deliveryLabel(status, detail, t) {
  const words = { sent: t.sent, failed: t.failed, queued: t.queued }[status] || t.sending;
  const label = el("span", `delivery delivery-${status}`, words);
  if (status === "sent") label.insertBefore(icon("check"), label.firstChild);
  if (detail) label.title = detail;
  return label;
}

/** Shows `status` ({status, detail}, or none) in a row's meta, with a Retry button that
 * calls `onRetry` when given. */
export function renderDelivery(row, status, t, onRetry) {
  const meta = row.querySelector(".meta");
  for (const old of meta.querySelectorAll(".delivery, .retry")) old.remove();
  if (!status) return null;
  meta.appendChild(deliveryLabel(status.status, status.detail, t));
  if (!onRetry) return null;
  const retry = button("retry", t.retry);
  retry.addEventListener("click", onRetry);
  meta.appendChild(retry);
  return retry;
}

/** The log's lists: the server's messages in seq order, then the person's local copies. */
export class MessageLog {
  constructor({ listEl, pendingEl, emptyEl }, ctx) {
    Object.assign(this, { listEl, pendingEl, emptyEl, ctx });
    this.lastDay = null;
  }

  clear(keepsPending) {
    this.listEl.textContent = "";
    this.emptyEl.hidden = keepsPending;
    this.lastDay = null;
  }

  /** Shows `m` after a day divider when its day is new; returns its row. */
  append(m) {
    this.emptyEl.hidden = true;
    const day = dayKey(m.ts);
    if (day !== this.lastDay) {
      this.lastDay = day;
      this.listEl.appendChild(dayDivider(m.ts, this.ctx.lang, this.ctx.t));
    }
    return this.listEl.appendChild(messageRow(m, this.ctx));
  }

  rowOf(seq) {
    return this.listEl.querySelector(`[data-seq="${Number(seq)}"]`);
  }

  addPending(p) {
    this.emptyEl.hidden = true;
    p.node = this.pendingEl.appendChild(pendingRow(p, this.ctx));
  }
}
