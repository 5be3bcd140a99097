// Trial page: the learning curve of every attempt; reloads while the trial is active.
"use strict";
(() => {
  const root = document.getElementById("trial");
  const path = `/studies/${encodeURIComponent(root.dataset.study)}/trials/${root.dataset.number}`;
  const active = ["queued", "running"].includes(root.dataset.status);

  function draw(trial) {
    const attempts = {};
    for (const r of trial.reports) {
      (attempts[r.attempt] = attempts[r.attempt] || { x: [], y: [] });
      attempts[r.attempt].x.push(r.step);
      attempts[r.attempt].y.push(r.value);
    }
    const traces = Object.entries(attempts).map(([a, d]) => ({
      type: "scatter", mode: "lines+markers", name: `attempt ${a}`, x: d.x, y: d.y,
    }));
    Plotly.react("plot-curve", traces, {
      margin: { l: 56, r: 16, t: 8, b: 44 }, height: 300,
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: root.dataset.metric } },
      annotations: traces.length ? [] : [{ text: "no reports yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    }, { displaylogo: false, responsive: true });
  }

  HPO.watch(path, (trial, first) => {
    if (!first && trial.status !== root.dataset.status) {
      window.location.reload(); // status changed: the server-rendered facts are stale
      return;
    }
    draw(trial);
  }, active ? 2000 : 60000);
})();
