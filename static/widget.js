/*
 * airudder-bridge chat widget: the embed entry point. Plain JavaScript, no build step, two
 * globals (AIRudderChat, and AIRudderChatQueue for code that runs before this script):
 *
 *   <script src="https://BRIDGE/static/widget.js" data-call-id="..." defer></script>
 *
 * A classic script, so that tag works on any page; the widget itself is ES modules in
 * widget/ beside this file, loaded with import() from this script's own URL. They come
 * from the bridge's origin: a page's CSP must allow scripts from there (it already must,
 * for this file), and the bridge serves /static/ with CORS, which module loading needs.
 * The API below exists at once; calls made before the modules are in wait for them.
 */
(() => {
  "use strict"; // a classic script, not a module: strict only when asked

  if (window.AIRudderChat) return; // loaded twice: keep the first

  const script = document.currentScript;
  const scriptUrl = script?.src ? new URL(script.src, location.href) : null;
  const base = scriptUrl || new URL("/static/widget.js", location.href);
  // All of them at once: left to ui.js's own imports, the browser would find them one level
  // of the import graph per round trip. One left out here only loads a little later.
  const PARTS = [
    "ui",
    "state",
    "connection",
    "renderers",
    "log",
    "shell",
    "sheet",
    "dom",
    "strings",
    "format",
    "typing",
    "scroll",
    "talk",
  ];
  let loading = null;
  const load = () => {
    loading ??= Promise.all(PARTS.map((p) => import(new URL(`widget/${p}.js`, base).href))).then(
      ([ui]) => ui,
    );
    return loading;
  };

  /** What mount() returns: the widget's API, usable before its modules have loaded. */
  class Widget {
    constructor(container, opts) {
      this.chat = null;
      this.destroyed = false;
      this.ready = load().then((ui) => {
        if (!this.destroyed) this.chat = new ui.Chat(container, opts, scriptUrl);
        return this.chat;
      });
      this.ready.catch((err) => {
        // Most likely this site is not among the bridge's allowed origins (no CORS for its
        // modules, and its socket would be refused too), or its CSP leaves the bridge out.
        console.error(`AIRudderChat: the widget did not load from ${base.origin}.`, err);
      });
    }

    _call(method, ...args) {
      this.ready.then(
        (chat) => chat?.[method](...args),
        () => {}, // said once, above
      );
    }

    open() {
      this._call("open");
    }

    close() {
      this._call("close");
    }

    toggle() {
      this._call("toggle");
    }

    setToken(token) {
      this._call("setToken", token);
    }

    destroy() {
      this._call("destroy");
      this.destroyed = true;
    }
  }

  const instances = [];

  function mount(target, opts = {}) {
    if (!opts.callId) throw new Error("AIRudderChat: callId (data-call-id) is required");
    const container = typeof target === "string" ? document.querySelector(target) : target;
    if (opts.mode === "inline" && !container) {
      throw new Error("AIRudderChat: inline mode needs a target element");
    }
    const widget = new Widget(container, opts);
    instances.push(widget);
    return widget;
  }

  function first() {
    if (!instances.length) throw new Error("AIRudderChat: nothing mounted");
    return instances[0];
  }

  window.AIRudderChat = {
    version: "1",
    mount,
    instances,
    open: () => first().open(),
    close: () => first().close(),
    toggle: () => first().toggle(),
    setToken: (token) => {
      for (const widget of instances) widget.setToken(token);
    },
  };

  if (script?.dataset.callId) {
    const auto = () => {
      const d = script.dataset;
      const opts = {
        callId: d.callId,
        server: d.server,
        token: d.token,
        mode: d.mode,
        lang: d.lang,
        title: d.title,
        open: d.open === "true",
        typingTimeout: d.typingTimeout,
        theme: d.theme,
        format: d.format,
        pageTitle: d.pageTitle === "true",
      };
      let target = d.target ? document.querySelector(d.target) : null;
      if (opts.mode === "inline" && !target) {
        target = document.createElement("div"); // no target: right where the tag is
        script.parentNode.insertBefore(target, script);
      }
      mount(target, opts);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
    else auto();
  }

  // Page code that runs before this script (a defer or async tag) queues itself here:
  //   (window.AIRudderChatQueue ||= []).push((AIRudderChat) => { ... });
  // or waits for the "airudderchat:ready" event on document. Queued later, it runs at once.
  const run = (fn) => {
    try {
      fn(window.AIRudderChat);
    } catch (err) {
      console.error("AIRudderChat: queued code failed", err);
    }
  };
  const queued = Array.isArray(window.AIRudderChatQueue) ? window.AIRudderChatQueue : [];
  window.AIRudderChatQueue = { push: (...fns) => fns.forEach(run) };
  queued.forEach(run);
  document.dispatchEvent(new CustomEvent("airudderchat:ready", { detail: window.AIRudderChat }));
})();
