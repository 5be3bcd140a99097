// Shared helpers of the dashboard pages: JSON calls to the public API (the session
// cookie authenticates them), polling, and formatting.
"use strict";
const HPO = (() => {
  const POLL_MS = 2000;

  async function api(path, options = {}) {
    const init = { credentials: "same-origin", ...options };
    if (init.json !== undefined) {
      init.body = JSON.stringify(init.json);
      init.headers = { "content-type": "application/json", ...(init.headers || {}) };
      delete init.json;
    }
    const response = await fetch("/api/v1" + path, init);
    const text = await response.text();
    const body = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error(describe(body) || response.statusText);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  // One line per problem, each naming its field, from our error shapes.
  function describe(body) {
    if (!body) return "";
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${d.field || (d.loc || []).join(".")}: ${d.msg}`).join("\n");
    }
    if (body.field && typeof body.detail === "string" && !body.detail.startsWith(body.field)) {
      return `${body.field}: ${body.detail}`;
    }
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body);
  }

  // Poll `probe` (a compact JSON path); when its answer changes, call `onChange`.
  function watch(probe, onChange, ms = POLL_MS) {
    let last = null;
    async function tick() {
      try {
        const now = JSON.stringify(await api(probe));
        if (now !== last) {
          const first = last === null;
          last = now;
          await onChange(JSON.parse(now), first);
        }
      } catch (err) {
        console.warn("poll failed", err);
      }
      setTimeout(tick, ms);
    }
    tick();
  }

  // Re-render a server-side fragment into element `id` whenever `probe` changes.
  function refresh(id, fragment, probe) {
    watch(probe, async (_data, first) => {
      if (first) return; // the page was rendered with this state
      const response = await fetch(fragment, { credentials: "same-origin" });
      if (response.ok) document.getElementById(id).innerHTML = await response.text();
    });
  }

  function fmt(value, digits = 5) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(digits).replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
    return String(value);
  }

  function escape(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function showError(id, message) {
    const box = document.getElementById(id);
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  const STATUS_COLORS = {
    completed: "#2f855a", running: "#2b6cb0", queued: "#a0aec0",
    pruned: "#d69e2e", failed: "#c53030", stopped: "#718096",
  };

  // Times are rendered in UTC by the server; shown in the browser's time zone, named.
  const LOCAL = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hour12: false, timeZoneName: "short",
  });
  function localTimes(root = document) {
    for (const el of root.querySelectorAll("time[datetime]:not([data-local])")) {
      const at = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(at.getTime())) continue;
      el.title = el.textContent; // the UTC time on hover
      el.textContent = LOCAL.format(at);
      el.dataset.local = "1";
    }
  }
  document.addEventListener("DOMContentLoaded", () => localTimes());
  new MutationObserver(() => localTimes()).observe(document.documentElement, { childList: true, subtree: true });

  return { api, watch, refresh, fmt, escape, showError, localTimes, STATUS_COLORS };
})();
