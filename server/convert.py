"""Rows to public schemas (the only place that knows both shapes)."""

from __future__ import annotations

from typing import TypeVar, overload

from hpo.schemas import ReportPublic, TrialDetail, TrialPublic
from server.handback import HANDBACKS
from server.tables import Report, Trial

P = TypeVar("P", bound=TrialPublic)

__all__ = ["report_public", "trial_detail", "trial_public"]


@overload
def trial_public(trial: Trial, study_name: str) -> TrialPublic: ...
@overload
def trial_public(trial: Trial, study_name: str, shape: type[P]) -> P: ...
def trial_public(
    trial: Trial, study_name: str, shape: type[TrialPublic] = TrialPublic
) -> TrialPublic:
    """The trial as clients see it, as ``shape`` (``TrialPublic`` or a subclass)."""
    return shape(
        id=trial.id,
        study=study_name,
        number=trial.number,
        status=trial.status,
        params=trial.params,
        value=trial.value,
        attempt=trial.attempt,
        failures=trial.failures or 0,
        handbacks=int((trial.info or {}).get(HANDBACKS, 0)),
        error=trial.error,
        info=trial.info or {},
        worker=trial.worker,
        last_step=trial.last_step,
        created_at=trial.created_at,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
    )


def report_public(report: Report) -> ReportPublic:
    return ReportPublic(
        attempt=report.attempt,
        step=report.step,
        value=report.value,
        metrics=report.metrics or {},
        created_at=report.created_at,
    )


def trial_detail(trial: Trial, study_name: str, reports: list[Report]) -> TrialDetail:
    base: TrialPublic = trial_public(trial, study_name)
    return TrialDetail(**base.model_dump(), reports=[report_public(r) for r in reports])
