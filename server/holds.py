"""Slots held for finishes on their way to a refill.

A finish (``POST /trials/{id}/finish``) commits its own transaction outside the
scheduler's lock and refills its study after (``server.refill``). In between, a
scheduler pass, or another finish's refill, could fill the slot it freed, and the
finishing worker would get no next trial. So the finish holds its slot from before its
commit until its refill is done: :meth:`SlotHolds.hold` and :meth:`SlotHolds.release`,
and every fill leaves the slots held for others free (:meth:`SlotHolds.others`).

In memory, per scheduler: a hold lives for the length of one request. Speed only: a
slot left free by a hold whose request died is filled by the next pass once released,
and a request always releases (``finally``).
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from search.status import OPEN
from server.history import HistoryMirror
from server.tables import Study, Trial

__all__ = ["SlotHolds"]


class SlotHolds:
    """The finishes between their commit and their refill, by trial id."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[int, int]] = {}  # trial id -> (study id, number)
        self._lock = threading.Lock()

    def hold(self, trial_id: int, study_id: int, number: int) -> None:
        """Keep the slot that trial ``trial_id`` (``number`` of study ``study_id``)
        frees for its own finish's refill until :meth:`release`. Take it before the
        finish commits."""
        with self._lock:
            self._held[trial_id] = (study_id, number)

    def release(self, trial_id: int) -> None:
        """End :meth:`hold` (after the refill, or when the finish failed)."""
        with self._lock:
            self._held.pop(trial_id, None)

    def __len__(self) -> int:
        """How many slots are held now."""
        with self._lock:
            return len(self._held)

    def others(self, history: HistoryMirror, finishing: int | None) -> int:
        """Slots of ``history``'s study held for refills other than ``finishing``'s:
        only those whose trial has ended in ``history`` (a held trial whose finish has
        not committed yet is still in flight there and must not count twice)."""
        with self._lock:
            return sum(
                study == history.study_id and trial != finishing and number not in history.open
                for trial, (study, number) in self._held.items()
            )

    def in_pool(self, session: Session, pool: str, finishing: int | None = None) -> float:
        """Slots of ``pool`` held for refills other than ``finishing``'s: those whose
        trial has ended (one still open is counted in flight already), in slots
        (``server.dispatch.slot_size``)."""
        with self._lock:
            ids = [trial for trial in self._held if trial != finishing]
        if not ids:
            return 0
        return float(
            session.scalar(
                select(func.sum(func.coalesce(Study.gpus, 1.0)))
                .select_from(Trial)
                .join(Study, Study.id == Trial.study_id)
                .where(Trial.id.in_(ids), Study.pool == pool, Trial.status.not_in(sorted(OPEN)))
            )
            or 0
        )
