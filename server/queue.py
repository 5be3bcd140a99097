"""The transport that hands trial ids to workers.

The database is the source of truth; a queue only carries ids. The server depends on this
small protocol, never on a concrete executor: the embedded local executor (``worker.local``)
and the Redis/RQ queue both satisfy it structurally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["NullQueue", "TrialQueue"]


@runtime_checkable
class TrialQueue(Protocol):
    """Carries trial ids to workers."""

    #: True when every worker that could hold a trial belongs to this process (the
    #: embedded executor): trials a previous server process left ``running`` are then
    #: orphans and can be handed out again at start-up.
    owns_workers: bool

    def enqueue(self, trial_ids: Sequence[int]) -> None:
        """Hand these (already committed, ``queued``) trials to workers."""
        ...

    def live_trial_ids(self) -> set[int] | None:
        """Ids of trials some job still holds (waiting or started), or None when the
        transport cannot lose jobs (nothing for the reconciler to do)."""
        ...


class NullQueue:
    """No workers: trials stay ``queued`` until something starts them over the API."""

    owns_workers = False

    def __init__(self) -> None:
        self.enqueued: list[int] = []

    def enqueue(self, trial_ids: Sequence[int]) -> None:
        self.enqueued.extend(trial_ids)

    def live_trial_ids(self) -> set[int] | None:
        return None
