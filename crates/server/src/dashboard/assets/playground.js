// frontdesk playground: chat with an agent through the native API (the member's session,
// with its CSRF token) and show the run as it happens, from the same RunEvent stream; then
// the stored trace of each run (model calls with tokens and timings, tools, approvals).
// "Answer again" makes the last answer anew with another saved version of the agent or
// another model (a sibling answer), and shows the answers side by side.
(() => {
  "use strict";
  const root = document.getElementById("playground");
  if (!root) return;
  const agent = root.dataset.agent;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const messages = $("pg-messages");
  const trace = $("pg-trace");
  const state = $("pg-state");
  const form = $("pg-form");
  const input = $("pg-input");
  const compare = $("pg-compare");
  const current = root.dataset.version;
  let conversation = null;
  let busy = false;
  // The answer "Answer again" makes anew, and where the answers to its message stand.
  let last = null;

  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const headers = (sse) => ({
    "Content-Type": "application/json",
    "X-CSRF-Token": csrf,
    Accept: sse ? "text/event-stream" : "application/json",
  });
  const say = (text) => { state.textContent = text; };
  const pretty = (value) => {
    try { return JSON.stringify(typeof value === "string" ? JSON.parse(value) : value, null, 2); }
    catch (_) { return String(value); }
  };
  function detail(summary, body) {
    const d = el("details");
    const pre = el("pre", "code", body);
    pre.tabIndex = 0;
    d.append(el("summary", null, summary), pre);
    return d;
  }
  function step(kind, title, extra) {
    $("pg-trace-empty").hidden = true;
    const li = el("li", `pg-step pg-${kind}`);
    const head = el("div", "step-head");
    head.append(el("span", "badge", kind), el("strong", null, title));
    if (extra) head.append(el("span", "muted small", extra));
    li.append(head);
    trace.append(li);
    return li;
  }

  async function api(method, path, body) {
    const response = await fetch(path, { method, headers: headers(false), body: body && JSON.stringify(body), credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  // Reads a server-sent event stream and hands each event (name, data) to `on`.
  async function stream(response, on) {
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    }
    await window.frontdesk.readSse(response, (event) => on(event.event, JSON.parse(event.data)));
  }

  function follow(answer) {
    let runId = null;
    return (name, data) => {
      switch (name) {
        case "run.started":
          runId = data.run_id;
          step("run", data.agent, `${data.model} · ${data.run_id}`);
          say("Answering…");
          break;
        case "message.delta":
          answer.textContent += data.text;
          break;
        case "tool.started": {
          const li = step("tool", data.name, "running");
          li.append(detail("Arguments", pretty(data.arguments)));
          break;
        }
        case "tool.completed": {
          const li = step("tool", data.name, `${data.duration_ms} ms${data.is_error ? " · failed" : ""}`);
          li.append(detail("Result", pretty(data.result)));
          break;
        }
        case "handoff":
          step("handoff", `${data.from} → ${data.to}`);
          break;
        case "guardrail.tripped":
          step("guardrail", data.guardrail, data.message);
          break;
        case "approval.required":
          approval(data, answer);
          say("Waiting for a decision");
          break;
        case "message.completed": {
          const m = data.message;
          if (!answer.textContent) answer.textContent = (m.content || []).filter((p) => p.type === "text").map((p) => p.text).join("\n\n");
          if (m.usage) answer.after(el("p", "pg-meta muted small", `${m.model || ""} · ${m.usage.prompt_tokens} in / ${m.usage.completion_tokens} out${m.latency_ms != null ? ` · ${m.latency_ms} ms` : ""}`));
          if (m.role === "assistant") {
            last = { id: m.id, row: answer.closest(".pg-answers") };
            compare.hidden = false;
          }
          break;
        }
        case "error":
          step("error", data.code, data.message).classList.add("failed");
          break;
        case "run.completed":
          say(data.status === "awaiting_approval" ? "Waiting for a decision" : `Run ${data.status} · ${data.usage.total_tokens} tokens`);
          if (runId && data.status !== "awaiting_approval") stored(runId);
          break;
        default:
      }
    };
  }

  function approval(data, answer) {
    const li = step("approval", data.tool, `${data.approver} decides`);
    const args = el("pre", "code", pretty(data.arguments));
    args.tabIndex = 0;
    li.append(args);
    if (data.approver !== "staff") return;
    const row = el("div", "inline-actions");
    for (const decision of ["approve", "reject"]) {
      const b = el("button", decision === "approve" ? "button primary small" : "button danger-ghost small", decision === "approve" ? "Approve" : "Reject");
      b.type = "button";
      b.addEventListener("click", async () => {
        for (const x of row.querySelectorAll("button")) x.disabled = true;
        try {
          const response = await fetch(`/api/v1/runs/${data.run_id}/approvals/${encodeURIComponent(data.call_id)}`, {
            method: "POST", headers: headers(true), body: JSON.stringify({ decision }), credentials: "same-origin",
          });
          row.replaceWith(el("p", "muted small", decision === "approve" ? "Approved" : "Rejected"));
          if (response.status === 200) await stream(response, follow(answer));
        } catch (error) {
          say(`Failed: ${error.message}`);
        }
      });
      row.append(b);
    }
    li.append(row);
  }

  // The stored trace of a finished run: each model call with its tokens and time.
  async function stored(runId) {
    try {
      const run = await api("GET", `/api/v1/runs/${runId}`);
      const li = step("trace", `Run ${run.status}`, `${run.usage.total_tokens} tokens`);
      const list = el("ol", "pg-steps");
      for (const s of run.steps) {
        const item = el("li", `pg-substep pg-${s.kind}`);
        item.append(el("span", "badge", s.kind.replace("_", " ")), el("strong", null, ` ${s.name} `),
          el("span", "muted small", `${s.duration_ms} ms${s.usage ? ` · ${s.usage.total_tokens} tokens` : ""}`));
        item.append(detail("Input", pretty(s.input)), detail("Output", pretty(s.output)));
        list.append(item);
      }
      li.append(list);
      const link = el("a", "small", "Open the full trace");
      link.href = `/runs/${runId}`;
      li.append(link);
    } catch (error) {
      say(`Trace unavailable: ${error.message}`);
    }
  }

  // A place for one answer in a row of answers to the same message, with what made it.
  function slot(row, label) {
    const box = el("div", "pg-answer");
    const answer = el("div", "pg-msg assistant");
    box.append(el("p", "pg-label muted small", label), answer);
    row.append(box);
    return answer;
  }
  const busyWith = (on) => {
    busy = on;
    for (const b of [form.querySelector("button"), compare.querySelector("button")]) b.disabled = on;
  };

  async function send(text) {
    busyWith(true);
    messages.append(el("li", "pg-msg user", text));
    const row = el("li", "pg-answers");
    messages.append(row);
    const answer = slot(row, current ? `v${current} (current)` : "");
    try {
      if (!conversation) {
        const created = await api("POST", "/api/v1/conversations", { agent, title: text.slice(0, 80), metadata: { source: "playground" } });
        conversation = created.id;
      }
      say("Connecting…");
      const response = await fetch(`/api/v1/conversations/${conversation}/messages`, {
        method: "POST", headers: headers(true), body: JSON.stringify({ content: text }), credentials: "same-origin",
      });
      await stream(response, follow(answer));
    } catch (error) {
      answer.classList.add("failed");
      answer.textContent = `Failed: ${error.message}`;
      say("Failed");
    } finally {
      busyWith(false);
    }
  }

  // The last message answered again, beside the answers it has.
  async function again(version, model) {
    busyWith(true);
    const label = `v${version}${version === current ? " (current)" : ""}${model ? ` · ${model}` : ""}`;
    const answer = slot(last.row, label);
    const body = {};
    if (version !== current) body.agent_version = Number(version);
    if (model) body.model = model;
    try {
      say("Connecting…");
      const response = await fetch(`/api/v1/conversations/${conversation}/messages/${last.id}/regenerate`, {
        method: "POST", headers: headers(true), body: JSON.stringify(body), credentials: "same-origin",
      });
      await stream(response, follow(answer));
    } catch (error) {
      answer.classList.add("failed");
      answer.textContent = `Failed: ${error.message}`;
      say("Failed");
    } finally {
      busyWith(false);
    }
  }

  compare.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!last || busy) return;
    again($("pg-version").value, $("pg-model").value);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
