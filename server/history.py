"""An in-memory mirror of each study's trial history, refreshed incrementally.

The scheduler rebuilds a study's strategy from its whole history on every pass. Loading
(and JSON-decoding) every trial row each time made a pass cost O(trials): at 10,000
trials most of a pass. A trial row's strategy-relevant fields settle once the trial is
terminal (its params and info never change after insert; a terminal status and value
never change), so the mirror keeps terminal trials and re-reads only what can still
move: trials it has not seen (numbers above the highest it holds: the scheduler numbers
new trials after the last one) and the open ones (``queued``/``running``), at most
``max_parallel``-ish rows a pass.

Speed only, never correctness (DESIGN.md, principle 2): ``verify`` compares the
mirror's size with the database's count and starts over on any difference; the
scheduler calls it on its maintenance tick. The mirrors live in the app's caches
(:mod:`server.caches`, kind :data:`HISTORY`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, union_all
from sqlalchemy.orm import Session

from search import TrialRecord
from search.space import SearchSpace
from search.status import TERMINAL
from server.caches import CacheKind
from server.lookahead import Lookahead
from server.tables import Trial

__all__ = ["HISTORY", "HistoryMirror"]

# Built once (a refresh runs on every finish): building and keying a statement per call
# cost about as much as running it.
_COLUMNS = (Trial.number, Trial.params, Trial.status, Trial.value, Trial.info)
_ABOVE = Trial.number > bindparam("last")
_NEW = (
    select(*_COLUMNS).where(Trial.study_id == bindparam("study_id"), _ABOVE).order_by(Trial.number)
)
# Two index searches joined by UNION ALL, not one OR: with ``number > ? OR number IN
# (...)`` SQLite searched the (study_id, number) index on study_id alone, reading every
# one of the study's entries on every refresh (the rate fell as the study grew). The
# open numbers are all <= the last one held, so the two parts never overlap.
_NEW_OR_OPEN = union_all(
    select(*_COLUMNS).where(Trial.study_id == bindparam("study_id"), _ABOVE),
    select(*_COLUMNS).where(
        Trial.study_id == bindparam("study_id"),
        Trial.number.in_(bindparam("open", expanding=True)),
    ),
).order_by("number")


@dataclass
class HistoryMirror:
    """One study's trials as strategy records, in number order."""

    study_id: int
    records: list[TrialRecord] = field(default_factory=list)
    #: numbers of trials that may still change (queued or running)
    open: set[int] = field(default_factory=set)
    #: the study's parsed search space, kept by the scheduler (it never changes)
    space: SearchSpace | None = None
    #: how many of the trials held are failed, and that count when the scheduler
    #: last looked at failing fast (:mod:`server.outcome`): it looks again only
    #: after another trial failed
    failed: int = 0
    failed_checked: int = 0
    #: suggestions asked ahead and the timings behind them (``server.lookahead``)
    lookahead: Lookahead = field(default_factory=Lookahead)
    _index: dict[int, int] = field(default_factory=dict)  # number -> position in records

    @property
    def created(self) -> int:
        """Trials the study has."""
        return len(self.records)

    @property
    def in_flight(self) -> int:
        """Trials queued or running."""
        return len(self.open)

    def refresh(self, session: Session) -> int:
        """Read the trials numbered above the highest held, and the open ones; return
        how many rows that was."""
        last = self.records[-1].number if self.records else -1
        values: dict[str, Any] = {"study_id": self.study_id, "last": last}
        if self.open:
            values["open"] = sorted(self.open)
        rows = session.execute(_NEW_OR_OPEN if self.open else _NEW, values).all()
        for number, params, status, value, info in rows:
            record = TrialRecord(
                number=number, params=params, status=status, value=value, info=info or {}
            )
            at = self._index.get(number)
            if at is None:  # above every number held (the query's order): append
                self._index[number] = len(self.records)
                self.records.append(record)
            else:
                self.failed -= self.records[at].status == "failed"
                self.records[at] = record
            self.failed += status == "failed"
            if status in TERMINAL:
                self.open.discard(number)
            else:
                self.open.add(number)
        return len(rows)

    def clear(self) -> None:
        """Forget everything (the next refresh reads the whole study)."""
        self.records.clear()
        self.open.clear()
        self._index.clear()
        self.failed = self.failed_checked = 0
        self.lookahead = Lookahead()

    def verify(self, session: Session) -> bool:
        """True when the mirror holds as many trials as the database (a cheap check of
        the assumptions above); on a mismatch it is emptied, to be reloaded."""
        count = session.scalar(
            select(func.count()).select_from(Trial).where(Trial.study_id == self.study_id)
        )
        if count == len(self.records):
            return True
        self.clear()
        return False


#: The scheduler's mirrors, one per running study (more than any fleet runs at once:
#: an evicted mirror only costs a reload of its study).
HISTORY: CacheKind[HistoryMirror] = CacheKind("history", 4096)
