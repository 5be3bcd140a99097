"""A study's trial counts by status, mirrored in memory and brought up to date per call.

Counting a study's trials (a trials page's ``X-Total-Count``, the study summary's
counts, the median rule's finished count) is an index scan over all of them: 10-13 ms
at 100,000 trials on PostgreSQL, on every call. The mirror re-reads only the rows that
can have changed since it last looked: trials numbered above any it holds (new ones)
and the ones it last saw queued or running; a terminal trial is counted once.

Contract: :func:`trial_counts` returns ``{status: n}`` (statuses with no trial left
out) equal to a ``GROUP BY status`` over the study's trials as of a moment during the
call. The mirror relies on the service's invariants, which it checks where that is
cheap and answers from SQL where it cannot trust itself:

1. a terminal status never changes (completed, pruned, failed, stopped are final);
2. trials are deleted only with their study (a vanished open trial: rebuilt);
3. a study's new trials get numbers above its existing ones (the scheduler numbers
   them after the last under the study's row lock, so they commit in number order);
4. trial numbers are unique per study and, as the scheduler assigns them, dense from 0
   (``dense``; a study that stops being dense between two looks is rebuilt);
5. a trial's value is written with its terminal status and never changes (an open
   trial seen with a value turns :func:`value_rank` off for the study).

The mirror also keeps the values of the trials that have one, sorted, so that an offset
page by value can start right after the value at its offset (:func:`value_rank`)
instead of skipping ``offset`` index entries (10-15 ms deep into 100,000 trials).

A backstop compares with a full count every ``VERIFY_SECONDS`` and rebuilds on a
difference. Studies under ``MIN_TRIALS`` trials are counted in SQL every time (cheap
there, and exact even when something edits the database behind the server's back).
Speed only, never correctness (DESIGN.md, principle 2).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    any_,
    bindparam,
    func,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from search.status import TERMINAL
from server.caches import CacheKind, caches_of
from server.tables import Study, Trial

__all__ = [
    "MIN_TRIALS",
    "VERIFY_SECONDS",
    "StudyCounts",
    "trial_counts",
    "value_rank",
]

#: Below this many trials a study is counted in SQL on every call.
MIN_TRIALS = 5000
#: A mirror older than this is compared with a full count (and rebuilt on a difference).
VERIFY_SECONDS = 30.0
#: Studies mirrored at once (least recently used dropped first; ~100 bytes a trial
#: with a value, e.g. 10 MB at 100,000).
MAX_STUDIES = 16
COUNTS: CacheKind[StudyCounts] = CacheKind("counts", MAX_STUDIES)


#: What a refresh reads of a trial (the study's id first, to check it).
_COLUMNS = (Trial.study_id, Trial.id, Trial.number, Trial.status, Trial.value)


def _one_of(session: Session, ids: list[int]) -> ColumnElement[bool]:
    """``Trial.id IN ids``; on PostgreSQL as one array parameter (an IN list of 100
    parameters cost ~2 ms a call to render, send and parse)."""
    if session.get_bind().dialect.name == "postgresql":
        return Trial.id == any_(bindparam("open_ids", ids, type_=ARRAY(Integer)))
    return Trial.id.in_(ids)


def _sql_counts(session: Session, study_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Trial.status, func.count()).where(Trial.study_id == study_id).group_by(Trial.status)
    ).all()
    return {status: count for status, count in rows}


@dataclass
class StudyCounts:
    """One study's mirror: ``settled`` counts terminal trials by status, ``open`` maps
    the ids of trials last seen queued or running to that status. ``max_number`` is
    the highest number held; ``total`` trials in all.
    ``values`` holds ``(value, number)`` of the trials with a value, sorted: a value is
    written with the terminal status and never changes (``values_ok`` turns False, for
    good, when an open trial has one)."""

    study_id: int
    settled: Counter[str] = field(default_factory=Counter)
    open: dict[int, str] = field(default_factory=dict)
    total: int = 0
    max_number: int = -1
    values: list[tuple[float, int]] = field(default_factory=list)
    values_ok: bool = True
    built: bool = False
    verified_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dense(self) -> bool:
        """True when the trials held are numbered exactly 0..total-1 (numbers are unique)."""
        return self.total == self.max_number + 1

    def counts(self) -> dict[str, int]:
        out = Counter(self.settled)
        out.update(self.open.values())
        return {status: n for status, n in out.items() if n}

    def rebuild(self, session: Session) -> None:
        """Read the whole study (id, number, status, value)."""
        self.settled, self.open, self.values = Counter(), {}, []
        self.total, self.max_number = 0, -1
        rows = session.connection().execute(
            select(Trial.id, Trial.number, Trial.status, Trial.value)
            .where(Trial.study_id == self.study_id)
            .execution_options(yield_per=20_000)
        )
        self._fold(rows)
        self.built, self.verified_at = True, time.monotonic()

    def refresh(self, session: Session) -> None:
        """Fold in new trials and the open ones' current status; rebuild when an
        invariant (module doc) does not hold."""
        if not self.built:
            self.rebuild(session)
            return
        # New trials by the (study_id, number) index; open ones by primary key alone, their
        # study checked here. Not one ``id > ? OR id IN (...)`` under the study's id:
        # SQLite answered that (and even ``id > ?`` alone) by reading every index entry
        # of the study, on each call (~2 ms at 10,000 trials).
        newer = select(*_COLUMNS).where(
            Trial.study_id == self.study_id, Trial.number > self.max_number
        )
        query: Executable = newer
        if self.open:
            query = union_all(newer, select(*_COLUMNS).where(_one_of(session, sorted(self.open))))
        rows = [
            row[1:]
            for row in session.connection().execute(query)
            if row[0] == self.study_id  # an id of another study: as good as deleted
        ]
        seen = {row[0] for row in rows}
        if any(trial_id not in seen for trial_id in self.open):  # deleted: (2) broken
            self.rebuild(session)
            return
        was_dense = self.dense
        self._fold(rows)
        if was_dense and not self.dense:  # a gap or a number twice: (3) or (4) broken
            self.rebuild(session)

    def verify(self, session: Session) -> None:
        """Compare with a full count; rebuild on a difference that a second look does
        not explain (a trial may change between the refresh and the count)."""
        for attempt in range(2):
            if self.counts() == _sql_counts(session, self.study_id):
                break
            if attempt == 0:
                self.refresh(session)
        else:
            self.rebuild(session)
        self.verified_at = time.monotonic()

    def _fold(self, rows: Iterable[Sequence[Any]]) -> None:
        fresh: list[tuple[float, int]] = []
        for trial_id, number, status, value in rows:
            if trial_id in self.open:
                del self.open[trial_id]
            else:
                self.total += 1
                self.max_number = max(self.max_number, number)
            if status in TERMINAL:
                self.settled[status] += 1
                if value is not None:
                    fresh.append((value, number))
            else:
                self.open[trial_id] = status
                self.values_ok = self.values_ok and value is None
        if len(fresh) > 16:
            self.values = sorted([*self.values, *fresh])
        else:
            for pair in fresh:
                insort(self.values, pair)

    def value_rank(self, rank: int, descending: bool) -> tuple[float, int] | None:
        """``(value, number)`` of the trial at 0-based ``rank`` in value order among
        the trials with a value (descending: value down, ties by number up), or None
        past them."""
        values = self.values
        n = len(values)
        if not 0 <= rank < n:
            return None
        if not descending:
            return values[rank]
        # Value groups come in reverse order, each still in number order: find the
        # group of the rank-th from the top, then count into it from its start.
        value = values[n - 1 - rank][0]
        start = bisect_left(values, (value, -1))
        end = bisect_left(values, (value, float("inf")))
        return values[start + rank - (n - end)]


def _mirror(session: Session, study: Study) -> StudyCounts:
    return caches_of(session).get(COUNTS, study, lambda: StudyCounts(study.id))


def trial_counts(
    session: Session, study: Study, *, min_trials: int | None = None
) -> tuple[dict[str, int], int | None]:
    """The study's trial counts by status (module doc), and, when they come from a
    mirror whose trials are numbered exactly 0..N, that N (a trial's number is then its
    position in number order), else None. ``min_trials`` overrides :data:`MIN_TRIALS`
    (tests)."""
    floor = MIN_TRIALS if min_trials is None else min_trials
    mirror = _mirror(session, study)
    with mirror.lock:
        if not mirror.built:  # small studies stay counted in SQL; a large one is mirrored
            counts = _sql_counts(session, study.id)
            if sum(counts.values()) < floor:
                return counts, None
        mirror.refresh(session)
        if time.monotonic() - mirror.verified_at > VERIFY_SECONDS:
            mirror.verify(session)
        return mirror.counts(), (mirror.max_number if mirror.dense else None)


def value_rank(
    session: Session, study: Study, rank: int, *, descending: bool
) -> tuple[float, int] | int | None:
    """Where an offset page by value starts, from the study's mirror as
    :func:`trial_counts` last brought it up to date (call that first): the ``(value,
    number)`` of the trial at 0-based ``rank`` in value order (nulls last, ties by
    number), or, when ``rank`` is past the trials with a value, the rank among the
    trials without one (an int). None when the study has no trustworthy mirror."""
    mirror = _mirror(session, study)
    with mirror.lock:
        if not (mirror.built and mirror.values_ok):
            return None
        return mirror.value_rank(rank, descending) or rank - len(mirror.values)
