// Trial page: the log of an attempt (stdout and stderr as its worker captured them),
// read whole, then, while the attempt runs, followed from where the last read ended.
// Loaded before plotly.js, so the log is on screen without waiting for the charts.
"use strict";
(() => {
  const root = document.getElementById("trial");
  const path = `/studies/${encodeURIComponent(root.dataset.study)}/trials/${root.dataset.number}`;
  const logBox = document.getElementById("trial-log");
  const picker = document.getElementById("log-attempt");
  const state = document.getElementById("log-state");
  const cutNote = document.getElementById("log-cut");
  let shown = null; // the attempt on screen
  let next = 0;
  let timer = null;

  function note(log) {
    state.textContent = log.running ? "following live" : `${log.size.toLocaleString()} bytes`;
    cutNote.hidden = !log.cut_bytes;
    if (log.cut_bytes) {
      cutNote.textContent = `${log.cut_bytes.toLocaleString()} of ${log.size.toLocaleString()} bytes were cut from the middle: the log keeps its head and its tail.`;
    }
    const options = log.attempts.length ? log.attempts : [log.attempt];
    if (picker.options.length !== options.length) {
      picker.innerHTML = options.map((a) => `<option value="${a}">${a}</option>`).join("");
    }
    picker.value = String(log.attempt);
  }

  async function readLog(attempt) {
    clearTimeout(timer);
    const query = attempt ? `?attempt=${attempt}` : "";
    const log = await HPO.api(`${path}/logs${query}`);
    shown = log.attempt;
    next = log.next_position;
    logBox.textContent = log.text || (log.running ? "" : "(this attempt printed nothing)");
    note(log);
    if (log.running) timer = setTimeout(follow, 1000);
  }

  async function follow() {
    try {
      const log = await HPO.api(`${path}/logs?attempt=${shown}&after=${next}`);
      if (log.attempt !== shown) return;
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      if (log.text) logBox.append(document.createTextNode(log.text));
      if (atBottom) logBox.scrollTop = logBox.scrollHeight;
      next = log.next_position;
      note(log);
      if (log.running) {
        timer = setTimeout(follow, 1000);
      } else if (log.attempts.length && log.attempts[log.attempts.length - 1] > shown) {
        readLog(null); // a new attempt began: show it
      }
    } catch (err) {
      console.warn("log poll failed", err);
      timer = setTimeout(follow, 3000);
    }
  }

  picker.addEventListener("change", () => readLog(Number(picker.value)));
  readLog(null).catch((err) => { logBox.textContent = `cannot read the log: ${err.message}`; });
})();
