"""Wire schemas of the insight endpoints: compact, downsampled plot data of one study.

The dashboard's study page (and any client) draws its charts from these; the server
bounds every answer (``max_points``, ``max_trials``) so a study of any size loads fast.
History is *columnar* (one list per field, aligned by index) because a chart library
consumes columns directly and the JSON is several times smaller than a list of objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from hpo.schemas import TrialStatus

__all__ = [
    "CurvePoints",
    "ParamImportance",
    "StudyCurves",
    "StudyHistory",
    "StudyImportance",
]


class StudyHistory(BaseModel):
    """Optimization history: trials in number order, one list per field, all lists the
    same length (``len(numbers)``) and aligned by index.

    ``best_so_far[i]`` is the best completed value among *all* trials numbered up to
    ``numbers[i]`` (not only the returned ones), direction-aware; null before the first
    completed trial. When ``sampled`` the trials are a subset of at most ``max_points``
    that always holds every trial that improved the best so far and the best trial(s);
    the rest are evenly spaced by number.
    """

    study: str
    metric: str
    direction: Literal["minimize", "maximize"]
    total: int = Field(description="Trials in the study (all statuses).")
    sampled: bool = Field(description="True when some trials were left out.")
    numbers: list[int]
    statuses: list[TrialStatus]
    values: list[float | None] = Field(description="The trial's value (null: none yet).")
    best_so_far: list[float | None]
    durations: list[float | None] = Field(
        description="Seconds from start to finish (null: not started or not finished)."
    )
    params: dict[str, list[Any]] = Field(
        description="Per parameter of the search space, its value in each returned trial "
        "(null where the parameter is inactive or unset)."
    )
    metrics: list[str] = Field(
        default_factory=list,
        description="Metrics the study's trials report (the objective first): any may be "
        "asked for as ``metric``. For another metric than the objective, ``values`` are "
        "each trial's last reported value of it and ``best_so_far`` is null.",
    )


class CurvePoints(BaseModel):
    """One trial's learning curve: its reports, per step the latest attempt's, in step
    order; ``steps`` and ``values`` have the same length. A downsampled curve keeps its
    first and last point (see ``StudyCurves``)."""

    number: int
    status: TrialStatus
    budget: int | None = Field(description="The trial's budget in epochs (multi-fidelity).")
    rung: int | None = Field(description="Hyperband/ASHA rung of the trial.")
    steps: list[int]
    values: list[float | None]


class StudyCurves(BaseModel):
    """Learning curves of at most ``max_trials`` trials, in number order.

    Trials chosen when more have reports: the best completed ones, the running ones,
    then the rest evenly spaced by number. A curve longer than ``max_points`` keeps its
    first and last point and, of the points between, cut into equal buckets of
    consecutive steps, the lowest and highest value of each bucket, so spikes and early
    drops stay visible.
    """

    total: int = Field(description="Trials with at least one report.")
    sampled: bool = Field(description="True when trials or points were left out.")
    curves: list[CurvePoints]


class ParamImportance(BaseModel):
    """One parameter's share of the explained variation of the objective (0..1)."""

    param: str
    importance: float


class StudyImportance(BaseModel):
    """Parameter importance from completed trials: ``importances`` sorted by importance,
    descending, summing to 1 when non-empty; empty with a ``reason`` when it cannot be
    estimated (too few completed trials, a constant objective)."""

    method: str = Field(description="How the importances were estimated.")
    n_trials: int = Field(description="Completed trials the estimate used.")
    importances: list[ParamImportance]
    reason: str | None = None
