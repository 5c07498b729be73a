/* Scroll that respects the reader: the log follows new messages only while the person is at
 * its bottom; otherwise a "new messages" button counts them and jumps down when pressed.
 * And, for the bridge's own /chat page (or a host page that asks for it), the unread count
 * in the page's title: "(2) Chat". */

import { icon } from "./dom.js";

const NEAR_BOTTOM_PX = 32;

export class ScrollKeeper {
  /** log: the scrolling element; jump: its "new messages" button; content: the elements
   * whose growth (a message, an image that loaded, the typing dots) follows the bottom. */
  constructor(log, jump, t, content) {
    Object.assign(this, { log, jump, t });
    this.stick = true; // the reader is at the bottom: follow what comes
    this.below = 0; // messages that came while the reader was up in the history
    this.words = jump.appendChild(document.createElement("span"));
    jump.appendChild(icon("down"));
    jump.hidden = true;
    log.addEventListener("scroll", () => this._scrolled(), { passive: true });
    jump.addEventListener("click", () => {
      this.toEnd();
      log.focus({ preventScroll: true });
    });
    if (typeof ResizeObserver === "function") {
      const ro = new ResizeObserver(() => this.settle());
      for (const part of content) ro.observe(part);
    }
  }

  atBottom() {
    const { log } = this;
    return log.scrollHeight - log.scrollTop - log.clientHeight <= NEAR_BOTTOM_PX;
  }

  _scrolled() {
    if (!this.log.clientHeight) return; // hidden (a closed panel): nothing was read
    this.stick = this.atBottom();
    if (this.stick) this._count(0);
  }

  /** To the bottom, and follow from there (the person sent something, or asked). */
  toEnd() {
    this.stick = true;
    this.log.scrollTop = this.log.scrollHeight;
    this._count(0);
  }

  /** Something changed size: stay at the bottom if the reader was there. */
  settle() {
    if (this.stick) this.log.scrollTop = this.log.scrollHeight;
  }

  /** `n` new messages were appended (live), `mine` when the person sent one of them. */
  added(n, mine) {
    if (mine || this.stick) this.toEnd();
    else this._count(this.below + n);
  }

  _count(n) {
    this.below = n;
    this.jump.hidden = n === 0;
    this.words.textContent = n ? this.t.newMessages(n) : "";
  }
}

const COUNT_PREFIX = /^\(\d+\+?\) /;

/** show(unread): "(n) " before the page's own title while there is something unread. The
 * title may change meanwhile (a single-page app): only our prefix is ever added or taken. */
export function pageTitle(doc = document) {
  let shown = 0;
  return (unread) => {
    if (unread === shown) return;
    shown = unread;
    const own = doc.title.replace(COUNT_PREFIX, "");
    doc.title = unread ? `(${unread > 99 ? "99+" : unread}) ${own}` : own;
  };
}
