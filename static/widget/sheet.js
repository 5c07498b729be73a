/* The dialog that shows a `list` choices message's sections and rows. */

import { button, el, icon, uuid } from "./dom.js";

export class Sheet {
  /** root: the shadow root (for its activeElement); row(m, option): a row's button. */
  constructor(t, root, row) {
    this.root = root;
    this.row = row;
    this.opener = null;
    this.forSeq = null;
    const dialog = el("dialog", "sheet");
    const titleId = `sheet-title-${uuid()}`;
    dialog.setAttribute("aria-labelledby", titleId);
    const head = el("div", "sheet-head");
    this.title = el("h3", "sheet-title");
    this.title.id = titleId;
    const closeBtn = button("icon-button", null, t.closeList);
    closeBtn.appendChild(icon("close"));
    closeBtn.addEventListener("click", () => dialog.close());
    head.appendChild(this.title);
    head.appendChild(closeBtn);
    this.body = el("div", "sheet-body");
    dialog.appendChild(head);
    dialog.appendChild(this.body);
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) dialog.close(); // a click on the backdrop
    });
    dialog.addEventListener("keydown", (e) => this._key(e));
    dialog.addEventListener("close", () => {
      // "close" is dispatched as a task: the sheet may have been opened again meanwhile
      // (Esc then Enter at once), and that opening's state must stand.
      if (dialog.open) return;
      if (this.opener?.isConnected) this.opener.focus();
      this.forSeq = null;
    });
    this.dialog = dialog;
    this.t = t;
  }

  _key(e) {
    if (e.key === "Escape") {
      // Closed here rather than by the browser's own "cancel", which Chromium may skip
      // for a dialog opened without a fresh user activation.
      e.preventDefault();
      this.dialog.close();
      return;
    }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const rows = [...this.dialog.querySelectorAll("button.row:not(:disabled)")];
    if (!rows.length) return;
    const at = rows.indexOf(this.root.activeElement);
    const next = e.key === "ArrowDown" ? at + 1 : at - 1;
    rows[(next + rows.length) % rows.length].focus();
    e.preventDefault();
  }

  get open() {
    return this.dialog.open;
  }

  isShowing(seq) {
    return this.dialog.open && this.forSeq === seq;
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  show(m, opener) {
    this.opener = opener;
    this.forSeq = m.seq;
    this.title.textContent = m.button || this.t.choose;
    const body = this.body;
    body.textContent = "";
    if (m.text) body.appendChild(el("p", "sheet-text", m.text));
    for (const section of m.sections || []) {
      const group = el("section", "sheet-section");
      if (section.title) group.appendChild(el("h4", "section-title", section.title));
      const list = el("ul", "rows");
      for (const option of section.options || []) {
        const item = el("li");
        item.appendChild(this.row(m, option));
        list.appendChild(item);
      }
      group.appendChild(list);
      body.appendChild(group);
    }
    this.dialog.showModal();
    const first =
      body.querySelector("button.row:not(:disabled)") ||
      this.dialog.querySelector(".sheet-head button");
    first?.focus();
  }
}
