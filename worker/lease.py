"""An attempt's side of the lease: heartbeats, buffered reports, retried calls.

While a trial runs, its worker must keep talking to the server: a heartbeat every
``heartbeat_interval`` seconds (else the reaper retries the trial elsewhere), a report per
epoch, and a final finish or release. The server may be restarting: calls that cannot
reach it (or get a 5xx) are retried with exponential backoff, and reports that cannot be
delivered now are buffered, in order, and delivered before the attempt ends, so a server
restart loses nothing. A 409 means this attempt was superseded (fenced off): the attempt
stops at once and sends nothing more.

When the trial spec allows it (``report_interval > 0``: the study has no early-stopping
rule, so no report can change the trial's course) reports are also held back on
purpose: one goes out when ``report_interval`` seconds have passed since the last send
(or it carries a checkpoint), the rest wait for the next one, for the heartbeat thread
(which sends anything older than the interval) or for the finish, which carries them;
held reports travel together, in one request. A fast trial then costs two requests
(start, finish) instead of one more per step.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from hpo.client import APIError, Client, Conflict, ServerUnavailable
from hpo.schemas import FinishIn, FinishOut, ReleaseIn, ReportIn, ReportOut, TrialPublic, TrialSpec

__all__ = ["Fenced", "Lease", "retrying"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Reports held back at most (a finish carrying them stays well under the body limit).
_MAX_HELD = 100


class Fenced(Exception):
    """This attempt was superseded: the server refuses anything more from it."""


def _transient(err: APIError) -> bool:
    return isinstance(err, ServerUnavailable) or err.status_code >= 500 or err.status_code == 429


def retrying(
    call: Callable[[], T],
    *,
    deadline: float,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call`` until it succeeds, retrying transient failures (server unreachable,
    5xx, 429) with exponential backoff and full jitter until ``deadline`` (a
    ``time.monotonic()`` value): the n-th wait is uniform in ``[0, min(max_delay,
    first_delay * 2**n))``, so the workers that lost a restarting server come back
    spread out instead of all at once, in lockstep. ``rng`` draws the waits (tests
    seed it).

    Non-transient API errors (4xx) raise at once; after the deadline the last transient
    error is raised.
    """
    draw = rng or random.Random()
    ceiling = first_delay
    while True:
        try:
            return call()
        except APIError as err:
            delay = draw.uniform(0.0, ceiling)
            if not _transient(err) or time.monotonic() + delay > deadline:
                raise
            log.warning("server call failed (%s); retrying in %.1fs", err.message, delay)
            sleep(delay)
            ceiling = min(ceiling * 2, max_delay)


