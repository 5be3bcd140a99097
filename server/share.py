"""Fair share: which studies a pool's free slots go to. Pure: no database, no clock.

When a pool's studies want more slots than it has, a freed slot goes to the study
furthest below its weighted share, never to whichever job was queued first. Shares
are split in two levels: first equally between the projects that want slots in the
pool, then within a project by its studies' ``priority``. "Furthest below" is measured
as usage over weight: a project's slots in use in the pool (over its equal weight),
then a study's slots in use over its priority. A newly submitted study holds nothing,
so the next freed slot is its own, however full the pool is.

A project's ``gpu_quota`` caps what all its studies hold at once across the fleet
(every pool); a study whose next trial would pass it gets nothing until some of the
project's trials end.

Slots are counted in units of one worker slot: a trial holds ``size`` of them (one,
N for an N-GPU trial, 1/k for a trial packed k to a GPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

__all__ = ["Standing", "allot", "keeps"]

#: Tolerance on unit sums: shares like 1/3 do not add up exactly in floating point.
_EPS = 1e-9


@dataclass(frozen=True)
class Standing:
    """Where one running study of a pool stands when slots are handed out."""

    study_id: int
    project_id: int
    #: the study's ``priority`` (> 0): its weight within its project
    priority: float
    #: trials it has queued or running now
    in_flight: int
    #: at most how many more trials it would take now (``max_parallel`` and the budget
    #: left; an upper bound: the strategy may have fewer to suggest)
    want: int
    #: slots one of its trials holds
    size: float = 1.0
    #: whether it may ask lower-priority studies' trials to hand back (``preempt``)
    preempt: bool = False


def allot(
    standings: Iterable[Standing],
    free: float,
    *,
    project_used: Mapping[int, float] | None = None,
    quotas: Mapping[int, float | None] | None = None,
    capacity: float | None = None,
) -> dict[int, int]:
    """How many new trials each study gets from ``free`` slots: study id -> count
    (only studies that get some). One slot at a time, each to the project, then the
    study within it, furthest below its share (ties: the older study, by id).

    ``project_used``: slots each project holds fleet-wide now (for its quota);
    ``quotas``: a project's most slots at once (None or absent: no cap).

    With the pool's ``capacity``, the free slots are *held* for the study next in
    line when its trial is bigger than what is free but fits the pool: nobody else
    gets them, so they add up as trials end until its trial fits (otherwise smaller
    trials take every slot as it frees and a 4-GPU trial, or a whole GPU among
    quarter-GPU trials, never starts). Without it, a trial bigger than what is free
    is passed over for smaller ones."""
    rows = sorted(standings, key=lambda s: s.study_id)
    used_by_project: dict[int, float] = {}
    for s in rows:
        held_now = s.in_flight * s.size
        used_by_project[s.project_id] = used_by_project.get(s.project_id, 0.0) + held_now
    fleet_used = dict(project_used or {})
    quota_of = quotas or {}
    held = {s.study_id: s.in_flight * s.size for s in rows}
    left = {s.study_id: s.want for s in rows}
    given: dict[int, int] = {}
    while free > _EPS:
        eligible = [
            s
            for s in rows
            if left[s.study_id] > 0
            and (s.size <= free + _EPS or (capacity is not None and s.size <= capacity + _EPS))
            and _within_quota(s, fleet_used, quota_of)
        ]
        if not eligible:
            break
        oldest: dict[int, int] = {}
        for s in eligible:
            oldest.setdefault(s.project_id, s.study_id)  # rows are in id order
        project = min(oldest, key=lambda p: (used_by_project[p], oldest[p]))
        study = min(
            (s for s in eligible if s.project_id == project),
            key=lambda s: (held[s.study_id] / s.priority, s.study_id),
        )
        if study.size > free + _EPS:  # next in line, too big for now: hold the rest
            break
        given[study.study_id] = given.get(study.study_id, 0) + 1
        left[study.study_id] -= 1
        held[study.study_id] += study.size
        used_by_project[project] += study.size
        fleet_used[project] = fleet_used.get(project, 0.0) + study.size
        free -= study.size
    return given


def keeps(
    standings: list[Standing],
    ended: int,
    capacity: float,
    *,
    quotas: Mapping[int, float | None],
    project_used: Mapping[int, float],
) -> bool:
    """Whether study ``ended``, whose trial just ended, gets the next trial on its
    devices: its trials are bigger than some other wanting study's, it wants more (and
    its project's quota allows), and it holds fewer than the trials its share of the
    whole pool comes to (:func:`server.share.allot` of ``capacity`` to nobody holding
    anything). Its project may be above its share meanwhile (another of its studies
    holds more than its own): slots are taken back from those above their share as
    their trials end, never from a study below its own."""
    mine = next((s for s in standings if s.study_id == ended), None)
    if mine is None or mine.want <= 0:
        return False
    if not _within_quota(mine, project_used, quotas):
        return False
    if not any(s.want > 0 and s.size < mine.size for s in standings):
        return False
    # what each would hold from an empty pool: in flight now plus what it would take
    empty = [replace(s, in_flight=0, want=s.in_flight + s.want) for s in standings]
    return mine.in_flight < allot(empty, capacity, capacity=capacity).get(ended, 0)


def _within_quota(
    s: Standing, used: Mapping[int, float], quotas: Mapping[int, float | None]
) -> bool:
    quota = quotas.get(s.project_id)
    return quota is None or used.get(s.project_id, 0.0) + s.size <= quota + _EPS
