// Compare page: 2-5 trials' parameters side by side (rows that differ marked) and their
// learning curves overlaid, for any metric they report.
"use strict";
(() => {
  const root = document.getElementById("compare");
  const base = `/studies/${encodeURIComponent(root.dataset.study)}/trials/`;
  const numbers = root.dataset.trials.split(",").map(Number);
  const objective = root.dataset.metric;
  const picker = document.getElementById("compare-metric");
  const COLORS = ["#2b6cb0", "#dd6b20", "#2f855a", "#b83280", "#6b46c1"];
  let trials = [];

  function row(label, cells, cls = "") {
    const texts = cells.map((c) => (c === undefined || c === null ? "–" : HPO.fmt(c, 5)));
    const differs = new Set(texts).size > 1;
    return `<tr class="${cls}${differs ? " differs" : ""}" data-row="${HPO.escape(label)}"><th>${HPO.escape(label)}</th>`
      + texts.map((t) => `<td>${HPO.escape(t)}</td>`).join("") + "</tr>";
  }

  function drawTable() {
    const names = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
    const rows = [
      row("status", trials.map((t) => t.status), "fact"),
      row(objective, trials.map((t) => t.value), "fact"),
      row("attempts", trials.map((t) => t.attempt), "fact"),
      ...names.map((p) => row(p, trials.map((t) => t.params[p]), "param")),
    ];
    document.getElementById("compare-rows").innerHTML = rows.join("");
  }

  function metricsOf() {
    const names = new Set();
    for (const t of trials) for (const r of t.reports) {
      for (const [k, v] of Object.entries(r.metrics || {})) if (typeof v === "number") names.add(k);
    }
    names.delete(objective);
    return [objective, ...[...names].sort()];
  }

  function drawCurves() {
    const metric = picker.value || objective;
    const traces = trials.map((t, i) => {
      const byStep = new Map(); // the latest attempt's report per step
      for (const r of t.reports) {
        const y = metric === objective ? r.value : (r.metrics || {})[metric];
        byStep.set(r.step, typeof y === "number" ? y : null);
      }
      const steps = [...byStep.keys()].sort((a, b) => a - b);
      return {
        type: "scatter", mode: "lines+markers", name: `#${t.number}`, x: steps,
        y: steps.map((s) => byStep.get(s)), line: { color: COLORS[i % COLORS.length] },
      };
    });
    Plotly.react("plot-compare", traces, {
      margin: { l: 56, r: 16, t: 8, b: 44 }, height: 340, legend: { orientation: "h", y: -0.2 },
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: metric } },
    }, { displaylogo: false, responsive: true });
  }

  picker.addEventListener("change", drawCurves);
  Promise.all(numbers.map((n) => HPO.api(base + n))).then((found) => {
    trials = found;
    drawTable();
    const names = metricsOf();
    picker.innerHTML = names.map((m) => `<option value="${HPO.escape(m)}">${HPO.escape(m)}</option>`).join("");
    drawCurves();
  }).catch((err) => {
    document.getElementById("compare-rows").innerHTML = `<tr><td class="errors">${HPO.escape(err.message)}</td></tr>`;
  });
})();
