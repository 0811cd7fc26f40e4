// frontdesk agent editor: a form for each tool over the `tools` JSON (which stays what the
// page posts, and can still be edited as JSON), "Send test request" for a webhook (signed
// and sent by the server as a run would, through the API with the member's session), the
// tools the saved MCP servers offer, and a live preview of the widget's settings.
(() => {
  "use strict";
  const root = document.getElementById("agent-form");
  if (!root) return;
  const agentId = root.dataset.agent;
  const csrf = root.querySelector("input[name=csrf]").value;
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === true) node.setAttribute(k, "");
      else if (v !== false && v !== undefined && v !== null) node.setAttribute(k, v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const parse = (text) => { try { return { value: JSON.parse(text) }; } catch (error) { return { error: error.message }; } };
  async function api(method, path, body) {
    const response = await fetch(path, {
      method, credentials: "same-origin", body: body && JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const e = data.error || {};
      const message = e.message || `HTTP ${response.status}`;
      throw new Error(e.field && !message.startsWith(e.field) ? `${e.field}: ${message}` : message);
    }
    return data;
  }

  // ---- Tools ----
  const tools = $("tools");
  const box = $("tools-editor");
  if (tools && box) {
    const builtins = JSON.parse(box.dataset.builtins || "[]");
    const METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"];
    let list = [];
    let asJson = false;
    const toggle = el("button", { type: "button", class: "button small" });
    const items = el("ol", { class: "tool-list" });
    const adders = el("div", { class: "inline-actions" });
    const note = el("p", { class: "error", role: "alert", hidden: true });
    box.append(toggle, note, items, adders);
    const field = tools.closest(".field");

    const write = () => {
      tools.value = JSON.stringify(list, null, 2);
      tools.dispatchEvent(new Event("input", { bubbles: true }));
    };
    const headersText = (h) => Object.entries(h || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    const headersOf = (text) => {
      const out = {};
      for (const line of text.split("\n")) {
        const cut = line.indexOf(":");
        if (cut > 0) out[line.slice(0, cut).trim()] = line.slice(cut + 1).trim();
      }
      return out;
    };
    // Example arguments from a tool's parameters: one value of each property's type.
    const example = (schema) => {
      const out = {};
      const props = (schema && schema.properties) || {};
      for (const [k, p] of Object.entries(props)) {
        const t = Array.isArray(p.type) ? p.type[0] : p.type;
        out[k] = p.enum ? p.enum[0] : t === "number" || t === "integer" ? 1 : t === "boolean" ? true : t === "array" ? [] : t === "object" ? {} : "example";
      }
      return out;
    };

    function input(i, key, label, value, attrs, onValue) {
      const id = `tool-${i}-${key}`;
      const wrap = el("div", { class: "field" });
      const control = attrs.tag === "textarea" ? el("textarea", { id, rows: attrs.rows || 3, class: attrs.class, spellcheck: "false" })
        : attrs.tag === "select" ? el("select", { id }) : el("input", { id, type: attrs.type || "text", inputmode: attrs.inputmode, maxlength: attrs.maxlength });
      if (attrs.tag === "select") for (const o of attrs.options) control.append(el("option", { value: o }, o));
      if (attrs.type === "checkbox") control.checked = Boolean(value); else control.value = value === undefined ? "" : value;
      control.addEventListener(attrs.tag === "select" || attrs.type === "checkbox" ? "change" : "input", () => {
        onValue(attrs.type === "checkbox" ? control.checked : control.value);
        write();
      });
      const lab = el("label", { for: id }, label);
      if (attrs.type === "checkbox") { wrap.className = "field check"; wrap.append(control, lab); } else wrap.append(lab, control);
      return wrap;
    }

    function trial(i, tool) {
      const d = el("details", { class: "trial" });
      d.append(el("summary", {}, "Send test request"));
      const argsId = `tool-${i}-args`;
      const args = el("textarea", { id: argsId, rows: 3, class: "code", spellcheck: "false" });
      args.value = JSON.stringify(example(tool.parameters), null, 2);
      const send = el("button", { type: "button", class: "button small" }, "Send test request");
      const out = el("div", { class: "trial-out", "aria-live": "polite" });
      d.append(el("label", { for: argsId }, "Arguments (JSON)"), args, send, out);
      send.addEventListener("click", async () => {
        const parsed = parse(args.value);
        out.replaceChildren();
        if (parsed.error) { out.append(el("p", { class: "error" }, `Arguments: ${parsed.error}`)); return; }
        send.disabled = true;
        out.append(el("p", { class: "muted small" }, "Sending…"));
        try {
          const r = await api("POST", `/api/v1/agents/${agentId}/tools/test`, { tool: list[i], arguments: parsed.value });
          out.replaceChildren();
          const q = r.request;
          const shown = (title, text) => {
            const pre = el("pre", { class: "code", tabindex: "0" }, text);
            out.append(el("h4", {}, title), pre);
          };
          shown("Request", `${q.method} ${q.url}\n${q.headers.map((h) => `${h.name}: ${h.value}`).join("\n")}${q.body ? `\n\n${q.body}` : ""}`);
          if (r.response) {
            const s = r.response;
            shown(`Response ${s.status} · ${s.duration_ms} ms`, `${s.headers.map((h) => `${h.name}: ${h.value}`).join("\n")}\n\n${s.body}${s.truncated ? "\n…" : ""}`);
          } else {
            out.append(el("p", { class: "error" }, `No response: ${r.error}`));
          }
        } catch (error) {
          out.replaceChildren(el("p", { class: "error" }, error.message));
        } finally {
          send.disabled = false;
        }
      });
      return d;
    }

    function card(tool, i) {
      const li = el("li", { class: "tool-card" });
      const head = el("div", { class: "tool-head" });
      head.append(el("span", { class: "badge" }, tool.type === "builtin" ? "built-in" : "webhook"), el("strong", {}, tool.name || "(unnamed)"));
      const remove = el("button", { type: "button", class: "button danger-ghost small" }, "Remove");
      remove.setAttribute("aria-label", `Remove the tool ${tool.name || i + 1}`);
      remove.addEventListener("click", () => { list.splice(i, 1); write(); render(); });
      head.append(remove);
      li.append(head);
      const set = (key) => (v) => { tool[key] = v; };
      if (tool.type === "builtin") {
        li.append(input(i, "name", "Built-in tool", tool.name, { tag: "select", options: builtins }, set("name")));
        return li;
      }
      const grid = el("div", { class: "grid2" });
      grid.append(
        input(i, "name", "Name", tool.name, { maxlength: 64 }, (v) => { tool.name = v; head.querySelector("strong").textContent = v || "(unnamed)"; }),
        input(i, "method", "Method", (tool.method || "POST").toUpperCase(), { tag: "select", options: METHODS }, set("method")),
      );
      li.append(grid,
        input(i, "url", "URL", tool.url, { type: "url", maxlength: 2048 }, set("url")),
        input(i, "description", "Description (what the model reads)", tool.description, { maxlength: 1000 }, set("description")),
        input(i, "headers", "Headers (Name: value per line; {{secrets.NAME}} for a secret)", headersText(tool.headers), { tag: "textarea", rows: 2, class: "code" }, (v) => { tool.headers = headersOf(v); }),
        input(i, "parameters", "Parameters (JSON Schema)", JSON.stringify(tool.parameters || { type: "object", properties: {} }, null, 2), { tag: "textarea", rows: 5, class: "code" }, (v) => {
          const p = parse(v);
          if (!p.error) tool.parameters = p.value;
        }),
      );
      const row = el("div", { class: "grid2" });
      row.append(
        input(i, "timeout", "Timeout (ms)", tool.timeout_ms || 10000, { inputmode: "numeric" }, (v) => { tool.timeout_ms = Number(v) || v; }),
        input(i, "approval", "A person approves each call", tool.requires_approval, { type: "checkbox" }, set("requires_approval")),
      );
      li.append(row, trial(i, tool));
      return li;
    }

    function render() {
      items.replaceChildren(...list.map(card));
      if (!list.length) items.append(el("li", { class: "muted" }, "No tools yet: the agent only talks."));
    }
    function mode(json) {
      if (!json) {
        const parsed = parse(tools.value.trim() || "[]");
        if (parsed.error || !Array.isArray(parsed.value)) {
          note.textContent = `Fix the JSON first: ${parsed.error || "tools must be a list"}`;
          note.hidden = false;
          return;
        }
        note.hidden = true;
        list = parsed.value;
        render();
      }
      asJson = json;
      field.hidden = !json;
      items.hidden = json;
      adders.hidden = json;
      toggle.textContent = json ? "Edit as forms" : "Edit as JSON";
    }
    toggle.addEventListener("click", () => mode(!asJson));
    for (const [label, make] of [
      ["Add webhook", () => ({ type: "webhook", name: "", description: "", url: "https://", method: "POST", parameters: { type: "object", properties: {} } })],
      ["Add built-in", () => ({ type: "builtin", name: builtins[0] })],
    ]) {
      const b = el("button", { type: "button", class: "button small" }, label);
      b.addEventListener("click", () => { list.push(make()); write(); render(); });
      adders.append(b);
    }
    box.hidden = false;
    mode(Boolean(root.querySelector("#tools-error")));
  }

  // ---- MCP servers: the tools they offer ----
  const mcp = $("mcp-tools");
  if (mcp) {
    const button = mcp.querySelector("button");
    const out = mcp.querySelector(".mcp-out");
    button.addEventListener("click", async () => {
      button.disabled = true;
      out.replaceChildren(el("p", { class: "muted small" }, "Asking the servers…"));
      try {
        const servers = (await api("GET", `/api/v1/agents/${agentId}/mcp-tools`)).data;
        out.replaceChildren();
        if (!servers.length) out.append(el("p", { class: "muted" }, "The saved agent has no MCP servers."));
        for (const s of servers) {
          out.append(el("h4", {}, `${s.name} · ${s.url}`));
          if (s.error) { out.append(el("p", { class: "error" }, s.error)); continue; }
          const ul = el("ul", { class: "mcp-list" });
          for (const t of s.tools) {
            const li = el("li");
            li.append(el("code", {}, t.name), document.createTextNode(t.description ? ` — ${t.description}` : ""));
            ul.append(li);
          }
          if (!s.tools.length) ul.append(el("li", { class: "muted" }, "No tools."));
          out.append(ul);
        }
      } catch (error) {
        out.replaceChildren(el("p", { class: "error" }, error.message));
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- Widget: a live preview of its settings ----
  const widget = $("widget");
  const preview = document.querySelector("frontdesk-chat[preview]");
  if (widget && preview) {
    const state = $("widget-preview-state");
    const show = () => {
      const parsed = parse(widget.value.trim() || "{}");
      if (parsed.error || typeof parsed.value !== "object" || parsed.value === null) {
        state.textContent = "The preview shows the last valid settings.";
        return;
      }
      state.textContent = "";
      const apply = () => preview.preview({ name: $("name").value || "Chat", widget: parsed.value });
      if (typeof preview.preview === "function") apply(); else customElements.whenDefined("frontdesk-chat").then(apply);
    };
    widget.addEventListener("input", show);
    $("name").addEventListener("input", show);
    show();
  }
})();
