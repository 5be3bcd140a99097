"""Dispatch: a pool's free slots filled by fair share, from a pass or a finish's refill.

The database decides which study a free slot serves; the queue only carries the trial
there. A pool's size is what its serving workers registered (:class:`PoolCapacity`:
one slot per GPU or CPU slot of each daemon), and the server keeps no more trials in flight
(``queued`` or ``running``) in the pool than that: each pool's queue holds no more
jobs than it has idle slots, so no study can fill it ahead of the others. Each free
slot goes to the study :func:`server.share.allot` picks (priority, projects, quotas),
and a finishing worker is leased the first of them at once. A finishing worker that
held a bigger trial than others of the pool want is leased its own study's next trial
while that study is below its share (:func:`server.share.keeps`): split among smaller
trials, its devices would have to be drained again on some machine, idle meanwhile.

Until a worker of the pool has registered, its size is unknown: every study is then
topped up to its ``max_parallel`` as before (the trials wait in the queue for the
fleet to start). ``dispatch = "fifo"`` keeps that behaviour always (the order jobs
were queued in), for comparison.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from hpo.resources import demand
from search.status import OPEN
from server.handback import HAND_BACK, Running, choose
from server.pools import slot_count
from server.share import Standing, allot, keeps
from server.tables import Project, Study, Trial, Worker, utcnow

if TYPE_CHECKING:
    from server.scheduler import Scheduler

__all__ = ["Dispatch", "PoolCapacity", "pool_standings", "serve_pool", "slot_size"]

Dispatch = Literal["fair", "fifo"]

_OPEN = tuple(sorted(OPEN))
_IN_FLIGHT = (
    select(func.count())
    .where(Trial.study_id == Study.id, Trial.status.in_(_OPEN))
    .correlate(Study)
    .scalar_subquery()
)
_LAST_NUMBER = (
    select(func.max(Trial.number)).where(Trial.study_id == Study.id).correlate(Study)
).scalar_subquery()
#: The pool's studies whose trials its workers run, live ones only (a paused study's
#: running trials still hold slots; it gets none).
_STANDINGS = (
    select(
        Study.id,
        Study.project_id,
        Study.status,
        Study.priority,
        Study.gpus,
        Study.max_parallel,
        Study.max_trials,
        _LAST_NUMBER,
        _IN_FLIGHT,
        Project.gpu_quota,
        Study.spec["preempt"].as_boolean(),
    )
    .join(Project, Project.id == Study.project_id)
    .where(
        Study.pool == bindparam("pool"),
        Study.status.in_(["running", "paused"]),
        Study.runner == "workers",
    )
)
#: Slots each project's trials hold fleet-wide (for quotas).
_PROJECT_USE = (
    select(Study.project_id, Study.gpus, func.count())
    .join(Trial, Trial.study_id == Study.id)
    .where(Trial.status.in_(_OPEN), Study.project_id.in_(bindparam("projects", expanding=True)))
    .group_by(Study.project_id, Study.gpus)
)


def slot_size(gpus: float | None) -> float:
    """Slots one trial of a study with ``resources.gpus = gpus`` holds
    (``hpo.resources.demand``)."""
    return float(demand(gpus))


class PoolCapacity:
    """How many slots each pool's serving workers have, re-read at most every ``ttl``
    seconds (a registration is repeated every heartbeat interval anyway). A worker
    serves while its registration is fresh (``heartbeat_timeout``) and not stopped;
    it brings one slot per GPU it registered, else one per CPU slot
    (``server.pools.slot_count``: a daemon registers once with all its devices)."""

    def __init__(self, heartbeat_timeout: float, ttl: float = 1.0) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.ttl = ttl
        self._known: dict[str, tuple[float, int]] = {}

    def of(self, session: Session, pool: str) -> int:
        """The pool's slots (0: no worker serves it now)."""
        now = time.monotonic()
        known = self._known.get(pool)
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        cutoff = utcnow() - timedelta(seconds=self.heartbeat_timeout)
        devices = session.scalars(
            select(Worker.devices).where(
                Worker.pool == pool, Worker.status != "stopped", Worker.heartbeat_at >= cutoff
            )
        )
        slots = sum(slot_count(d) for d in devices)
        self._known[pool] = (now, slots)
        return slots

    def forget(self) -> None:
        """Re-read every pool at its next use (a worker joined or left)."""
        self._known.clear()


def pool_standings(session: Session, pool: str) -> tuple[list[Standing], dict[int, float | None]]:
    """The pool's live studies as :class:`Standing` rows, and each of their projects'
    quota."""
    standings, quotas = [], {}
    for row in session.execute(_STANDINGS, {"pool": pool}):
        sid, project, status, priority, gpus, parallel, budget, last, in_flight = row[:9]
        quota, preempt = row[9:]
        created = 0 if last is None else last + 1
        want = 0 if status != "running" else max(0, min(parallel - in_flight, budget - created))
        standings.append(
            Standing(
                study_id=sid,
                project_id=project,
                priority=priority,
                in_flight=in_flight,
                want=want,
                size=slot_size(gpus),
                preempt=bool(preempt),
            )
        )
        quotas[project] = quota
    return standings, quotas


def project_use(session: Session, projects: Iterable[int]) -> dict[int, float]:
    """Slots each of ``projects`` holds now, fleet-wide."""
    used: dict[int, float] = {}
    for project, gpus, count in session.execute(_PROJECT_USE, {"projects": list(projects)}):
        used[project] = used.get(project, 0.0) + count * slot_size(gpus)
    return used


