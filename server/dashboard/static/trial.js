// Trial page: the learning curve of every attempt; reloads while the trial is active.
"use strict";
(() => {
  const root = document.getElementById("trial");
  const path = `/studies/${encodeURIComponent(root.dataset.study)}/trials/${root.dataset.number}`;
  const active = ["queued", "running"].includes(root.dataset.status);

  const objective = root.dataset.metric;
  const picker = document.getElementById("trial-metric");
  let last = null;

  // Every metric the trial reported can be plotted (the objective first).
  function fillPicker(trial) {
    const names = new Set();
    for (const r of trial.reports) {
      for (const [k, v] of Object.entries(r.metrics || {})) if (typeof v === "number") names.add(k);
    }
    names.delete(objective);
    const all = [objective, ...[...names].sort()];
    if (all.join("\n") !== [...picker.options].map((o) => o.value).join("\n")) {
      const keep = picker.value;
      picker.innerHTML = all.map((m) => `<option value="${HPO.escape(m)}">${HPO.escape(m)}</option>`).join("");
      picker.value = all.includes(keep) ? keep : objective;
    }
  }

  function draw(trial) {
    last = trial;
    fillPicker(trial);
    const metric = picker.value || objective;
    const attempts = {};
    for (const r of trial.reports) {
      (attempts[r.attempt] = attempts[r.attempt] || { x: [], y: [] });
      attempts[r.attempt].x.push(r.step);
      const y = metric === objective ? r.value : (r.metrics || {})[metric];
      attempts[r.attempt].y.push(typeof y === "number" ? y : null);
    }
    const traces = Object.entries(attempts).map(([a, d]) => ({
      type: "scatter", mode: "lines+markers", name: `attempt ${a}`, x: d.x, y: d.y,
    }));
    Plotly.react("plot-curve", traces, {
      margin: { l: 56, r: 16, t: 8, b: 44 }, height: 300,
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: metric } },
      annotations: traces.length ? [] : [{ text: "no reports yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    }, { displaylogo: false, responsive: true });
  }

  picker.addEventListener("change", () => last && draw(last));

  HPO.watch(path, (trial, first) => {
    if (!first && trial.status !== root.dataset.status) {
      window.location.reload(); // status changed: the server-rendered facts are stale
      return;
    }
    draw(trial);
  }, active ? 2000 : 60000);
})();
