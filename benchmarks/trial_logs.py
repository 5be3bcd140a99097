"""Trial-log benchmark: what a flood of output costs the server, and how fast the trial
page of a capped 10 MB log loads.

    python -m benchmarks.trial_logs [--mb 10] [--trials 4] [--repeat 5] [--smoke]

Ingest: the embedded server (SQLite in a temporary folder, default settings: logs
capped at ``HPO_LOG_MAX_BYTES`` = 1 MiB per attempt) runs in this process, which does
nothing else meanwhile; a separate process ships ``--mb`` MB of output for each of
``--trials`` ask/tell trials through the worker's own shipper (``worker.logs``) as fast
as the server takes it, told to keep everything (so every byte reaches the server,
which bounds it: the worst case for the server). Printed: the server's CPU milliseconds
per MB (this process's CPU over the ingest, all its threads), MB/s, and the rows the
log table holds at the end (bounded, whatever was shipped).

Floor: no peer of ours (Optuna, Ray Tune, Syne Tune) stores trial logs behind an API
(Ray Tune writes files beside the trial), so the yardstick is the least a server could
do with the same chunks: append them to a file (open, write, close per chunk), timed
here; the ratio is ours over that floor.

Page load (over real HTTP): the trial page of a trial whose 10 MB log is capped, as
the browser loads it: the HTML, then ``GET .../logs`` (the capped log as JSON), median
of ``--repeat``; with Playwright and the system Chromium, also the time from
navigation until the log is on screen.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["main"]

SPEC: dict[str, Any] = {
    "objective": {"metric": "score", "direction": "maximize"},
    "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
    "strategy": {"name": "random", "seed": 1},
    "budget": {"epochs": 1, "max_parallel": 1000},
    "runner": "external",
}
LINE = b"epoch 000 step 0000000 loss 0.693147 lr 0.001000 " + b"x" * 49 + b"\n"  # 100 B


def _ship(url: str, trial_ids: list[int], mb: float) -> None:
    """The worker's shipper, keeping every byte, for each trial in turn."""
    from hpo.client import Client
    from worker.logs import LogShipper

    lines = int(mb * 1e6) // len(LINE)
    block = LINE * 1000
    with Client(url) as client:
        for trial_id in trial_ids:
            shipper = LogShipper(
                lambda chunk, t=trial_id: client.send_log(t, chunk),
                1,
                cap=1 << 40,  # keep everything: the server bounds it
                interval=3600,
            )
            for _ in range(lines // 1000):
                shipper.write(block)
                shipper.flush()
            shipper.close()


def ingest(url: str, trial_ids: list[int], mb: float) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) while another process ships the logs."""
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_ship, args=(url, trial_ids, mb))
    cpu, wall = time.process_time(), time.perf_counter()
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"the shipping process failed ({proc.exitcode})")
    return time.process_time() - cpu, time.perf_counter() - wall


def floor(mb: float, chunk: int) -> float:
    """CPU seconds to append ``mb`` MB of the same chunks to a file, one open each."""
    data = (LINE * (chunk // len(LINE) + 1))[:chunk]
    with tempfile.TemporaryDirectory(prefix="hpo-logs-floor-") as root:
        target = Path(root) / "trial.log"
        start = time.process_time()
        for _ in range(int(mb * 1e6) // chunk):
            with target.open("ab") as out:
                out.write(data.decode().encode())  # the server decodes the text too
        return time.process_time() - start


def page_load(base: str, study: str, repeat: int) -> tuple[float, float, int]:
    """Median seconds of the page's HTML and of its log request, and the log's bytes."""
    page, log, size = [], [], 0
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(repeat):
            start = time.perf_counter()
            assert http.get(f"/studies/{study}/trials/0").status_code == 200
            page.append(time.perf_counter() - start)
            start = time.perf_counter()
            answer = http.get(f"/api/v1/studies/{study}/trials/0/logs")
            log.append(time.perf_counter() - start)
            size = len(answer.content)
    return statistics.median(page), statistics.median(log), size


def browser_load(base: str, study: str, repeat: int) -> float | None:
    """Median seconds from navigation until the log is on screen (None: no browser)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if path is None:
        return None
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page()
            for _ in range(repeat):
                start = time.perf_counter()
                page.goto(f"{base}/studies/{study}/trials/0")
                page.wait_for_function(
                    "document.getElementById('trial-log').textContent.length > 100000"
                )
                times.append(time.perf_counter() - start)
        finally:
            browser.close()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="output per trial")
    parser.add_argument("--trials", type=int, default=4, help="trials that print it")
    parser.add_argument("--repeat", type=int, default=5, help="page loads")
    parser.add_argument("--smoke", action="store_true", help="2 trials of 2 MB, 2 loads")
    args = parser.parse_args(argv)
    if args.smoke:
        args.mb, args.trials, args.repeat = 2.0, 2, 2
    if args.mb <= 0 or args.trials < 1 or args.repeat < 1:
        parser.error("--mb > 0, --trials and --repeat >= 1")

    from hpo.embedded import EmbeddedService
    from hpo.logs import CHUNK_BYTES
    from hpo.settings import Settings

    with tempfile.TemporaryDirectory(prefix="hpo-bench-logs-") as root:
        os.environ["HPO_DATA_DIR"] = root
        settings = Settings(data_dir=Path(root), database_url=f"sqlite:///{root}/hpo.db")
        with EmbeddedService(settings, workers=0) as service:
            api = f"{service.url}/api/v1"
            spec = SPEC | {"name": "logs", "budget": SPEC["budget"] | {"max_trials": args.trials}}
            created = httpx.post(f"{api}/studies", json=spec)
            assert created.status_code == 201, created.text
            leased = httpx.post(f"{api}/studies/logs/suggest", params={"count": args.trials})
            trial_ids = [int(t["trial_id"]) for t in leased.json()]
            cpu, wall = ingest(api.removesuffix("/api/v1"), trial_ids, args.mb)
            shipped = args.mb * len(trial_ids)
            floor_cpu = floor(shipped, CHUNK_BYTES)
            from sqlalchemy import create_engine, func, select

            from server.tables import LogChunk

            engine = create_engine(settings.resolved_database_url)
            with engine.connect() as conn:
                rows = conn.execute(select(func.count()).select_from(LogChunk)).scalar() or 0
                kept = conn.execute(select(func.sum(LogChunk.nbytes))).scalar() or 0
            engine.dispose()
            html_s, log_s, log_bytes = page_load(service.url, "logs", args.repeat)
            on_screen = browser_load(service.url, "logs", args.repeat)

    print(f"== trial logs: {len(trial_ids)} trials x {args.mb:g} MB shipped, cap 1 MiB per attempt")
    print(f"{'what':<28}{'value':>14}")
    print(f"{'server_cpu_ms_per_MB':<28}{1000 * cpu / shipped:>14.1f}")
    print(f"{'ingest_MB_per_s':<28}{shipped / wall:>14.1f}")
    print(f"{'rows_kept':<28}{rows:>14d}")
    print(f"{'bytes_kept':<28}{kept:>14,d}")
    print(f"{'floor_cpu_ms_per_MB':<28}{1000 * floor_cpu / shipped:>14.2f}")
    print(f"{'ratio_ours_over_floor':<28}{cpu / floor_cpu:>14.1f}")
    print(f"== page load of a trial with a capped {args.mb:g} MB log (median of {args.repeat})")
    print(f"{'page_html_ms':<28}{1000 * html_s:>14.1f}")
    print(f"{'log_request_ms':<28}{1000 * log_s:>14.1f}")
    print(f"{'log_response_bytes':<28}{log_bytes:>14,d}")
    shown = "-" if on_screen is None else f"{1000 * on_screen:.1f}"
    print(f"{'chromium_until_shown_ms':<28}{shown:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
