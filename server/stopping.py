"""Early stopping at report time: the study's stopping rule, fed from the database.

The rule itself is pure (``search.median``); this module only gathers its inputs with
two aggregate queries (the trial's best value so far, and each finished peer's best value
up to the same step), so deciding costs no full-history load.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from search.median import median_decision
from server.tables import Report, Study, Trial

__all__ = ["stopping_decision"]


def stopping_decision(session: Session, study: Study, trial: Trial, step: int) -> str | None:
    """``"stop"`` with the rule's reason, or None to continue."""
    rule: dict[str, Any] | None = (study.spec or {}).get("stopping")
    if not rule:
        return None
    best = func.max if study.direction == "maximize" else func.min
    mine = session.scalar(
        select(best(Report.value)).where(
            Report.trial_id == trial.id, Report.step <= step, Report.value.is_not(None)
        )
    )
    if mine is None:
        return None
    peers = session.execute(
        select(Report.trial_id, best(Report.value))
        .join(Trial, Trial.id == Report.trial_id)
        .where(
            Trial.study_id == study.id,
            Trial.status.in_(("completed", "pruned")),
            Trial.id != trial.id,
            Report.step <= step,
            Report.value.is_not(None),
        )
        .group_by(Report.trial_id)
        .having(func.max(Report.step) >= step)
    ).all()
    decision = median_decision(
        float(mine),
        [float(v) for _, v in peers],
        step,
        study.direction,  # type: ignore[arg-type]
        warmup_steps=int(rule.get("warmup_steps", 2)),
        min_trials=int(rule.get("min_trials", 5)),
    )
    if decision == "stop":
        return (
            f"median stopping: best {mine:.4g} by step {step} is worse than the median "
            f"of {len(peers)} earlier trials"
        )
    return None
