"""Dashboard-load benchmark: server time of a study page for a large study, against
building the equivalent Optuna figures from the same trials, in the same run.

    python -m benchmarks.dashboard_load [--trials 10000] [--reports 30] [--repeat 5]
        [--peer-repeat 3] [--smoke]

Setup (untimed): a fresh SQLite database migrated by Alembic (``server.migrate``) gets
one running ASHA study over the space of ``examples/digits-cnn-mlp.yaml`` (conditional
parameters) with ``--trials`` trials of mixed statuses (completed, pruned, failed, a few
running and queued; rungs and budgets in their info; some retried, so reports of two
attempts overlap) and ``--reports`` reports per started trial (running ones: half),
bulk-inserted. The real app (``server.app.create_app``, no scheduler) serves it with
uvicorn in a thread.

Timed (median and max over ``--repeat`` page loads), over real HTTP with httpx, every
request the study page makes: ``GET /studies/{name}``, ``/history``, ``/curves``,
``/importance`` (its in-process cache cleared before each load: the cold cost),
``/trials?limit=50``; and the page total (sum per load). ``importance (cached)`` is the
same request again, answered from the cache. Payload sizes are the JSON bodies.

Peer (when optuna and plotly are installed: ``pip install optuna plotly``): the same
trials in an in-memory Optuna study (``add_trials``, untimed: states, distributions,
intermediate values of each step's latest attempt), then the time to build the figures
of the same page: ``plot_optimization_history``, ``plot_intermediate_values``,
``plot_parallel_coordinate``, ``plot_slice``, ``plot_param_importances`` (Optuna's
default evaluator), each once per load (``--peer-repeat`` loads: they are slow).
Ratios are ours over the peer, per chart and per page (below 1: ours is faster). The
peer's figure JSON size is printed once for comparison. Both run in this process with
BLAS at one thread (the server's setting). Timings on a busy machine are noisy; ratios
are the point.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from sqlalchemy import create_engine, insert

from hpo.demo import DEMO_SPACE
from hpo.spec import StudySpec
from search.fidelity import budget_ladder
from search.space import SearchSpace

if TYPE_CHECKING:
    from server.caches import Caches
from server.tables import Report, Study, Trial

__all__ = ["SPACE", "build_database", "main", "make_trials"]

STUDY = "dashboard-load"
#: The demo's space (MLP/CNN with conditional children), the realistic shape of a study.
SPACE: dict[str, Any] = DEMO_SPACE
REQUESTS = ("study", "history", "curves", "importance", "trials")
FIGURES = ("optimization_history", "intermediate_values", "parallel_coordinate", "slice")
FIGURES += ("param_importances",)
#: Which of our requests draws which peer figures (for the per-chart ratios).
PAIRS = {
    "history": ("optimization_history", "parallel_coordinate", "slice"),
    "curves": ("intermediate_values",),
    "importance": ("param_importances",),
}


def _accuracy(p: dict[str, Any], rng: np.random.Generator) -> float:
    """A plausible final validation accuracy: lr matters most, dropout and model less."""
    acc = 0.97 - 0.05 * (math.log10(p["lr"]) + 2.5) ** 2 - 0.2 * (p["dropout"] - 0.1) ** 2
    acc += 0.01 if p["model"] == "cnn" else 0.0
    acc -= 0.02 if p["optimizer"] == "sgd" else 0.0
    return float(np.clip(acc + rng.normal(0, 0.01), 0.05, 0.995))


def make_trials(n: int, reports: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` synthetic trials (dicts: number, status, params, info, value, attempt,
    started/finished seconds, curve = [(attempt, step, value)]), deterministic in
    ``seed``. The last few are running (half their reports) and queued (none)."""
    rng = np.random.default_rng(seed)
    space = SearchSpace.from_dict(SPACE)
    ladder = budget_ladder(1, reports, 3)
    out = []
    for number in range(n):
        params = space.sample(rng)
        final = _accuracy(params, rng)
        tail = n - number
        status = "queued" if tail <= 4 else "running" if tail <= 8 else "completed"
        if status == "completed":
            status = str(rng.choice(["completed", "pruned", "failed"], p=[0.75, 0.2, 0.05]))
        steps = 0 if status == "queued" else reports // 2 if status == "running" else reports
        tau = 2.0 + 3.0 * rng.random()
        noise = rng.normal(0, 0.005, reports + 1)

        def curve_of(s: int, final: float = final, tau: float = tau, noise=noise) -> float:
            return round(final * (1 - math.exp(-s / tau)) + noise[s], 5)

        attempt = 2 if steps and rng.random() < 0.03 else 1
        curve = []
        if attempt == 2:  # a lost first attempt; the retry resumed at a third of the way
            curve += [(1, s, round(curve_of(s) - 0.05, 5)) for s in range(1, steps // 2 + 1)]
        first = steps // 3 + 1 if attempt == 2 else 1
        curve += [(attempt, s, curve_of(s)) for s in range(first, steps + 1)]
        rung = int(rng.choice(len(ladder), p=_rung_shares(len(ladder))))
        start = number * 30.0
        out.append(
            {
                "number": number,
                "status": status,
                "params": params,
                "info": {"rung": rung, "budget": ladder[rung], "source": "random"},
                "value": curve[-1][2] if status in ("completed", "pruned") else None,
                "attempt": attempt if steps else 0,
                "last_step": steps or None,
                "started": None if status == "queued" else start,
                "finished": start + 20 + 180 * rng.random() if steps == reports else None,
                "curve": curve,
            }
        )
    return out


def _rung_shares(k: int) -> list[float]:
    weights = [3.0 ** (k - i) for i in range(k)]
    return [w / sum(weights) for w in weights]


def build_database(url: str, trials: list[dict[str, Any]], reports: int) -> None:
    """Migrate ``url`` and bulk-insert one running ASHA study holding ``trials``."""
    from server.migrate import upgrade

    upgrade(url)
    spec = StudySpec.model_validate(
        {
            "name": STUDY,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "space": SPACE,
            "strategy": {"name": "asha", "seed": 7},
            "budget": {"max_trials": len(trials), "max_parallel": 4, "epochs": reports},
            "train": {"model": "mlp", "dataset": "digits", "params": {}},
        }
    ).model_dump(mode="json")
    t0 = datetime.now(timezone.utc) - timedelta(seconds=30.0 * len(trials) + 3600)

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else t0 + timedelta(seconds=seconds)

    engine = create_engine(url)
    with engine.begin() as conn:
        study_id = conn.execute(
            insert(Study.__table__).values(
                name=STUDY,
                project_id=1,  # the default project, made by the migrations
                status="running",
                strategy="asha",
                direction="maximize",
                metric="val_accuracy",
                seed=7,
                max_trials=len(trials),
                max_parallel=4,
                spec=spec,
                created_at=t0,
                updated_at=t0,
            )
        ).inserted_primary_key[0]
        rows, report_rows = [], []
        for i, t in enumerate(trials, start=1):
            rows.append(
                {
                    "id": i,
                    "study_id": study_id,
                    "number": t["number"],
                    "status": t["status"],
                    "params": t["params"],
                    "info": t["info"],
                    "value": t["value"],
                    "attempt": t["attempt"],
                    "worker": None if t["started"] is None else f"gpu-{i % 8}:4242",
                    "last_step": t["last_step"],
                    "created_at": t0,
                    "started_at": at(t["started"]),
                    "finished_at": at(t["finished"]),
                    "error": "CUDA out of memory" if t["status"] == "failed" else None,
                }
            )
            report_rows += [
                dict(trial_id=i, attempt=a, step=s, value=v, metrics={}, created_at=t0)
                for a, s, v in t["curve"]
            ]
        conn.execute(insert(Trial.__table__), rows)
        for lo in range(0, len(report_rows), 50_000):
            conn.execute(insert(Report.__table__), report_rows[lo : lo + 50_000])
    engine.dispose()


class _Server:
    """The real app under uvicorn in a thread, no scheduler (the data is static)."""

    def __init__(self, url: str, data_dir: Path) -> None:
        import uvicorn

        from hpo.embedded import bind_socket
        from hpo.settings import Settings
        from server.app import create_app

        settings = Settings(data_dir=data_dir, database_url=url)
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v1"
        app = create_app(settings, run_scheduler=False)
        self.caches = app.state.caches  # the app's caches (cleared between page loads)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server failed to start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def time_ours(
    url: str, repeat: int, caches: Caches
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds per request per page load (plus the page total and the cached
    importance), and each response's size in bytes. Every page load starts with the
    importance estimate dropped from the server's ``caches``, so it is computed again."""
    from server.importance import IMPORTANCE

    paths = {
        "study": f"/studies/{STUDY}",
        "history": f"/studies/{STUDY}/history",
        "curves": f"/studies/{STUDY}/curves",
        "importance": f"/studies/{STUDY}/importance",
        "trials": f"/studies/{STUDY}/trials?limit=50",
    }
    times: dict[str, list[float]] = {k: [] for k in (*REQUESTS, "page", "importance (cached)")}
    sizes: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        client.get(paths["study"]).raise_for_status()  # connection and first-use warm-up
        for _ in range(repeat):
            caches.clear(IMPORTANCE)
            for key in REQUESTS:
                started = time.perf_counter()
                response = client.get(paths[key])
                times[key].append(time.perf_counter() - started)
                response.raise_for_status()
                sizes[key] = len(response.content)
            times["page"].append(sum(times[k][-1] for k in REQUESTS))
            started = time.perf_counter()
            client.get(paths["importance"]).raise_for_status()
            times["importance (cached)"].append(time.perf_counter() - started)
    return times, sizes


def _peer_study(trials: list[dict[str, Any]]) -> Any:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dists: dict[str, Any] = {}
    for name, p in SPACE.items():
        if p["type"] == "categorical":
            dists[name] = CategoricalDistribution(p["choices"])
        elif p["type"] == "float":
            dists[name] = FloatDistribution(p["low"], p["high"], log=p.get("log", False))
        else:
            dists[name] = IntDistribution(p["low"], p["high"], log=p.get("log", False))
    states = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
    states |= {"failed": TrialState.FAIL, "running": TrialState.RUNNING}
    states |= {"queued": TrialState.WAITING}
    frozen = []
    for t in trials:
        latest = {s: v for _a, s, v in sorted(t["curve"], key=lambda c: (c[1], c[0]))}
        frozen.append(
            optuna.trial.create_trial(
                state=states[t["status"]],
                value=t["value"] if t["status"] == "completed" else None,
                params=t["params"],
                distributions={k: dists[k] for k in t["params"]},
                intermediate_values=latest,
            )
        )
    study = optuna.create_study(direction="maximize", study_name=STUDY)
    study.add_trials(frozen)
    return study


def time_peer(
    trials: list[dict[str, Any]], loads: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds to build each Optuna figure per load (plus the page total), and each
    figure's JSON size in bytes (measured once, untimed)."""
    import optuna.visualization as vis

    study = _peer_study(trials)
    builders: dict[str, Callable[[], Any]] = {
        "optimization_history": lambda: vis.plot_optimization_history(study),
        "intermediate_values": lambda: vis.plot_intermediate_values(study),
        "parallel_coordinate": lambda: vis.plot_parallel_coordinate(study),
        "slice": lambda: vis.plot_slice(study),
        "param_importances": lambda: vis.plot_param_importances(study),
    }
    times: dict[str, list[float]] = {k: [] for k in (*FIGURES, "page")}
    figures: dict[str, Any] = {}
    for _ in range(loads):
        for key in FIGURES:
            started = time.perf_counter()
            figures[key] = builders[key]()
            times[key].append(time.perf_counter() - started)
        times["page"].append(sum(times[k][-1] for k in FIGURES))
    return times, {k: len(fig.to_json()) for k, fig in figures.items()}


def _ms(xs: list[float]) -> tuple[float, float]:
    return statistics.median(xs) * 1000, max(xs) * 1000


def report(
    n: int,
    reports: int,
    repeat: int,
    ours: tuple[dict[str, list[float]], dict[str, int]],
    peer: tuple[dict[str, list[float]], dict[str, int]] | None,
    skipped: str | None,
) -> None:
    """Print the tables (the smoke test reads their structure)."""
    times, sizes = ours
    print(f"== dashboard load: {n} trials x {reports} reports, SQLite, {repeat} page load(s)")
    print(f"{'request':<22}{'median_ms':>11}{'max_ms':>10}{'bytes':>11}")
    for key in (*REQUESTS, "importance (cached)", "page"):
        med, top = _ms(times[key])
        size = str(sizes.get(key, "-")) if key != "page" else str(sum(sizes.values()))
        print(f"{key:<22}{med:>11.1f}{top:>10.1f}{size:>11}")
    if peer is None:
        print(f"peer skipped: {skipped}")
        return
    import optuna
    import plotly

    ptimes, psizes = peer
    loads = len(ptimes["page"])
    print(f"== peer: optuna {optuna.__version__} + plotly {plotly.__version__}, {loads} load(s)")
    print(f"{'figure':<22}{'median_ms':>11}{'max_ms':>10}{'bytes':>11}")
    for key in (*FIGURES, "page"):
        med, top = _ms(ptimes[key])
        size = psizes.get(key, sum(psizes.values()))
        print(f"{key:<22}{med:>11.1f}{top:>10.1f}{size:>11}")
    print("== ratio ours/peer (median ms; below 1: ours is faster)")
    print(f"{'chart':<22}{'ours_ms':>11}{'peer_ms':>10}{'ratio':>11}")
    for key, figs in (*PAIRS.items(), ("page", ("page",))):
        mine = statistics.median(times[key]) * 1000
        theirs = sum(statistics.median(ptimes[f]) for f in figs) * 1000
        print(f"{key:<22}{mine:>11.1f}{theirs:>10.1f}{mine / theirs:>11.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="page loads of ours")
    parser.add_argument("--peer-repeat", type=int, default=3, help="page loads of the peer")
    parser.add_argument("--smoke", action="store_true", help="300 trials, 5 reports, 1 load")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.reports, args.repeat, args.peer_repeat = 300, 5, 1, 1
    if min(args.reports, args.repeat, args.peer_repeat) < 1 or args.trials < 10:
        parser.error("--trials >= 10; --reports, --repeat and --peer-repeat >= 1")
    trials = make_trials(args.trials, args.reports)
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        build_database(url, trials, args.reports)
        print(f"(database built in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
        with _Server(url, Path(tmp)) as server:
            ours = time_ours(server.url, args.repeat, server.caches)
    missing = [m for m in ("optuna", "plotly") if importlib.util.find_spec(m) is None]
    peer = None if missing else time_peer(trials, args.peer_repeat)
    skipped = f"{' and '.join(missing)} not installed" if missing else None
    report(args.trials, args.reports, args.repeat, ours, peer, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
