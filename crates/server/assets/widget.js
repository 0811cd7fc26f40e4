// frontdesk chat widget. Embed with
//   <script src="https://HOST/widget.js" data-key="fd_pk_…" data-agent="support" async></script>
// or place <frontdesk-chat agent="support" key="fd_pk_…"></frontdesk-chat> where it should be
// inline. With `preview`, it starts no chat: `element.preview({name, widget})` shows how an
// agent's widget settings look (the dashboard's agent editor). Plain JavaScript, a custom element in a shadow root, no framework, no eval, no
// inline script, and no request to anything but the server it came from.
(() => {
  "use strict";
  if (window.customElements.get("frontdesk-chat")) return;
  const script = document.currentScript;
  const BASE = script ? new URL(script.src).origin : location.origin;
  const DEFAULT_KEY = script ? script.dataset.key : undefined;
  const DEFAULT_AGENT = script ? script.dataset.agent : undefined;
  const DEFAULT_LANG = script ? script.dataset.lang : undefined;
  /** JSON in a `context` attribute (data-context on the script tag): an object, or nothing. */
  const parseContext = (text) => {
    if (!text) return undefined;
    try {
      const value = JSON.parse(text);
      return value && typeof value === "object" && !Array.isArray(value) ? value : undefined;
    } catch (_) {
      return undefined;
    }
  };
  const DEFAULT_CONTEXT = script ? parseContext(script.dataset.context) : undefined;
  const listeners = {};
  const emit = (name, detail) => (listeners[name] || []).forEach((fn) => { try { fn(detail); } catch (_) { /* a listener's fault */ } });

  const CSS = `
:host { all: initial; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fd-fg); --fd-accent: #4f46e5; --fd-on-accent: #ffffff; --fd-radius: 14px; --fd-fg: #111827; --fd-bg: #ffffff; --fd-muted: #6b7280; --fd-bubble: #f3f4f6; }
:host([data-theme="dark"]) { --fd-fg: #f9fafb; --fd-bg: #111827; --fd-muted: #9ca3af; --fd-bubble: #1f2937; }
.launcher { display: flex; align-items: center; justify-content: center; position: fixed; bottom: 20px; right: 20px; width: 56px; height: 56px; border-radius: 50%; border: none; background: var(--fd-accent); color: var(--fd-on-accent); font-size: 24px; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); z-index: 2147483000; }
:host([data-position="bottom-left"]) .launcher, :host([data-position="bottom-left"]) .panel { right: auto; left: 20px; }
.launcher:focus-visible, button:focus-visible, textarea:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
.panel { position: fixed; bottom: 88px; right: 20px; width: 380px; max-width: calc(100vw - 40px); height: 560px; max-height: calc(100vh - 120px); display: flex; flex-direction: column; background: var(--fd-bg); border-radius: var(--fd-radius); box-shadow: 0 10px 40px rgba(0,0,0,.25); overflow: hidden; z-index: 2147483000; }
:host([inline]) .panel { position: relative; bottom: auto; right: auto; width: 100%; height: 100%; max-height: none; box-shadow: none; border: 1px solid #e5e7eb; }
.panel[hidden], .launcher[hidden] { display: none; }
header { background: var(--fd-accent); color: var(--fd-on-accent); padding: 14px 16px; display: flex; align-items: center; gap: 8px; }
header .titles { flex: 1; min-width: 0; }
header h2 { margin: 0; font-size: 16px; font-weight: 600; }
.avatar { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; }
.log[hidden], .history[hidden], .chips[hidden], form[hidden] { display: none; }
header p { margin: 2px 0 0; font-size: 12px; opacity: .9; }
header button { background: transparent; border: none; color: var(--fd-on-accent); cursor: pointer; font-size: 14px; padding: 4px 8px; border-radius: 6px; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
.msg { max-width: 85%; padding: 8px 12px; border-radius: 12px; line-height: 1.4; font-size: 14px; overflow-wrap: anywhere; }
.msg.user, .msg.notice { white-space: pre-wrap; }
.msg p { margin: 0 0 6px; } .msg p:last-child { margin-bottom: 0; }
.msg h3, .msg h4, .msg h5, .msg h6 { margin: 4px 0; font-size: 15px; }
.msg ul, .msg ol { margin: 4px 0; padding-left: 20px; }
.msg pre { background: rgba(0,0,0,.06); padding: 8px; border-radius: 8px; overflow-x: auto; margin: 4px 0; }
.msg code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.msg table { border-collapse: collapse; margin: 4px 0; } .msg th, .msg td { border: 1px solid #d1d5db; padding: 2px 6px; }
.msg a { color: inherit; text-decoration: underline; }
.msg.user { align-self: flex-end; background: var(--fd-accent); color: var(--fd-on-accent); }
.msg.assistant { align-self: flex-start; background: var(--fd-bubble); color: var(--fd-fg); }
.msg.notice { align-self: center; background: transparent; color: var(--fd-muted); font-size: 12px; }
.regenerate { align-self: flex-start; border: none; background: transparent; color: var(--fd-muted); font-size: 12px; cursor: pointer; padding: 0 4px; }
.msg.replaced { opacity: .5; }
.msg .by { display: flex; align-items: center; gap: 6px; font-size: 12px; font-weight: 600; margin-bottom: 4px; }
.msg .by img, .msg .by .initials { width: 20px; height: 20px; border-radius: 50%; object-fit: cover; }
.msg .by .initials { display: inline-grid; place-items: center; background: var(--fd-accent); color: var(--fd-on-accent); font-size: 10px; }
.typing { align-self: flex-start; color: var(--fd-muted); font-size: 12px; font-style: italic; }
.human { align-self: center; margin: 0 12px 6px; background: none; border: 1px solid var(--fd-muted); color: var(--fd-fg); border-radius: 999px; padding: 4px 12px; font-size: 12px; cursor: pointer; }
.human[hidden] { display: none; }
.sources { margin-top: 6px; font-size: 12px; color: var(--fd-muted); } .sources ol { margin: 2px 0 0; padding-left: 18px; }
.history { flex: 1; overflow-y: auto; padding: 12px; } .history h3 { margin: 8px 0; font-size: 15px; }
.history ul { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 6px; }
.history li button { width: 100%; text-align: left; border: 1px solid #d1d5db; border-radius: 10px; background: var(--fd-bg); color: var(--fd-fg); padding: 8px 10px; cursor: pointer; display: flex; flex-direction: column; gap: 2px; font: inherit; font-size: 14px; }
.history li button.current { border-color: var(--fd-accent); } .history li span { font-size: 12px; color: var(--fd-muted); }
.history .back { border: none; background: transparent; color: var(--fd-fg); cursor: pointer; padding: 2px 0; font: inherit; font-size: 13px; }
.history .empty { color: var(--fd-muted); font-size: 14px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px 8px; }
.chips button { border: 1px solid var(--fd-accent); color: var(--fd-fg); background: transparent; border-radius: 999px; padding: 4px 10px; font-size: 13px; cursor: pointer; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e5e7eb; }
textarea { flex: 1; resize: none; border: 1px solid #d1d5db; border-radius: 10px; padding: 8px; font: inherit; font-size: 14px; background: var(--fd-bg); color: var(--fd-fg); }
form button { border: none; border-radius: 10px; background: var(--fd-accent); color: var(--fd-on-accent); padding: 0 14px; cursor: pointer; font-size: 14px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) { .panel:not([data-inline]) { inset: 0; width: 100vw; height: 100vh; max-width: none; max-height: none; border-radius: 0; } }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
`;

  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /** Safe Markdown: builds DOM nodes (text is always text), never HTML strings. Headings,
   *  paragraphs, lists, code blocks and spans, bold, italics, tables, and links to http(s)
   *  and mailto only (others stay text), opening in a new tab with rel="noopener". */
  function inline(text) {
    const out = document.createDocumentFragment();
    const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\([^)\s]+\))/;
    let rest = text;
    while (rest) {
      const m = pattern.exec(rest);
      if (!m) { out.append(rest); break; }
      if (m.index > 0) out.append(rest.slice(0, m.index));
      const token = m[0];
      if (m[1]) out.append(el("code", {}, token.slice(1, -1)));
      else if (m[2]) { const b = el("strong"); b.append(inline(token.slice(2, -2))); out.append(b); }
      else if (m[3]) { const i = el("em"); i.append(inline(token.slice(1, -1))); out.append(i); }
      else {
        const close = token.indexOf("](");
        const label = token.slice(1, close);
        const href = token.slice(close + 2, -1);
        let safe = null;
        try { const url = new URL(href); if (["http:", "https:", "mailto:"].includes(url.protocol)) safe = url.href; } catch (_) { /* not a URL */ }
        if (safe) {
          const a = el("a", { href: safe, target: "_blank", rel: "noopener noreferrer" });
          a.append(inline(label));
          out.append(a);
        } else {
          out.append(token);
        }
      }
      rest = rest.slice(m.index + token.length);
    }
    return out;
  }

  /** The text of a stored message. */
  function textOf(message) {
    return (message.content || []).filter((p) => p.type === "text").map((p) => p.text).join("\n\n");
  }

  function markdown(source) {
    const root = document.createDocumentFragment();
    const lines = source.replace(/\r\n/g, "\n").split("\n");
    let i = 0;
    const isTableRow = (line) => /^\s*\|.*\|\s*$/.test(line);
    const cells = (line) => line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
    while (i < lines.length) {
      const line = lines[i];
      if (/^```/.test(line)) {
        const body = [];
        i += 1;
        while (i < lines.length && !/^```/.test(lines[i])) { body.push(lines[i]); i += 1; }
        i += 1;
        const pre = el("pre");
        pre.append(el("code", {}, body.join("\n")));
        root.append(pre);
      } else if (/^#{1,6}\s/.test(line)) {
        const level = Math.min(line.match(/^#+/)[0].length + 2, 6);
        const h = el(`h${level}`);
        h.append(inline(line.replace(/^#+\s*/, "")));
        root.append(h);
        i += 1;
      } else if (/^\s*([-*]|\d+[.)])\s+/.test(line)) {
        const ordered = /^\s*\d/.test(line);
        const list = el(ordered ? "ol" : "ul");
        while (i < lines.length && /^\s*([-*]|\d+[.)])\s+/.test(lines[i])) {
          const li = el("li");
          li.append(inline(lines[i].replace(/^\s*([-*]|\d+[.)])\s+/, "")));
          list.append(li);
          i += 1;
        }
        root.append(list);
      } else if (isTableRow(line) && i + 1 < lines.length && /^\s*\|?[\s:|-]+\|?\s*$/.test(lines[i + 1])) {
        const table = el("table");
        const head = el("tr");
        for (const c of cells(line)) { const th = el("th"); th.append(inline(c)); head.append(th); }
        table.append(head);
        i += 2;
        while (i < lines.length && isTableRow(lines[i])) {
          const tr = el("tr");
          for (const c of cells(lines[i])) { const td = el("td"); td.append(inline(c)); tr.append(td); }
          table.append(tr);
          i += 1;
        }
        root.append(table);
      } else if (!line.trim()) {
        i += 1;
      } else {
        const para = [];
        while (i < lines.length && lines[i].trim() && !/^(```|#{1,6}\s|\s*([-*]|\d+[.)])\s+)/.test(lines[i])) { para.push(lines[i]); i += 1; }
        const p = el("p");
        para.forEach((text, n) => { if (n) p.append(el("br")); p.append(inline(text)); });
        root.append(p);
      }
    }
    return root;
  }

  /** A speech-bubble icon, drawn (no font or image request needed). */
  function bubbleIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.append(path);
    return svg;
  }

  /** Reads an SSE body: calls onEvent({id, event, data}) per event. */
  async function readSse(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = { id: null, event: "message", data: "" };
        for (const line of block.split("\n")) {
          const at = line.indexOf(":");
          if (at <= 0) continue;
          const field = line.slice(0, at);
          const value = line.slice(at + 1).replace(/^ /, "");
          if (field === "data") event.data += value;
          else if (field === "id") event.id = value;
          else if (field === "event") event.event = value;
        }
        if (event.data) onEvent(event);
      }
    }
  }

  /** The widget's own texts; a tenant renames or translates them with `widget.texts[lang].labels`. */
  const LABELS = {
    open: "Open chat", close: "Close chat", new_chat: "New", conversations: "Conversations", back: "Back",
    message: "Message", send: "Send", stop: "Stop", retry: "Retry", regenerate: "Regenerate",
    approve: "Approve", reject: "Reject", allow_tool: "Allow {tool}?", using_tool: "Using {tool}…",
    handed_over: "Handed over to {agent}", waits_for_staff: "{tool} waits for approval by our team.",
    talk_to_person: "Talk to a person", person_joined: "{name} joined the conversation",
    assistant_back: "The assistant is back", typing: "{name} is typing…",
    error: "Something went wrong: {message}", sources: "Sources", no_conversations: "No conversations yet.",
  };

  /** Relative luminance of a #rgb / #rrggbb colour (WCAG 2). */
  function luminance(hex) {
    let h = hex.replace("#", "");
    if (h.length === 3) h = h.split("").map((c) => c + c).join("");
    const [r, g, b] = [0, 2, 4].map((i) => {
      const c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  /** White or near-black text, whichever contrasts more with `accent`. */
  function onAccent(accent) {
    const l = luminance(accent);
    const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    return contrast(l, 1) >= contrast(l, luminance("#111827")) ? "#ffffff" : "#111827";
  }

  /** The texts of the visitor's language: an exact tag first, then its primary subtag. */
  function textsFor(all, preferred) {
    const keys = Object.keys(all || {});
    for (const tag of preferred) {
      const exact = keys.find((k) => k.toLowerCase() === tag.toLowerCase());
      if (exact) return all[exact];
      const primary = keys.find((k) => k.toLowerCase() === tag.split("-")[0].toLowerCase());
      if (primary) return all[primary];
    }
    return {};
  }

  /** Sources of a message: its `citation` parts (title, url, and for a document its
   * section and page). */
  function citations(message) {
    return (message && message.content || []).filter((p) => p.type === "citation" && (p.url || p.title));
  }

  /** Where in its document a citation points: "Returns, p. 3". */
  function place(c) {
    return [c.section, c.page ? `p. ${c.page}` : ""].filter(Boolean).join(", ");
  }

  class FrontdeskChat extends HTMLElement {
    constructor() {
      super();
      this.root = this.attachShadow({ mode: "open" });
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      this.root.adoptedStyleSheets = [sheet];
      this.session = null;
      this.conversation = null;
      this.seen = new Set(); // ids of stored messages this page has shown
      this.run = null;
      this.busy = false;
      this.labels = { ...LABELS };
    }

    get key() { return this.getAttribute("key") || DEFAULT_KEY; }
    get tenant() { return this.getAttribute("tenant"); }
    get agent() { return this.getAttribute("agent") || DEFAULT_AGENT; }
    /** What the page says about this visit, sent with each message (the run's context). */
    get context() { return this.pageContext || parseContext(this.getAttribute("context")) || DEFAULT_CONTEXT; }
    get storageKey() { return `frontdesk:${this.key || this.tenant}:${this.agent}`; }
    get languages() {
      return [this.getAttribute("lang") || DEFAULT_LANG, ...(navigator.languages || [navigator.language])].filter(Boolean);
    }

    /** A label with its {placeholders} filled in. */
    t(name, values = {}) {
      return (this.labels[name] || LABELS[name]).replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : String(values[k])));
    }

    connectedCallback() {
      if (this.panel) return;
      const inline = this.hasAttribute("inline");
      this.launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false" });
      this.launcher.append(bubbleIcon());
      this.launcher.hidden = inline;
      this.panel = el("section", { class: "panel", role: inline ? "region" : "dialog", "aria-label": "Chat" });
      if (inline) this.panel.setAttribute("data-inline", "");
      this.panel.hidden = !inline;
      const header = el("header");
      this.header = header;
      const titles = el("div", { class: "titles" });
      this.titleEl = el("h2", {}, "Chat");
      this.subtitleEl = el("p");
      titles.append(this.titleEl, this.subtitleEl);
      this.historyButton = el("button", { type: "button" }, "☰");
      this.newChat = el("button", { type: "button" });
      this.closeButton = el("button", { type: "button" }, "✕");
      this.closeButton.hidden = inline;
      this.humanButton = el("button", { type: "button", class: "human" });
      this.humanButton.hidden = true;
      header.append(titles, this.historyButton, this.newChat, this.closeButton);
      this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
      this.history = el("div", { class: "history" });
      this.history.hidden = true;
      this.chips = el("div", { class: "chips" });
      this.form = el("form");
      this.inputLabel = el("label", { class: "sr", for: "fd-input" });
      this.input = el("textarea", { id: "fd-input", rows: "2", placeholder: "Write a message…" });
      this.sendButton = el("button", { type: "submit" });
      this.form.append(this.inputLabel, this.input, this.sendButton);
      this.panel.append(header, this.log, this.history, this.chips, this.humanButton, this.form);
      this.root.append(this.launcher, this.panel);
      this.relabel();

      this.launcher.addEventListener("click", () => this.open());
      this.closeButton.addEventListener("click", () => this.close());
      this.newChat.addEventListener("click", () => this.reset());
      this.humanButton.addEventListener("click", () => this.askForPerson().catch((error) => this.fail(error)));
      this.historyButton.addEventListener("click", () => (this.history.hidden ? this.showHistory() : this.hideHistory()));
      this.panel.addEventListener("keydown", (e) => {
        if (e.key !== "Escape") return;
        if (!this.history.hidden) this.hideHistory(); else if (!inline) this.close();
      });
      this.form.addEventListener("submit", (e) => { e.preventDefault(); this.onSubmit(); });
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.onSubmit(); }
      });
      if (this.hasAttribute("preview")) {
        this.historyButton.hidden = true;
        this.newChat.hidden = true;
        this.preview(this.previewAgent || { name: "Chat", widget: {} });
        return;
      }
      this.start().catch((error) => this.fail(error));
    }

    /** Shows the widget as `agent` ({name, widget}) would look, without starting a chat. */
    preview(agent) {
      this.previewAgent = agent;
      if (!this.panel) return;
      this.apply(agent);
      this.log.replaceChildren();
      this.greet();
    }

    /** Puts the current labels on the widget's own controls. */
    relabel() {
      this.launcher.setAttribute("aria-label", this.t("open"));
      this.closeButton.setAttribute("aria-label", this.t("close"));
      this.historyButton.setAttribute("aria-label", this.t("conversations"));
      this.historyButton.title = this.t("conversations");
      this.newChat.textContent = this.t("new_chat");
      this.humanButton.textContent = this.t("talk_to_person");
      this.inputLabel.textContent = this.t("message");
      this.sendButton.textContent = this.busy ? this.t("stop") : this.t("send");
    }

    async api(method, path, body, headers = {}, signal = undefined) {
      const response = await fetch(BASE + path, {
        method,
        headers: { "content-type": "application/json", authorization: `Bearer ${this.session.token}`, ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if (!response.ok) {
        let message = `${response.status}`;
        try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
        const error = new Error(message);
        error.status = response.status;
        throw error;
      }
      return response;
    }

    async start() {
      const saved = JSON.parse(localStorage.getItem(this.storageKey) || "{}");
      const headers = { "content-type": "application/json" };
      const body = { agent: this.agent, visitor_token: saved.token, user_token: this.userToken };
      if (this.key) headers["x-frontdesk-key"] = this.key; else body.tenant = this.tenant;
      const response = await fetch(`${BASE}/widget/v1/session`, { method: "POST", headers, body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`the chat is not available here (${response.status})`);
      this.session = await response.json();
      this.apply(this.session.agent);
      this.conversation = saved.conversation || null;
      this.save();
      if (!this.conversation || !(await this.load(this.conversation))) {
        this.conversation = null;
        this.save();
        this.greet();
      }
      emit("ready", { agent: this.agent });
    }

    /** Shows one of the visitor's conversations; false when it cannot be read. */
    async load(id) {
      let got;
      try { got = await (await this.api("GET", `/widget/v1/conversations/${id}`)).json(); } catch (_) { return false; }
      this.conversation = id;
      this.save();
      this.log.replaceChildren();
      this.setChips([]);
      this.seen = new Set();
      this.withPeople(got.handler === "human");
      for (const m of got.messages) this.show(m);
      // What happened before is on the page: follow from here.
      this.watch(id, got.event_seq);
      return true;
    }

    /** Shows a stored message once (a staff reply with its author). */
    show(m) {
      if (this.seen.has(m.id)) return;
      this.seen.add(m.id);
      const node = this.bubble(m.role, textOf(m));
      if (m.author) {
        const by = el("div", { class: "by" });
        if (m.author.avatar_url) by.append(el("img", { alt: "", src: m.author.avatar_url }));
        else by.append(el("span", { class: "initials", "aria-hidden": "true" }, m.author.name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase()));
        by.append(el("span", {}, m.author.name));
        node.prepend(by);
        node.classList.add("staff");
      }
      if (m.role === "assistant") this.showSources(node, m);
    }

    /** Follows the conversation (staff replies, a person joining, the assistant coming
     *  back, typing, runs started elsewhere), re-attaching with Last-Event-ID. */
    async watch(id, from = 0) {
      if (this.previewAgent || (this.watching && this.watching.id === id)) return;
      this.unwatch();
      const watching = { id, abort: new AbortController() };
      this.watching = watching;
      let last = String(from || 0);
      for (let attempt = 0; this.watching === watching; attempt += 1) {
        try {
          const response = await this.api("GET", `/widget/v1/conversations/${id}/events`, undefined, { accept: "text/event-stream", "last-event-id": last }, watching.abort.signal);
          attempt = 0;
          await readSse(response, (event) => {
            if (this.watching !== watching) return;
            if (event.id) last = event.id;
            this.onConversationEvent(event.event, JSON.parse(event.data));
          });
        } catch (error) {
          // Gone, or no longer this visitor's: stop; dropped or offline: try again.
          if (error.status >= 400 && error.status < 500 && error.status !== 429) break;
        }
        if (this.watching !== watching) break;
        await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * (attempt + 1))));
      }
    }

    /** Stops following the conversation followed now (its connection closes). */
    unwatch() {
      if (this.watching) this.watching.abort.abort();
      this.watching = null;
    }

    onConversationEvent(name, data) {
      switch (name) {
        case "message.created": {
          this.typingDone();
          const message = (data.data || {}).message;
          if (!message) break;
          // The visitor's own messages are shown by the page that sent them.
          if (message.role === "user") this.seen.add(message.id); else this.show(message);
          break;
        }
        case "handoff.requested":
          // People answer now: another answer from the agent cannot be asked for.
          this.withPeople(true);
          break;
        case "handoff.taken":
          this.withPeople(true);
          this.bubble("notice", this.t("person_joined", { name: (data.actor || {}).name || "" }));
          break;
        case "handoff.returned": this.withPeople(false); this.bubble("notice", this.t("assistant_back")); break;
        case "handoff.timed_out": this.withPeople(false); break;
        case "typing": this.showTyping(data.name); break;
        case "run.started":
          // A run this page did not start (the agent going on after a wait): follow it.
          if (!this.busy && !this.asking && data.run_id !== this.run) {
            this.running(() => { this.run = data.run_id; return this.follow(data.run_id, { last: "0" }); });
          }
          break;
        default: break;
      }
    }

    /** People answer the conversation (or the agent again): no "regenerate", no button to
     *  ask for a person while one is there. */
    withPeople(yes) {
      this.peopleAnswer = yes;
      if (yes) this.root.querySelectorAll(".regenerate").forEach((b) => b.remove());
      this.humanButton.hidden = yes || !this.offersPeople || this.hasAttribute("preview");
    }

    showTyping(name) {
      this.typingDone();
      this.typingNote = el("div", { class: "typing" }, this.t("typing", { name }));
      this.log.append(this.typingNote);
      this.log.scrollTop = this.log.scrollHeight;
      this.typingTimer = setTimeout(() => this.typingDone(), 5000);
    }

    typingDone() {
      clearTimeout(this.typingTimer);
      if (this.typingNote) this.typingNote.remove();
      this.typingNote = null;
    }

    /** The "talk to a person" button: the conversation waits for the team, or (when it is
     *  away) the assistant says so. */
    async askForPerson() {
      if (this.busy || this.asking || !this.session) return;
      this.asking = true;
      try {
        if (!this.conversation) {
          const created = await (await this.api("POST", "/widget/v1/conversations", { agent: this.agent })).json();
          this.conversation = created.id;
          this.save();
          this.watch(created.id);
        }
        const said = this.t("talk_to_person");
        const asked = await (await this.api("POST", `/widget/v1/conversations/${this.conversation}/human`, { content: said })).json();
        if (asked.status === "away" && asked.run_id) {
          // The team is away: the request is the visitor's message, which the agent answers.
          this.bubble("user", said);
          this.running(() => { this.run = asked.run_id; return this.follow(asked.run_id, { last: "0" }); });
        }
      } finally {
        this.asking = false;
      }
    }

    apply(agent) {
      const w = agent.widget || {};
      const texts = textsFor(w.texts, this.languages);
      this.labels = { ...LABELS, ...(texts.labels || {}) };
      this.titleEl.textContent = texts.title || w.title || agent.name;
      this.subtitleEl.textContent = texts.subtitle || w.subtitle || "";
      const avatar = this.header.querySelector(".avatar");
      if (avatar && avatar.getAttribute("src") !== w.avatar_url) avatar.remove();
      if (w.avatar_url && !this.header.querySelector(".avatar")) this.header.prepend(el("img", { class: "avatar", alt: "", src: w.avatar_url }));
      if (w.accent_color) {
        this.style.setProperty("--fd-accent", w.accent_color);
        this.style.setProperty("--fd-on-accent", onAccent(w.accent_color));
      } else {
        this.style.removeProperty("--fd-accent");
        this.style.removeProperty("--fd-on-accent");
      }
      if (w.radius !== undefined && w.radius !== null) this.style.setProperty("--fd-radius", `${w.radius}px`);
      else this.style.removeProperty("--fd-radius");
      this.input.placeholder = texts.placeholder || w.placeholder || "Write a message…";
      this.offersPeople = Boolean(w.human_button);
      this.humanButton.hidden = !w.human_button || this.peopleAnswer || this.hasAttribute("preview");
      const dark = w.theme === "dark" || (w.theme !== "light" && matchMedia("(prefers-color-scheme: dark)").matches);
      this.dataset.theme = dark ? "dark" : "light";
      this.dataset.position = w.position || "bottom-right";
      this.starters = texts.starter_prompts || w.starter_prompts || [];
      this.greeting = texts.greeting || w.greeting || "";
      this.relabel();
    }

    greet() {
      if (this.greeting) this.bubble("assistant", this.greeting);
      this.setChips(this.starters);
    }

    setChips(prompts) {
      this.chips.replaceChildren(...prompts.map((prompt) => {
        const chip = el("button", { type: "button" }, prompt);
        chip.addEventListener("click", () => this.send(prompt));
        return chip;
      }));
    }

    save() {
      localStorage.setItem(this.storageKey, JSON.stringify({ token: this.session && this.session.token, conversation: this.conversation }));
    }

    bubble(role, text) {
      const node = el("div", { class: `msg ${role === "user" ? "user" : role === "assistant" ? "assistant" : "notice"}` });
      if (role === "assistant") node.append(markdown(text)); else node.textContent = text;
      this.log.append(node);
      this.log.scrollTop = this.log.scrollHeight;
      return node;
    }

    /** Lists the sources an answer cites under it. */
    showSources(node, message) {
      const cited = citations(message);
      if (!cited.length) return;
      const box = el("div", { class: "sources" });
      box.append(el("span", {}, `${this.t("sources")}:`));
      const list = el("ol");
      for (const c of cited) {
        let safe = null;
        try { const url = new URL(c.url); if (["http:", "https:"].includes(url.protocol)) safe = url.href; } catch (_) { /* not a URL */ }
        const li = el("li");
        if (safe) li.append(el("a", { href: safe, target: "_blank", rel: "noopener noreferrer" }, c.title || safe));
        else li.append(document.createTextNode(c.title || c.url));
        const where = place(c);
        if (where) li.append(el("span", { class: "where" }, ` — ${where}`));
        list.append(li);
      }
      box.append(list);
      node.append(box);
    }

    fail(error) {
      this.bubble("notice", this.t("error", { message: error.message || error }));
      emit("error", { message: String(error.message || error) });
    }

    open() {
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      this.input.focus();
      emit("open", {});
    }

    close() {
      if (this.hasAttribute("inline")) return;
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
      emit("close", {});
    }

    reset() {
      if (this.run && this.busy) this.stop();
      this.hideHistory(false);
      this.conversation = null;
      this.unwatch();
      this.withPeople(false);
      this.save();
      this.log.replaceChildren();
      this.greet();
      this.input.focus();
    }

    /** The visitor's conversations with this agent, newest first; one opens on click. */
    async showHistory() {
      this.log.hidden = true;
      this.chips.hidden = true;
      this.form.hidden = true;
      this.humanButton.style.display = "none";
      this.history.hidden = false;
      this.historyButton.setAttribute("aria-expanded", "true");
      const back = el("button", { type: "button", class: "back" }, `← ${this.t("back")}`);
      back.addEventListener("click", () => this.hideHistory());
      const list = el("ul");
      this.history.replaceChildren(back, el("h3", {}, this.t("conversations")), list);
      back.focus();
      let page;
      try { page = await (await this.api("GET", `/widget/v1/conversations?agent=${encodeURIComponent(this.agent)}&limit=50`)).json(); } catch (error) { this.hideHistory(); this.fail(error); return; }
      if (!page.data.length) list.append(el("li", { class: "empty" }, this.t("no_conversations")));
      for (const c of page.data) {
        const item = el("button", { type: "button", class: c.id === this.conversation ? "current" : "" });
        item.append(el("strong", {}, c.title || c.preview || "…"));
        const when = c.last_message_at || c.created_at;
        if (when) item.append(el("span", {}, new Date(when).toLocaleString(this.languages[0] || undefined, { dateStyle: "medium", timeStyle: "short" })));
        item.addEventListener("click", async () => {
          if (this.busy) return;
          this.hideHistory(false);
          if (!(await this.load(c.id))) this.fail(new Error("this conversation is gone"));
          this.input.focus();
        });
        const li = el("li");
        li.append(item);
        list.append(li);
      }
    }

    hideHistory(refocus = true) {
      if (this.history.hidden) return;
      this.history.hidden = true;
      this.log.hidden = false;
      this.chips.hidden = false;
      this.form.hidden = false;
      this.humanButton.style.display = "";
      this.historyButton.setAttribute("aria-expanded", "false");
      if (refocus) this.historyButton.focus();
    }

    onSubmit() {
      if (this.busy) { this.stop(); return; }
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.send(text);
    }

    async stop() {
      if (!this.run) return;
      try { await this.api("POST", `/widget/v1/runs/${this.run}/cancel`, {}); } catch (_) { /* already ended */ }
    }

    async send(text) {
      if (this.previewAgent) {
        this.bubble("notice", "This is a preview: messages are not sent.");
        return;
      }
      if (this.busy || !this.session) return;
      this.hideHistory(false);
      this.setChips([]);
      this.bubble("user", text);
      emit("message", { role: "user", text });
      let tried = false;
      await this.running(async () => {
        if (!this.conversation) {
          const created = await (await this.api("POST", "/widget/v1/conversations", { agent: this.agent })).json();
          this.conversation = created.id;
          this.save();
          this.watch(created.id);
        }
        const path = `/widget/v1/conversations/${this.conversation}`;
        if (tried) {
          // An earlier try may have reached the server before the network failed: never
          // send it twice. Unanswered, it is answered again; answered, the answer is shown.
          const got = await (await this.api("GET", path)).json();
          const mine = [...got.messages].reverse()
            .find((m) => m.role === "user" && !this.seen.has(m.id) && textOf(m) === text);
          if (mine && got.messages[got.messages.length - 1] === mine) {
            return this.api("POST", `${path}/messages/${mine.id}/regenerate`, {}, { accept: "text/event-stream" });
          }
          if (mine) { await this.load(this.conversation); return null; }
        }
        tried = true;
        const context = this.context;
        const response = await this.api("POST", `${path}/messages`, context ? { content: text, context } : { content: text }, { accept: "text/event-stream" });
        if (response.status === 202) {
          // A person handles the conversation: the message waits for them; no run.
          const stored = await response.json();
          if (stored.message) this.seen.add(stored.message.id);
          return null;
        }
        return response;
      });
    }

    /** Runs a request that answers a run's events, follows them, and re-attaches with
     *  Last-Event-ID when the connection drops before the run ends. A failure offers Retry:
     *  a run that may still go on is followed again, a stored failed answer is regenerated,
     *  a request that failed is tried again. */
    async running(request, resumed) {
      this.root.querySelectorAll(".retry").forEach((b) => b.remove());
      this.busy = true;
      this.sendButton.textContent = this.t("stop");
      const state = resumed
        ? Object.assign(resumed, { ended: false, failed: false })
        : { answer: null, full: "", last: null, ended: false, failed: false, messageId: null };
      try {
        let response = await request();
        if (!response) state.ended = true; // nothing to follow
        for (let attempt = 0; response; attempt += 1) {
          try {
            await readSse(response, (event) => this.onEvent(event, state));
          } catch (_) { /* the connection dropped: re-attach below */ }
          if (state.ended || !this.run || attempt >= 5) break;
          await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
          try {
            response = await this.follow(this.run, state);
          } catch (_) { /* still offline: try again */ }
        }
        if (!state.ended) { state.failed = true; this.fail(new Error("the connection was lost")); }
        if (state.full) emit("message", { role: "assistant", text: state.full });
      } catch (error) {
        state.failed = true;
        this.fail(error);
      } finally {
        this.busy = false;
        this.sendButton.textContent = this.t("send");
      }
      if (!state.failed) return;
      const run = this.run;
      const id = state.messageId;
      if (!state.ended && run) {
        // The run may still be going (or have ended unseen): follow it from where we were.
        this.offerRetry(() => { this.run = run; return this.follow(run, state); }, null, state);
      } else if (state.ended && id && this.conversation) {
        this.offerRetry(() => this.api("POST", `/widget/v1/conversations/${this.conversation}/messages/${id}/regenerate`, {}, { accept: "text/event-stream" }), state.answer);
      } else {
        this.offerRetry(request, state.answer);
      }
    }

    /** The events of a run after the last one seen. */
    follow(run, state) {
      return this.api("GET", `/widget/v1/runs/${run}/events`, undefined, { accept: "text/event-stream", "last-event-id": state.last || "0" });
    }

    /** A Retry button after a failure. */
    offerRetry(request, answer, resumed) {
      const retry = el("button", { type: "button", class: "regenerate retry" }, `↻ ${this.t("retry")}`);
      retry.addEventListener("click", () => {
        if (this.busy) return;
        retry.remove();
        if (answer) answer.classList.add("replaced");
        this.running(request, resumed);
      });
      this.log.append(retry);
      this.log.scrollTop = this.log.scrollHeight;
    }

    onEvent(event, state) {
      const data = JSON.parse(event.data);
      if (event.id) state.last = event.id;
      switch (event.event) {
        case "run.started": this.run = data.run_id; if (data.message_id) state.messageId = data.message_id; break;
        case "message.delta":
          if (!state.answer) state.answer = this.bubble("assistant", "");
          state.full += data.text;
          state.answer.replaceChildren(markdown(state.full));
          this.log.scrollTop = this.log.scrollHeight;
          break;
        case "tool.started": this.bubble("notice", this.t("using_tool", { tool: data.name })); break;
        case "handoff": this.bubble("notice", this.t("handed_over", { agent: data.to })); break;
        case "approval.required": this.askApproval(data); break;
        case "message.completed": {
          const message = data.message || {};
          const suggestions = message.structured && message.structured.suggestions;
          if (Array.isArray(suggestions)) this.setChips(suggestions.filter((x) => typeof x === "string"));
          if (message.id) { state.messageId = message.id; this.seen.add(message.id); }
          if (message.parent_id) this.seen.add(message.parent_id);
          if (state.answer) {
            this.showSources(state.answer, message);
            if (message.finish_reason !== "error") this.offerRegenerate(state.answer, message.id);
          }
          break;
        }
        case "error": state.failed = true; this.bubble("notice", data.message); break;
        case "run.completed":
          state.ended = true;
          if (data.status === "failed") state.failed = true;
          if (data.status !== "awaiting_approval") this.run = null;
          break;
        default: break;
      }
    }

    /** A button under the newest answer that asks for another one. */
    offerRegenerate(answer, messageId) {
      this.root.querySelectorAll(".regenerate").forEach((b) => b.remove());
      const again = el("button", { type: "button", class: "regenerate", "aria-label": this.t("regenerate") }, `↻ ${this.t("regenerate")}`);
      again.addEventListener("click", () => {
        if (this.busy) return;
        again.remove();
        answer.classList.add("replaced");
        this.running(() => this.api("POST", `/widget/v1/conversations/${this.conversation}/messages/${messageId}/regenerate`, {}, { accept: "text/event-stream" }));
      });
      answer.after(again);
    }

    /** Asks the person chatting to approve a tool call meant for them. */
    askApproval(data) {
      const note = this.bubble("notice", this.t("allow_tool", { tool: data.tool }));
      if (data.approver !== "end_user") {
        note.textContent = this.t("waits_for_staff", { tool: data.tool });
        return;
      }
      const details = el("pre", {}, JSON.stringify(data.arguments, null, 2));
      const row = el("div", { class: "chips" });
      const decide = (decision) => {
        row.remove();
        this.running(() => this.api("POST", `/widget/v1/runs/${data.run_id}/approvals/${encodeURIComponent(data.call_id)}`, { decision }, { accept: "text/event-stream" }));
      };
      const yes = el("button", { type: "button" }, this.t("approve"));
      const no = el("button", { type: "button" }, this.t("reject"));
      yes.addEventListener("click", () => decide("approve"));
      no.addEventListener("click", () => decide("reject"));
      row.append(yes, no);
      note.append(details, row);
      yes.focus();
    }
  }

  customElements.define("frontdesk-chat", FrontdeskChat);

  const widget = () => document.querySelector("frontdesk-chat");
  window.Frontdesk = {
    open: () => widget() && widget().open(),
    close: () => widget() && widget().close(),
    send: (text) => widget() && widget().send(String(text)),
    identify: (token) => {
      const w = widget();
      if (!w) return;
      w.userToken = token;
      w.start().catch((error) => w.fail(error));
    },
    setContext: (context) => {
      const w = widget();
      if (w) w.pageContext = context && typeof context === "object" && !Array.isArray(context) ? { ...context } : undefined;
    },
    on: (name, fn) => { (listeners[name] = listeners[name] || []).push(fn); },
  };

  if (DEFAULT_KEY && !widget()) {
    const mount = () => document.body.append(document.createElement("frontdesk-chat"));
    if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  }
})();
