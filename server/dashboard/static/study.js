// Study page: header controls, the five plots and the trials table, all kept live by
// polling the compact study summary (GET /api/v1/studies/{name}).
"use strict";
(() => {
  const root = document.getElementById("study");
  const name = root.dataset.study;
  const base = "/studies/" + encodeURIComponent(name);
  const metric = root.dataset.metric; // the objective
  let chosen = metric; // the metric the plots show (the metric picker)
  const picked = new Set(); // trials chosen for comparison
  const maximize = root.dataset.direction === "maximize";
  const PAGE = 25;
  const table = { sort: "number", order: "asc", status: "", offset: 0, total: 0, q: "", range: "" };
  const config = { displaylogo: false, responsive: true };
  const layoutBase = {
    margin: { l: 56, r: 16, t: 8, b: 44 }, height: 300, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff", font: { size: 12 }, legend: { orientation: "h", y: -0.2 },
  };
  // Multi-fidelity (Hyperband, ASHA): budget, rung and parent columns.
  const fidelity = root.dataset.fidelity === "1";
  let bestNumber = null; // the study's best trial (at the full budget where one has it)
  let history = null;
  let space = {}; // the study's search space (from its spec): log axes for log params

  // -- controls (event delegation: the header is re-rendered on every change) -------
  const header = document.getElementById("study-header");
  header.addEventListener("click", async (event) => {
    const action = event.target.dataset && event.target.dataset.action;
    if (!action) return;
    if (action === "stop" && !window.confirm(`Stop study ${name}? Running trials are told to stop.`)) return;
    try {
      await HPO.api(`${base}/${action}`, { method: "POST" });
      HPO.showError("control-error", "");
      await refreshHeader();
    } catch (err) {
      HPO.showError("control-error", err.message);
    }
  });
  header.addEventListener("submit", async (event) => {
    if (event.target.id !== "budget-form") return;
    event.preventDefault();
    const value = Number(document.getElementById("budget-input").value);
    try {
      await HPO.api(base, { method: "PATCH", json: { max_trials: value } });
      HPO.showError("control-error", "");
      await refreshHeader({ keepTyped: false });
    } catch (err) {
      HPO.showError("control-error", err.message);
    }
  });

  // The header is re-rendered whenever the study changes, which would wipe a budget
  // the user is typing and a control error they have not read yet: both carry over
  // (``keepTyped: false`` after the budget was stored, so the input shows the new one).
  async function refreshHeader({ keepTyped = true } = {}) {
    const response = await fetch(`/ui${base}/header`, { credentials: "same-origin" });
    if (!response.ok) return;
    const html = await response.text();
    const input = document.getElementById("budget-input");
    const focused = input !== null && input === document.activeElement;
    const typed = input !== null && keepTyped && (focused || input.value !== input.defaultValue)
      ? input.value : null;
    const box = document.getElementById("control-error");
    const error = box !== null && !box.hidden ? box.textContent : "";
    header.innerHTML = html;
    const fresh = document.getElementById("budget-input");
    if (fresh !== null && typed !== null) fresh.value = typed;
    if (fresh !== null && focused) fresh.focus();
    HPO.showError("control-error", error);
  }

  // -- plots ---------------------------------------------------------------------------
  function byStatus(h, mask) {
    const groups = {};
    h.numbers.forEach((n, i) => {
      if (mask && !mask(i)) return;
      const s = h.statuses[i];
      (groups[s] = groups[s] || { x: [], y: [] });
      groups[s].x.push(n);
      groups[s].y.push(h.values[i]);
    });
    return groups;
  }

  function drawHistory(h) {
    const groups = byStatus(h, (i) => h.values[i] !== null);
    const traces = Object.entries(groups).map(([status, g]) => ({
      type: "scattergl", mode: "markers", name: status, x: g.x, y: g.y,
      marker: { color: HPO.STATUS_COLORS[status] || "#555", size: 6, opacity: 0.8 },
    }));
    if (chosen === metric) {  // "best" needs a direction: the objective's only
      traces.push({
        type: "scatter", mode: "lines", name: "best so far", x: h.numbers, y: h.best_so_far,
        line: { color: "#dd6b20", width: 2, shape: "hv" }, connectgaps: true,
      });
    }
    Plotly.react("plot-history", traces, {
      ...layoutBase, xaxis: { title: { text: "trial" } }, yaxis: { title: { text: chosen } },
    }, config);
  }

  async function drawCurves() {
    const data = await HPO.api(`${base}/curves?max_trials=100&max_points=60${metricQuery()}`);
    const shownTrials = data.curves.length;
    document.getElementById("curves-note").textContent = data.sampled
      ? `${shownTrials.toLocaleString()} of ${data.total.toLocaleString()} trials${shownTrials === data.total ? ", points thinned" : ""}`
      : "";
    const traces = data.curves.map((c) => ({
      type: "scattergl", mode: "lines+markers", x: c.steps, y: c.values, name: `#${c.number}`,
      line: { color: HPO.STATUS_COLORS[c.status] || "#555", width: 1 }, marker: { size: 3 },
      hovertemplate: `#${c.number} (${c.status}${c.budget ? ", budget " + c.budget : ""})<br>epoch %{x}: %{y}<extra></extra>`,
    }));
    Plotly.react("plot-curves", traces, {
      ...layoutBase, showlegend: false,
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: chosen } },
      annotations: traces.length ? [] : [emptyNote("no reports yet")],
    }, config);
  }

  function metricQuery() {
    return chosen === metric ? "" : `&metric=${encodeURIComponent(chosen)}`;
  }

  function emptyNote(text) {
    return { text, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { color: "#888" } };
  }

  const isLog = (p) => Boolean(space[p] && space[p].log);

  // A conditional parameter is absent (null) where it was inactive. Plotly draws no line
  // through a NaN, so an inactive value gets a level of its own, "inactive": below the
  // axis's range for a number, a category of its own for a choice.
  const INACTIVE = "inactive";

  function dimension(label, raw) {
    const numeric = raw.every((v) => v === null || typeof v === "number");
    if (numeric) return numericDimension(label, raw);
    const levels = [...new Set(raw.filter((v) => v !== null).map(String))].sort();
    if (raw.some((v) => v === null)) levels.unshift(INACTIVE);
    return {
      label, values: raw.map((v) => levels.indexOf(v === null ? INACTIVE : String(v))),
      tickvals: levels.map((_, i) => i), ticktext: levels,
    };
  }

  function numericDimension(label, raw) {
    const log = isLog(label);
    const scaled = raw.map((v) => (v === null ? null : log ? Math.log10(v) : v));
    const shown = log ? `log10 ${label}` : label;
    if (!scaled.includes(null)) return { label: shown, values: scaled };
    const known = scaled.filter((v) => v !== null);
    const low = known.length ? Math.min(...known) : 0;
    const high = known.length ? Math.max(...known) : 0;
    const span = high - low || 1;
    const below = low - 0.2 * span;
    const ticks = known.length ? [0, 0.25, 0.5, 0.75, 1].map((f) => low + f * (high - low)) : [];
    const unique = [...new Set(ticks)];
    return {
      label: shown,
      values: scaled.map((v) => (v === null ? below : v)),
      range: [below, Math.max(high, low + 1e-12)],
      tickvals: [below, ...unique],
      ticktext: [INACTIVE, ...unique.map((t) => HPO.fmt(t, 3))],
    };
  }

  function drawParallel(h) {
    const rows = h.values.map((v, i) => i).filter((i) => h.values[i] !== null && h.statuses[i] === "completed");
    const names = Object.keys(h.params);
    if (!rows.length) {
      Plotly.react("plot-parallel", [], { ...layoutBase, annotations: [emptyNote("no completed trials yet")] }, config);
      return;
    }
    const dims = names.map((p) => dimension(p, rows.map((i) => h.params[p][i])));
    dims.push({ label: chosen, values: rows.map((i) => h.values[i]) });
    Plotly.react("plot-parallel", [{
      type: "parcoords", dimensions: dims,
      line: { color: rows.map((i) => h.values[i]), colorscale: "Viridis", reversescale: !maximize, showscale: true },
    }], { ...layoutBase, margin: { l: 60, r: 60, t: 40, b: 24 }, height: 340 }, config);
  }

  async function drawImportance() {
    const data = await HPO.api(`${base}/importance`);
    const items = [...data.importances].reverse();
    Plotly.react("plot-importance", [{
      type: "bar", orientation: "h", x: items.map((d) => d.importance), y: items.map((d) => d.param),
      marker: { color: "#3182ce" },
    }], {
      ...layoutBase, margin: { l: 110, r: 16, t: 8, b: 44 }, xaxis: { title: { text: "importance" }, range: [0, 1] },
      annotations: items.length ? [] : [emptyNote(data.reason || "not enough completed trials")],
    }, config);
  }

  function drawSlice(h) {
    const select = document.getElementById("slice-param");
    const names = Object.keys(h.params);
    if (select.options.length !== names.length) {
      const keep = select.value;
      select.innerHTML = names.map((p) => `<option>${HPO.escape(p)}</option>`).join("");
      if (names.includes(keep)) select.value = keep;
    }
    const p = select.value || names[0];
    const rows = h.values.map((v, i) => i).filter((i) => h.values[i] !== null && h.params[p] && h.params[p][i] !== null);
    Plotly.react("plot-slice", [{
      type: "scattergl", mode: "markers", x: rows.map((i) => h.params[p][i]), y: rows.map((i) => h.values[i]),
      text: rows.map((i) => `#${h.numbers[i]}`),
      // Newest darkest: plotly's "Blues" runs dark to white, so it is reversed (the
      // newest trials were drawn white on the white plot).
      marker: { color: rows.map((i) => h.numbers[i]), colorscale: "Blues", reversescale: true,
        showscale: true, size: 7, line: { color: "#4a5568", width: 0.5 },
        colorbar: { title: { text: "trial" } } },
    }], {
      ...layoutBase, xaxis: { title: { text: p || "" }, type: isLog(p) ? "log" : "-" },
      yaxis: { title: { text: chosen } },
      annotations: rows.length ? [] : [emptyNote("no completed trials yet")],
    }, config);
  }
  document.getElementById("slice-param").addEventListener("change", () => history && drawSlice(history));

  const picker = document.getElementById("metric-picker");
  function fillPicker(names) {
    const known = [...picker.options].map((o) => o.value);
    if (names.length && names.join("\n") !== known.join("\n")) {
      picker.innerHTML = names.map((m) => `<option value="${HPO.escape(m)}">${HPO.escape(m)}</option>`).join("");
      picker.value = names.includes(chosen) ? chosen : metric;
    }
  }
  picker.addEventListener("change", () => { chosen = picker.value; drawPlots(); });

  async function drawPlots() {
    history = await HPO.api(`${base}/history?max_points=2000${metricQuery()}`);
    fillPicker(history.metrics || []);
    drawHistory(history);
    drawParallel(history);
    drawSlice(history);
    await Promise.all([drawCurves(), drawImportance()]);
  }

  // -- trials table --------------------------------------------------------------------
  function duration(t) {
    if (!t.started_at || !t.finished_at) return "–";
    return ((new Date(t.finished_at) - new Date(t.started_at)) / 1000).toFixed(1) + " s";
  }

  function paramsText(p) {
    return Object.entries(p).map(([k, v]) => `${HPO.escape(k)}=${HPO.escape(HPO.fmt(v, 3))}`).join(" ");
  }

  function fidelityCells(info) {
    const parent = Number.isInteger(info.parent)
      ? `<a href="${base}/trials/${info.parent}">#${info.parent}</a>` : "–";
    return `<td class="num budget">${HPO.fmt(info.budget ?? null)}</td>`
      + `<td class="num rung">${HPO.fmt(info.rung ?? null)}</td><td class="parent">${parent}</td>`;
  }

  async function loadTable() {
    const query = new URLSearchParams({ limit: PAGE, offset: table.offset, sort: table.sort, order: table.order });
    if (table.status) query.set("status", table.status);
    if (table.q) query.set("q", table.q);
    if (table.range) query.set("param", table.range);
    const response = await fetch(`/api/v1${base}/trials?${query}`, { credentials: "same-origin" });
    if (!response.ok) return;
    table.total = Number(response.headers.get("x-total-count") || 0);
    const rows = await response.json();
    document.getElementById("trials-rows").innerHTML = rows.map((t) => `
      <tr data-number="${t.number}"${t.number === bestNumber ? ' class="best-row"' : ""}>
        <td><input type="checkbox" class="compare-pick" value="${t.number}" aria-label="compare trial ${t.number}"${picked.has(t.number) ? " checked" : ""}></td>
        <td><a href="${base}/trials/${t.number}">${t.number}</a>${t.number === bestNumber ? ' <span class="star" title="best trial">★</span>' : ""}</td>
        <td><span class="badge ${t.status}">${t.status}</span></td>
        <td class="num">${HPO.fmt(t.value)}</td>
        ${fidelity ? fidelityCells(t.info || {}) : ""}
        <td class="params-cell">${paramsText(t.params)}</td>
        <td class="num">${duration(t)}</td>
        <td class="num">${t.attempt}</td>
        <td>${HPO.escape(t.worker || "–")}</td>
        <td class="error-cell" title="${HPO.escape(t.error || "")}">${HPO.escape((t.error || "").split("\n")[0].slice(0, 80))}</td>
      </tr>`).join("") || `<tr><td colspan="${fidelity ? 12 : 9}" class="empty">No trials${table.status ? " with status " + table.status : ""}.</td></tr>`;
    const last = Math.min(table.offset + PAGE, table.total);
    document.getElementById("page-info").textContent = table.total ? `${table.offset + 1}–${last} of ${table.total}` : "0 trials";
    document.getElementById("prev-page").disabled = table.offset === 0;
    document.getElementById("next-page").disabled = last >= table.total;
    document.querySelectorAll("#trials th.sortable").forEach((th) => {
      th.setAttribute("aria-sort", th.dataset.sort === table.sort ? (table.order === "asc" ? "ascending" : "descending") : "none");
    });
  }

  document.querySelectorAll("#trials th.sortable").forEach((th) => {
    th.addEventListener("click", () => {
      // A first click on Value puts the best first (the study's direction); a second
      // click on the same column turns its order round.
      const bestFirst = th.dataset.sort === "value" ? (maximize ? "desc" : "asc") : "asc";
      const flipped = { asc: "desc", desc: "asc" };
      table.order = table.sort === th.dataset.sort ? flipped[table.order] : bestFirst;
      table.sort = th.dataset.sort;
      table.offset = 0;
      loadTable();
    });
  });
  // Search and a parameter range narrow the table (the server filters every trial).
  let typing = null;
  document.getElementById("trial-search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { table.q = event.target.value.trim(); table.offset = 0; loadTable(); }, 250);
  });
  const rangeParam = document.getElementById("filter-param");
  function fillRangeParams() {
    const numeric = Object.entries(space).filter(([, p]) => p && (p.type === "float" || p.type === "int")).map(([n]) => n);
    if (rangeParam.options.length !== numeric.length + 1) {
      rangeParam.innerHTML = '<option value="">parameter…</option>'
        + numeric.map((n) => `<option value="${HPO.escape(n)}">${HPO.escape(n)}</option>`).join("");
    }
  }
  function applyRange() {
    const p = rangeParam.value;
    const low = document.getElementById("filter-low").value;
    const high = document.getElementById("filter-high").value;
    table.range = p && (low !== "" || high !== "") ? `${p}:${low}:${high}` : "";
    table.offset = 0;
    loadTable();
  }
  for (const id of ["filter-param", "filter-low", "filter-high"]) {
    document.getElementById(id).addEventListener("change", applyRange);
  }
  document.getElementById("status-filter").addEventListener("change", (event) => {
    table.status = event.target.value;
    table.offset = 0;
    loadTable();
  });
  const compareButton = document.getElementById("compare-button");
  function updateCompare() {
    compareButton.disabled = picked.size < 2 || picked.size > 5;
    compareButton.textContent = picked.size ? `Compare ${picked.size}` : "Compare";
  }
  document.getElementById("trials-rows").addEventListener("change", (event) => {
    if (!event.target.classList.contains("compare-pick")) return;
    const number = Number(event.target.value);
    if (event.target.checked) picked.add(number); else picked.delete(number);
    updateCompare();
  });
  compareButton.addEventListener("click", () => {
    const numbers = [...picked].sort((a, b) => a - b).join(",");
    window.location.href = `${base}/compare?trials=${numbers}`;
  });
  document.getElementById("prev-page").addEventListener("click", () => { table.offset = Math.max(0, table.offset - PAGE); loadTable(); });
  document.getElementById("next-page").addEventListener("click", () => { table.offset += PAGE; loadTable(); });

  // -- live ----------------------------------------------------------------------------
  HPO.watch(base, async (summary) => {
    space = (summary.spec && summary.spec.space) || {};
    fillRangeParams();
    bestNumber = summary.best_trial ? summary.best_trial.number : null;
    // The first answer too: the study may have changed between the page's rendering
    // and this poll (a study that fails fast does in well under a second).
    await Promise.all([drawPlots(), loadTable(), refreshHeader()]);
  });
})();
