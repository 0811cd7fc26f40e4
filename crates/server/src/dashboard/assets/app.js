// frontdesk dashboard: small conveniences on top of pages that work without script.
// Relative times in the viewer's zone, copy buttons, the tenant switcher, "/" to search,
// busy and unsaved-changes states for forms, Escape to close what is open, trace bars.
(() => {
  "use strict";
  document.documentElement.classList.add("js");

  // The same words as the server's (frame.rs), so nothing moves when this runs.
  const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function relative(date) {
    const delta = date.getTime() - Date.now();
    const past = delta <= 0;
    const minutes = Math.floor(Math.abs(delta) / 60000);
    const phrase = (n, unit) => (past ? `${n} ${unit} ago` : `in ${n} ${unit}`);
    if (minutes < 1) return "just now";
    if (minutes < 60) return phrase(minutes, "min");
    if (minutes < 1440) return phrase(Math.floor(minutes / 60), "h");
    if (minutes < 2880) return past ? "yesterday" : "tomorrow";
    if (minutes < 43200) return phrase(Math.floor(minutes / 1440), "days");
    return date.toISOString().slice(0, 10);
  }
  function times() {
    for (const el of document.querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(date.getTime())) continue;
      el.textContent = relative(date);
      el.title = exact.format(date);
    }
  }

  function copy(button) {
    const target = document.querySelector(button.dataset.copy);
    if (!target) return;
    const text = target.textContent.trim();
    const done = () => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => select(target));
    } else {
      select(target);
      try { if (document.execCommand("copy")) done(); } catch (_) { /* selected for the user */ }
    }
  }
  function select(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function forms() {
    for (const form of document.querySelectorAll("form[data-busy]")) {
      form.addEventListener("submit", () => {
        // After the submission has read the buttons' values.
        setTimeout(() => {
          for (const b of form.querySelectorAll("button[type=submit], button:not([type])")) {
            b.disabled = true;
            b.setAttribute("aria-busy", "true");
          }
        }, 0);
      });
    }
    for (const form of document.querySelectorAll("form[data-unsaved]")) {
      let dirty = false;
      form.addEventListener("input", () => { dirty = true; });
      form.addEventListener("submit", () => { dirty = false; });
      window.addEventListener("beforeunload", (event) => {
        if (dirty) { event.preventDefault(); event.returnValue = ""; }
      });
    }
    for (const select of document.querySelectorAll("select[data-autosubmit]")) {
      select.addEventListener("change", () => select.form.requestSubmit());
    }
  }

  function bars() {
    for (const bar of document.querySelectorAll(".bar-fill[data-left]")) {
      bar.style.left = `${Number(bar.dataset.left)}%`;
      bar.style.width = `${Number(bar.dataset.width)}%`;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (button) copy(button);
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing) {
      const search = document.querySelector("[data-slash-focus]");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (event.key === "Escape") {
      for (const open of document.querySelectorAll("details.danger[open], details.menu[open]")) {
        open.open = false;
        const summary = open.querySelector("summary");
        if (summary && open.contains(document.activeElement)) summary.focus();
      }
    }
  });

  // Live lists: a region marked `data-live` is refetched (the same URL, the same HTML the
  // server renders) every few seconds while the tab is visible, and replaced when it
  // changed; its status line says so. Pages stay complete without script.
  function live() {
    const regions = document.querySelectorAll("[data-live]");
    if (!regions.length) return;
    const status = document.querySelector("[data-live-status]");
    let failures = 0;
    const tick = async () => {
      if (document.hidden) return;
      try {
        const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error(String(response.status));
        const next = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const region of document.querySelectorAll("[data-live]")) {
          const fresh = next.querySelector(`[data-live="${region.dataset.live}"]`);
          if (fresh && fresh.innerHTML !== region.innerHTML) {
            region.innerHTML = fresh.innerHTML;
            times();
          }
        }
        failures = 0;
        if (status) status.textContent = "Live";
      } catch (_) {
        failures += 1;
        if (status) status.textContent = "Reconnecting…";
      }
    };
    if (status) status.textContent = "Live";
    setInterval(tick, 5000);
    // A page script that hears of a change asks for the regions at once.
    document.addEventListener("frontdesk:refresh", tick);
  }

  // Server-sent events over fetch (headers such as X-CSRF-Token and Last-Event-ID can be
  // sent, which EventSource cannot): calls onEvent({id, event, data}) per event. The page
  // scripts (playground, inbox) share it.
  async function readSse(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
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
  window.frontdesk = { readSse };

  function start() {
    times();
    forms();
    bars();
    live();
    setInterval(times, 60000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