class Lease:
    """One running attempt: owns its heartbeat thread and its report buffer."""

    def __init__(
        self,
        client: Client,
        spec: TrialSpec,
        *,
        patience: float = 600.0,
        want_next: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.patience = patience  # how long to keep retrying an unreachable server
        #: Asked at the finish: may the server lease this worker its study's next trial
        #: in the answer? (``next_trial`` then holds it, already started.)
        self.want_next = want_next
        self.next_trial: TrialSpec | None = None
        self.stop_requested = threading.Event()
        #: the server asked this attempt to hand its trial back at its next checkpoint
        self.hand_back_requested = threading.Event()
        self.fenced = threading.Event()
        #: The step of the newest checkpoint the server has stored for this trial (a
        #: report carrying it was delivered); older checkpoints may be removed.
        self.checkpoint_acked: int | None = spec.checkpoint_step
        self._pending: deque[ReportIn] = deque()
        self._lock = threading.Lock()  # one call at a time on the shared client
        # One flush at a time: the trial's thread and the heartbeat thread both send.
        self._flushing = threading.RLock()
        self._last_send = time.monotonic()
        self._held_since: float | None = None  # when the oldest held-back report came
        self._done = threading.Event()
        self._beat = threading.Thread(target=self._heartbeats, daemon=True, name="hpo-heartbeat")

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Lease:
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._beat.join(timeout=5)

    def _heartbeats(self) -> None:
        interval = self.spec.heartbeat_interval
        batching = self.spec.report_interval
        tick = min(interval, batching) if batching > 0 else interval
        next_beat = time.monotonic() + interval
        while not self._done.wait(tick):
            if self._held_since is not None and time.monotonic() - self._held_since >= batching:
                try:
                    self._flush(block=False)
                except Fenced:
                    return
                except APIError as err:  # refused: the finish tries again and says why
                    log.warning("held reports of trial %s: %s", self.spec.trial_id, err.message)
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + interval
            try:
                with self._lock:
                    answer = self.client.heartbeat(self.spec.trial_id, self.spec.attempt)
                if answer.decision == "stop":
                    self.stop_requested.set()
                if answer.hand_back:
                    self.hand_back_requested.set()
            except Conflict:
                self.fenced.set()
                return
            except APIError as err:  # unreachable: the next beat tries again
                log.debug("heartbeat for trial %s failed: %s", self.spec.trial_id, err.message)

    # -- reports -------------------------------------------------------------------------
    def report(self, report: ReportIn) -> bool:
        """Deliver this report (and any buffered before it); True means stop training.

        Never blocks on an unreachable server: undeliverable reports stay buffered.
        Raises :class:`Fenced` when the attempt was superseded.
        """
        with self._flushing:
            self._pending.append(report)
            if self._may_hold(report):
                if self._held_since is None:
                    self._held_since = time.monotonic()
            else:
                self._flush(block=False)
        return self.stop_requested.is_set()

    def _may_hold(self, report: ReportIn) -> bool:
        """Whether ``report`` may wait for a later send (see the module docstring)."""
        interval = self.spec.report_interval
        return (
            interval > 0
            and report.checkpoint is None
            and len(self._pending) < _MAX_HELD
            and time.monotonic() - self._last_send < interval
        )

    def _flush(self, *, block: bool) -> None:
        with self._flushing:
            self._flush_locked(block=block)

    def _flush_locked(self, *, block: bool) -> None:
        deadline = time.monotonic() + (self.patience if block else 0.0)
        self._held_since = None
        while self._pending:
            if self.fenced.is_set():
                raise Fenced(f"trial {self.spec.trial_id} attempt {self.spec.attempt}")
            batch = list(self._pending)[:_MAX_HELD]
            try:
                answer = retrying(functools.partial(self._send, batch), deadline=deadline)
            except Conflict as err:
                self.fenced.set()
                raise Fenced(err.message) from None
            except APIError as err:
                if _transient(err) and not block:
                    log.warning("buffering %d report(s): %s", len(self._pending), err.message)
                    return
                raise
            for _ in batch:
                self._pending.popleft()
            self._acknowledge(batch)
            if answer.decision == "stop":
                self.stop_requested.set()
            if answer.hand_back:
                self.hand_back_requested.set()

    def _acknowledge(self, delivered: list[ReportIn]) -> None:
        steps = [r.step for r in delivered if r.checkpoint is not None]
        if steps and (self.checkpoint_acked is None or max(steps) > self.checkpoint_acked):
            self.checkpoint_acked = max(steps)

    def _send(self, batch: list[ReportIn]) -> ReportOut:
        """One request: the report alone, or the held ones together."""
        with self._lock:
            self._last_send = time.monotonic()
            if len(batch) == 1:
                return self.client.report(self.spec.trial_id, batch[0])
            return self.client.report_many(self.spec.trial_id, batch)

    # -- the end ---------------------------------------------------------------------------
    def finish(self, finish: FinishIn) -> str:
        """Deliver buffered reports (with the finish itself when they fit in one
        request), then the finish; return the stored status."""
        if self.want_next is not None and self.want_next():
            finish = finish.model_copy(update={"lease_next": True})
        with self._flushing:
            if self._pending and len(self._pending) <= _MAX_HELD and not self.fenced.is_set():
                finish = finish.model_copy(update={"reports": list(self._pending)})
            else:
                self._flush(block=True)
            deadline = time.monotonic() + self.patience
            try:
                trial = retrying(lambda: self._finish(finish), deadline=deadline)
            except Conflict as err:
                self.fenced.set()
                raise Fenced(err.message) from None
            self._acknowledge(finish.reports)
            self._pending.clear()
            self._held_since = None
        self.next_trial = trial.next_trial
        return trial.status

    def _finish(self, finish: FinishIn) -> FinishOut:
        with self._lock:
            return self.client.finish_trial(self.spec.trial_id, finish)

    def release(self, reason: str) -> str:
        """Deliver buffered reports, then hand the trial back to the queue."""
        self._flush(block=True)
        deadline = time.monotonic() + self.patience
        body = ReleaseIn(attempt=self.spec.attempt, reason=reason)
        try:
            trial = retrying(lambda: self._release(body), deadline=deadline)
        except Conflict as err:
            raise Fenced(err.message) from None
        return "released" if trial.status == "queued" else trial.status

    def _release(self, body: ReleaseIn) -> TrialPublic:
        with self._lock:
            return self.client.release_trial(self.spec.trial_id, body)
