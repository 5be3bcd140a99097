"""The multi-fidelity benchmark runs at smoke size and prints every method (so it cannot
rot); figures are measured by running it at full size, never asserted here."""

from __future__ import annotations

import re

import pytest

from benchmarks import multi_fidelity, syne_peers


def test_smoke_run_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert multi_fidelity.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for method in ("random", "hyperband", "asha", "hyperband (random)", "asha (random)"):
        assert f"\n{method} " in out
    assert "vs random" in out and "resume saved" in out and "on promoted" in out
    # Syne Tune's peers ran too (syne_tune is in the dev install: never skipped): a row
    # each, with epochs to match, the ratio to random's and the matched count.
    for peer in syne_peers.PEERS:
        row = rf"^{re.escape(peer)} +(\d+) +(\d+\.\d\d) +([01])/1 "
        assert re.search(row, out, re.M), (peer, out)
