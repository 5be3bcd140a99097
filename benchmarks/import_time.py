"""Import-time benchmark: seconds a fresh interpreter takes to import the client SDK and
to print ``hpo --help``, against ``import optuna``, in the same run.

    python -m benchmarks.import_time [--runs 9] [--smoke]

What is timed, per row (median over ``--runs`` fresh interpreters; wall clock of the whole
process, from spawn to exit, so the interpreter's own start-up is in every row and shown
alone as ``python``):

* ``python``: ``python -c pass``, the floor;
* ``import hpo`` and ``from hpo import Client``: what a script using the SDK pays first;
* ``Client()``: ``from hpo import Client`` plus building one (it reads the ``HPO_*``
  settings; no request is sent);
* ``hpo --help``: the ``hpo`` console command as installed (``hpo.cli.main:main``),
  printing its help;
* ``import optuna`` (when installed: ``pip install 'hpo-service[bench]'``): the peer.

Runs go round-robin over the rows (one interpreter per row, then the next run), after one
untimed warm-up each (it writes the bytecode caches), so the machine's other load falls on
every row alike. Ratio: each row over ``import optuna`` (below 1 is faster). ``heavy``:
which of the dependencies the client must not load (scipy, scikit-learn,
scikit-optimize, torch, pandas, numpy) the row's interpreter held at exit.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HEAVY", "ROWS", "main", "rows", "table", "time_rows"]

ROOT = Path(__file__).resolve().parents[1]
#: Modules the client, the spec and the CLI must never import (see DESIGN.md, ``hpo/``);
#: numpy too, which the client does not need either.
HEAVY = ("scipy", "sklearn", "skopt", "torch", "pandas", "numpy")
#: Row name -> Python code run with ``python -c``.
ROWS: dict[str, str] = {
    "python": "pass",
    "import hpo": "import hpo",
    "from hpo import Client": "from hpo import Client",
    "Client()": "from hpo import Client; Client('http://127.0.0.1:9').close()",
    # What the `hpo` console script runs.
    "hpo --help": (
        "import sys; sys.argv = ['hpo', '--help']\n"
        "from hpo.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    ),
    "import optuna": "import optuna",
}
PEER = "import optuna"
_REPORT = "\nimport sys as _s; print('\\nHEAVY', *[m for m in {heavy!r} if m in _s.modules])"


def rows() -> tuple[dict[str, str], list[str]]:
    """The rows to time and notes on what was skipped (the peer when not installed)."""
    chosen = dict(ROWS)
    notes = []
    if importlib.util.find_spec("optuna") is None:
        del chosen[PEER]
        notes.append("skipped import optuna: not installed (pip install 'hpo-service[bench]')")
    return chosen, notes


def _run(code: str) -> tuple[float, list[str]]:
    """Seconds one fresh interpreter took to run ``code`` and exit, and the heavy modules
    it held at the end."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code + _REPORT.format(heavy=HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{result.stderr}")
    heavy = result.stdout.rsplit("HEAVY", 1)[-1].split()
    return elapsed, heavy


def time_rows(chosen: dict[str, str], runs: int) -> dict[str, tuple[float, list[str]]]:
    """Median seconds and the heavy modules loaded, per row (see the module docstring)."""
    heavy = {name: _run(code)[1] for name, code in chosen.items()}  # warm-up, untimed
    samples: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(runs):
        for name, code in chosen.items():
            samples[name].append(_run(code)[0])
    return {name: (statistics.median(samples[name]), heavy[name]) for name in chosen}


def table(results: dict[str, tuple[float, list[str]]]) -> str:
    """The results as a table: row, median seconds, ratio to the peer, heavy modules."""
    width = max(len(name) for name in results) + 2
    peer = results.get(PEER, (0.0, []))[0]
    lines = ["row".ljust(width) + f"{'seconds':>10}{'x optuna':>10}  heavy"]
    for name, (seconds, heavy) in results.items():
        ratio = f"{seconds / peer:>10.2f}" if peer else f"{'-':>10}"
        lines.append(f"{name.ljust(width)}{seconds:>10.3f}{ratio}  {','.join(heavy) or '-'}")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_time")
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per row")
    parser.add_argument("--smoke", action="store_true", help="two runs per row (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 2
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = _parse(argv)
    chosen, notes = rows()
    results = time_rows(chosen, args.runs)
    print(
        f"\n== import time: seconds per fresh interpreter (start-up included), "
        f"median of {args.runs}{', smoke' if args.smoke else ''} =="
    )
    print(table(results))
    print("x optuna: ratio to import optuna (below 1 is faster)")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