def serve_pool(
    scheduler: Scheduler,
    session: Session,
    pool: str,
    *,
    lease_to: str | None = None,
    lease_size: float = 1.0,
    finishing: int | None = None,
    ended: int | None = None,
) -> list[tuple[Study, list[dict[str, Any]]]] | None:
    """Fill the pool's free slots by fair share in ``session`` (the caller commits,
    then enqueues the rows not leased; it holds ``scheduler.exclusive()``). The first
    new trial goes to ``lease_to`` (started) when given, if it is of a study whose
    trials are ``lease_size`` slots (a worker holds the devices of the trial that ended
    and nothing else: a trial of another size waits in its queue). Slots of the pool freed by
    finishes other than ``finishing``'s, on their way to their own refill
    (``scheduler.holds``), are left for them.

    ``ended``: the study whose trial ended (with ``lease_to``). When its trials are
    bigger than another study's of the pool, it keeps the devices while it stays
    within its share (:func:`keeps`): split among smaller trials they would have to
    be drained again, on some machine, for its next trial.

    Returns each served study with its new rows (the leased one first), or None when
    no worker serves the pool yet (its size is unknown: the caller tops its studies
    up as before)."""
    capacity = scheduler.capacity.of(session, pool)
    if capacity <= 0:
        return None
    standings, quotas = pool_standings(session, pool)
    # Read after the standings, never before: a finish committing in between is then
    # counted twice (its slot stays free until its own refill), not zero times (a
    # pass would take the slot held for the finishing worker).
    held = scheduler.holds.in_pool(session, pool, finishing)
    capped = [p for p, q in quotas.items() if q is not None]
    used_fleet = project_use(session, capped) if capped else {}
    free = capacity - held - sum(s.in_flight * s.size for s in standings)
    served: list[tuple[Study, list[dict[str, Any]]]] = []
    if (
        lease_to is not None
        and ended is not None
        and free + 1e-9 >= lease_size
        and keeps(standings, ended, capacity, quotas=quotas, project_used=used_fleet)
    ):
        study = session.get(Study, ended)
        if study is not None and slot_size(study.gpus) == lease_size:
            rows = scheduler.fill(session, study, lease_to, finishing=finishing, limit=1)
            if rows:
                served.append((study, rows))
                lease_to = None if rows[0]["status"] == "running" else lease_to
                free -= len(rows) * lease_size
                mine = next(s for s in standings if s.study_id == ended)
                if mine.project_id in used_fleet:
                    used_fleet[mine.project_id] += len(rows) * lease_size
                kept = replace(mine, in_flight=mine.in_flight + len(rows), want=mine.want - 1)
                standings = [kept if s is mine else s for s in standings]
    for _round in range(3):  # a study may have fewer to suggest than it was allotted
        given = allot(standings, free, project_used=used_fleet, quotas=quotas, capacity=capacity)
        if not given:
            break
        short = False
        by_id = {s.study_id: s for s in standings}
        for study_id, count in given.items():
            study = session.get(Study, study_id)
            if study is None:
                continue
            size = by_id[study_id].size
            to = lease_to if size == lease_size else None
            rows = scheduler.fill(session, study, to, finishing=finishing, limit=count)
            if rows:
                served.append((study, rows))
                if rows[0]["status"] == "running":
                    lease_to = None
            took = len(rows)
            stood = by_id[study_id]
            free -= took * size
            if stood.project_id in used_fleet:
                used_fleet[stood.project_id] += took * size
            want = 0 if took < count else stood.want - took
            short = short or took < count
            by_id[study_id] = replace(stood, in_flight=stood.in_flight + took, want=want)
        standings = list(by_id.values())
        if not short:
            break
    if any(s.preempt and s.want > 0 for s in standings):
        served += _hand_backs(scheduler, session, standings, capacity, free, finishing)
    return served


def _hand_backs(
    scheduler: Scheduler,
    session: Session,
    standings: list[Standing],
    capacity: float,
    free: float,
    finishing: int | None,
) -> list[tuple[Study, list[dict[str, Any]]]]:
    """Ask running trials to hand back for preempting studies below their share
    (``server.handback``), and create those studies' trials now, to be queued ahead of
    the trials handed back."""
    preempting = [s.study_id for s in standings if s.preempt and s.want > 0]
    top = max(s.priority for s in standings if s.study_id in preempting)
    lower = [s.study_id for s in standings if s.priority < top]
    if not lower:
        return []
    rows = session.execute(
        select(Trial.id, Trial.study_id, Trial.started_at, Trial.info).where(
            Trial.study_id.in_(lower), Trial.status == "running"
        )
    ).all()
    running = [Running(t, s, at, bool((info or {}).get(HAND_BACK))) for t, s, at, info in rows]
    served = []
    for study_id, trial_ids in choose(standings, capacity, free, preempting, running).items():
        study = session.get(Study, study_id)
        if study is None:
            continue
        made = scheduler.fill(session, study, None, finishing=finishing, limit=len(trial_ids))
        for trial_id in trial_ids[: len(made)]:
            trial = session.get(Trial, trial_id)
            if trial is not None:
                trial.info = {**(trial.info or {}), HAND_BACK: f"study {study.name!r}"}
        if made:
            served.append((study, made))
    return served
