"""Hand-back: a study that may preempt takes its share of a full pool at once, from
the running trials of studies of lower priority, each stopping at its next checkpoint.

A study with ``preempt: true`` that is below its weighted share of its pool (what
:func:`server.share.allot` would give it of the whole pool if nobody held anything),
and wants more than the pool's free slots can give, asks running trials of studies of
lower priority that hold more than their own share to hand back: their report and
heartbeat answers say ``hand_back`` (the trial's ``info`` holds who asked), and the
worker releases the trial at its next checkpoint, unfinished. The preempting study's
trial is created at the ask, over the pool's size, and queued ahead of the trial
handed back, so the slot that frees is its. The trial handed back is queued again and
resumes from that checkpoint when a slot frees; it is neither failed nor retried, and
counts its hand-backs (``handbacks``) apart from its failures.

Only trials of the preempting study's size are asked (what frees is what it needs),
the newest first (the least work to redo), and never one already asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from server.share import Standing, allot

__all__ = ["HANDBACKS", "HAND_BACK", "Running", "below_share", "choose"]

#: ``Trial.info`` key: the study that asked this running trial to hand back.
HAND_BACK = "hand_back"
#: ``Trial.info`` key: how many times the trial was handed back when asked.
HANDBACKS = "handbacks"


@dataclass(frozen=True)
class Running:
    """A running trial that could be asked to hand back."""

    trial_id: int
    study_id: int
    started_at: datetime | None
    asked: bool


def below_share(standings: Sequence[Standing], capacity: float) -> dict[int, int]:
    """Trials each study is below (> 0) or above (< 0) its weighted share of the whole
    pool: the share :func:`allot` would give it of ``capacity`` free slots, if nobody
    held any, counting what it holds and wants now."""
    ideal = allot([replace(s, in_flight=0, want=s.in_flight + s.want) for s in standings], capacity)
    return {s.study_id: ideal.get(s.study_id, 0) - s.in_flight for s in standings}


def choose(
    standings: Sequence[Standing],
    capacity: float,
    free: float,
    preempting: Iterable[int],
    running: Sequence[Running],
) -> dict[int, list[int]]:
    """Which running trials each preempting study asks to hand back: study id -> trial
    ids. Pure. A preempting study asks for at most the trials it is below its share and
    still wants, beyond what ``free`` slots give it, from studies of lower priority and
    its own size that are above theirs (the furthest above first)."""
    short = below_share(standings, capacity)
    by_id = {s.study_id: s for s in standings}
    above = {sid: -n for sid, n in short.items() if n < 0}
    pool = sorted(
        (r for r in running if not r.asked),
        key=lambda r: (r.started_at is None, r.started_at or datetime.min),
        reverse=True,
    )
    asks: dict[int, list[int]] = {}
    for sid in sorted(preempting, key=lambda i: (-by_id[i].priority, i)):
        s = by_id[sid]
        # what free slots give it is not asked of anyone (over-full: nothing is free)
        need = min(short.get(sid, 0), s.want) - int(max(0.0, free) // s.size)
        while need > 0:
            victims = [
                v
                for v in by_id.values()
                if above.get(v.study_id, 0) > 0 and v.priority < s.priority and v.size == s.size
            ]
            trial = None
            for v in sorted(victims, key=lambda v: (-above[v.study_id], v.study_id)):
                trial = next((r for r in pool if r.study_id == v.study_id), None)
                if trial is not None:
                    break
            if trial is None:
                break
            pool.remove(trial)
            above[trial.study_id] -= 1
            asks.setdefault(sid, []).append(trial.trial_id)
            need -= 1
    return asks
