"""The chaos soak at smoke size: a real fleet (throw-away PostgreSQL and Redis, an
``hpo server`` process, two ``hpo worker`` daemons) runs studies for a minute while one
fault of each kind lands on it (kill -9 of a worker, of a slot, of the server; Redis
flushed and restarted; a worker SIGTERMed), and then every invariant must hold.

Unlike the other benchmarks' smoke tests this one asserts on what it measured: the
invariants are correctness, not timing. It calls ``benchmarks.chaos.run`` in-process,
so a missing ``redis-server`` or PostgreSQL skips it (fails it under
``HPO_REQUIRE_SERVICES=1``) through ``tests/service_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import Options, run
from benchmarks.chaos_faults import KINDS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_smoke_soak_keeps_every_invariant_under_every_kind_of_fault(tmp_path: Path) -> None:
    result = run(Options(minutes=1.0, workers=2, slots=2, max_faults=len(KINDS), out=tmp_path))

    assert set(result.fault_counts()) == set(KINDS), result.faults  # each kind landed
    assert result.studies and result.trials > 0
    failed = {i.name: i.examples for i in result.invariants if not i.passed}
    assert failed == {}, f"invariants broken (logs and evidence in {tmp_path}): {failed}"
    assert result.passed
