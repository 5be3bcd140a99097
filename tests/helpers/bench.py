"""Run a benchmark module the way a user does (``python -m benchmarks.<name>``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["run_benchmark"]

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, *args: str, timeout: float = 240) -> str:
    """Run ``python -m benchmarks.<module> *args`` from the repository root; return its
    stdout, failing the test (with stderr) when it exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
