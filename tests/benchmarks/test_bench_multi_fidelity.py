"""The multi-fidelity benchmark runs at smoke size and prints every method (so it cannot
rot); figures are measured by running it at full size, never asserted here."""

from __future__ import annotations

import pytest

from benchmarks import multi_fidelity


def test_smoke_run_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert multi_fidelity.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for method in ("random", "hyperband", "asha", "hyperband (random)", "asha (random)"):
        assert f"\n{method} " in out
    assert "vs random" in out and "resume saved" in out and "on promoted" in out
