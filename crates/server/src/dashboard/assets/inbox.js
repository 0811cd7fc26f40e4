// The inbox, live. The list refreshes when any of the tenant's conversations changes (the
// server says which over /inbox/changes). A conversation follows its events over the API
// (replies, notes, taken, handed back, typing), shows the agent's answer as it is written
// (the run's own events), sends replies and notes without reloading, and tells the visitor
// while a member types. Everything here also works as plain forms and links.
(() => {
  "use strict";

  const refresh = () => document.dispatchEvent(new Event("frontdesk:refresh"));

  const readSse = (response, onEvent) => window.frontdesk.readSse(response, onEvent);

  /** Keeps a stream open: `open()` answers a response; reconnects with a growing pause. */
  async function forever(open, onEvent) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const response = await open();
        if (response.ok) { attempt = 0; await readSse(response, onEvent); }
      } catch (_) { /* dropped: again below */ }
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * (attempt + 1))));
    }
  }

  function list() {
    let timer = null;
    forever(() => fetch("/inbox/changes", { credentials: "same-origin", headers: { Accept: "text/event-stream" } }), () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    });
  }

  function conversation(section) {
    const id = section.dataset.conversation;
    const csrf = section.dataset.csrf;
    const headers = { "X-CSRF-Token": csrf };
    const stream = section.querySelector("[data-stream]");
    const typing = section.querySelector("[data-typing]");
    let last = section.dataset.lastSeq || "0";
    let typingTimer = null;
    const following = new Set();

    async function followRun(run) {
      if (following.has(run)) return;
      following.add(run);
      const article = document.createElement("article");
      article.className = "msg msg-assistant";
      const header = document.createElement("header");
      header.textContent = "The agent is writing…";
      const text = document.createElement("div");
      text.className = "text";
      article.append(header, text);
      stream.append(article);
      try {
        const response = await fetch(`/api/v1/runs/${run}/events`, { credentials: "same-origin", headers: { ...headers, Accept: "text/event-stream" } });
        await readSse(response, (event) => {
          const data = JSON.parse(event.data);
          if (event.event === "message.delta") text.textContent += data.text;
          if (event.event === "tool.started") header.textContent = `The agent uses ${data.name}…`;
        });
      } catch (_) { /* the stored answer shows on refresh */ }
      article.remove();
      following.delete(run);
      refresh();
    }

    forever(() => fetch(`/api/v1/conversations/${id}/events`, {
      credentials: "same-origin",
      headers: { ...headers, Accept: "text/event-stream", "Last-Event-ID": last },
    }), (event) => {
      const data = JSON.parse(event.data);
      if (event.id) { last = event.id; refresh(); }
      if (event.event === "run.started") followRun(data.run_id);
      if (event.event === "typing" && data.name !== section.dataset.me) {
        typing.textContent = `${data.name} is typing…`;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { typing.textContent = ""; }, 5000);
      }
    });

    const form = document.querySelector("[data-reply]");
    if (!form) return;
    const box = form.querySelector("textarea");
    const internal = form.querySelector("input[name=internal]");
    let typedAt = 0;
    box.addEventListener("input", () => {
      // Only the member who holds the conversation shows the visitor that they type.
      if (!("mine" in section.dataset) || internal.checked || Date.now() - typedAt < 3000) return;
      typedAt = Date.now();
      fetch(`/api/v1/conversations/${id}/typing`, { method: "POST", credentials: "same-origin", headers }).catch(() => {});
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const content = box.value.trim();
      if (!content) return;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const response = await fetch(`/api/v1/conversations/${id}/staff-messages`, {
          method: "POST",
          credentials: "same-origin",
          headers: { ...headers, "Content-Type": "application/json" },
          body: JSON.stringify({ content, internal: internal.checked }),
        });
        if (!response.ok) {
          let message = String(response.status);
          try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
          throw new Error(message);
        }
        box.value = "";
        internal.checked = false;
        refresh();
      } catch (error) {
        const status = section.querySelector("[data-live-status]");
        if (status) status.textContent = `Not sent: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  const section = document.querySelector("[data-conversation]");
  if (section) conversation(section);
  else if (document.querySelector("[data-inbox-list]")) list();
})();
