"""Report batching in the lease, against the real server: a study without early stopping
lets the worker hold reports and send them with the finish (or after
``report_interval``); with a stopping rule every report goes out at once. And the
retries of a call the server could not answer, spread out by full jitter."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from hpo.client import Client, ServerUnavailable
from hpo.schemas import FinishIn, ReportIn
from worker.lease import Lease, retrying


class CountingClient(Client):
    """The real SDK client, counting the calls a lease makes (a test seam, no fake)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def report(self, trial_id: int, report: ReportIn):  # type: ignore[no-untyped-def]
        self.calls["report"] += 1
        return super().report(trial_id, report)

    def report_many(self, trial_id: int, reports: list[ReportIn]):  # type: ignore[no-untyped-def]
        self.calls["report_many"] += 1
        return super().report_many(trial_id, reports)

    def finish_trial(self, trial_id: int, finish: FinishIn):  # type: ignore[no-untyped-def]
        self.calls["finish"] += 1
        return super().finish_trial(trial_id, finish)


def _started(url: str, sdk: Client, make_spec, wait, **spec: Any):  # type: ignore[no-untyped-def]
    sdk.create_study(make_spec("lease", budget={"max_trials": 1, "max_parallel": 1}, **spec))
    trial = wait(lambda: sdk.list_trials("lease"))[0]
    client = CountingClient(url)
    return client, client.start_trial(trial.id, worker="test")


def _report(step: int, checkpoint: str | None = None) -> ReportIn:
    return ReportIn(attempt=1, step=step, value=step / 10, checkpoint=checkpoint)


def test_reports_ride_with_the_finish_when_no_rule_reads_them(
    live_server, sdk, make_spec, wait
) -> None:
    client, spec = _started(live_server.url, sdk, make_spec, wait)
    assert spec.report_interval == 2.0  # the server's default: batching allowed
    with Lease(client, spec) as lease:
        for step in range(1, 6):
            assert lease.report(_report(step)) is False
        assert lease.finish(FinishIn(attempt=1, status="completed", value=0.5)) == "completed"
    assert client.calls == {"finish": 1}  # one request carried five reports
    detail = sdk.get_trial("lease", 0)
    assert [r.step for r in detail.reports] == [1, 2, 3, 4, 5]
    assert detail.last_step == 5


def test_a_checkpoint_report_goes_out_at_once(live_server, sdk, make_spec, wait) -> None:
    client, spec = _started(live_server.url, sdk, make_spec, wait)
    with Lease(client, spec) as lease:
        lease.report(_report(1))
        lease.report(_report(2, checkpoint="ckpt/2"))  # sends 1 and 2 together
        assert client.calls == {"report_many": 1}
        assert [r.step for r in sdk.get_trial("lease", 0).reports] == [1, 2]
        assert lease.checkpoint_acked == 2  # the server has it: older ones may go
        lease.finish(FinishIn(attempt=1, status="completed", value=0.2))
    assert client.calls == {"report_many": 1, "finish": 1}


def test_a_held_report_goes_out_after_the_interval_without_a_finish(
    live_server, sdk, make_spec, wait
) -> None:
    client, spec = _started(live_server.url, sdk, make_spec, wait)
    with Lease(client, spec) as lease:
        lease.report(_report(1))
        assert client.calls["report"] == 0
        # The heartbeat thread sends what waited longer than report_interval (2 s).
        wait(lambda: sdk.get_trial("lease", 0).reports, timeout=10)
        assert client.calls["report"] == 1
        started = time.monotonic()
        lease.finish(FinishIn(attempt=1, status="completed", value=0.1))
    assert time.monotonic() - started < 5
    assert client.calls == {"report": 1, "finish": 1}


def test_with_a_stopping_rule_every_report_is_sent_and_decided(
    live_server, sdk, make_spec, wait
) -> None:
    client, spec = _started(live_server.url, sdk, make_spec, wait, stopping={"rule": "median"})
    assert spec.report_interval == 0.0
    with Lease(client, spec) as lease:
        for step in (1, 2, 3):
            lease.report(_report(step))
        assert client.calls["report"] == 3
        lease.finish(FinishIn(attempt=1, status="completed", value=0.3))


def test_retries_wait_with_full_jitter_under_a_growing_ceiling() -> None:
    """Workers that lost a restarting server must not come back in lockstep: each wait
    is drawn uniformly below an exponentially growing, capped ceiling."""
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] <= 8:
            raise ServerUnavailable(0, "down")
        return "up"

    def waits(seed: int) -> list[float]:
        calls["n"] = 0
        slept: list[float] = []
        deadline = time.monotonic() + 3600
        result = retrying(
            flaky,
            deadline=deadline,
            first_delay=0.2,
            max_delay=5.0,
            sleep=slept.append,
            rng=random.Random(seed),
        )
        assert result == "up"
        return slept

    one, two = waits(1), waits(2)
    ceilings = [min(0.2 * 2**n, 5.0) for n in range(8)]
    assert len(one) == len(two) == 8
    assert all(0.0 <= w < c for ws in (one, two) for w, c in zip(ws, ceilings, strict=True))
    assert one != two  # two workers draw different waits
    assert max(one[4:]) > 0.2 * 2  # the ceiling grows: later waits can be long
