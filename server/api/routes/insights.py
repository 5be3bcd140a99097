"""Insight routes: compact, downsampled plot data for the dashboard (and any client).

Every answer is bounded by its query parameters, whatever the study's size, so the
study page of a 10,000-trial study loads in well under a second.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hpo.insights import StudyCurves, StudyHistory, StudyImportance
from server import access, importance, insights
from server.api.deps import SessionDep
from server.auth import IdentityDep, require

router = APIRouter(prefix="/studies", tags=["insights"], dependencies=[Depends(require("user"))])
Metric = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="Which reported metric (default: the objective); see history's metrics.",
    ),
]


@router.get("/{name}/history", response_model=StudyHistory)
def get_history(
    name: str,
    session: SessionDep,
    identity: IdentityDep,
    max_points: Annotated[
        int, Query(ge=10, le=20_000, description="Most trials returned (sampled beyond).")
    ] = 2000,
    metric: Metric = None,
) -> StudyHistory:
    """Optimization history, columnar: each trial's status, value, best value so far,
    duration and parameters, in number order. Beyond ``max_points`` trials a sample is
    returned that keeps every improvement of the best value and the best trial(s)."""
    study = access.get_study(session, identity, name)
    return insights.history(session, study, max_points, metric)


@router.get("/{name}/curves", response_model=StudyCurves)
def get_curves(
    name: str,
    session: SessionDep,
    identity: IdentityDep,
    max_trials: Annotated[
        int, Query(ge=1, le=1000, description="Most trials (curves) returned.")
    ] = 100,
    max_points: Annotated[
        int, Query(ge=2, le=1000, description="Most points per curve (first and last kept).")
    ] = 60,
    metric: Metric = None,
) -> StudyCurves:
    """Learning curves (per-step reports, the latest attempt's per step) of the best,
    the running and an even spread of the other trials with reports."""
    study = access.get_study(session, identity, name)
    return insights.learning_curves(session, study, max_trials, max_points, metric)


@router.get("/{name}/importance", response_model=StudyImportance)
def get_importance(name: str, session: SessionDep, identity: IdentityDep) -> StudyImportance:
    """Parameter importance estimated from completed trials (random-forest impurity
    decrease); an empty list with a ``reason`` when it cannot be estimated yet."""
    study = access.get_study(session, identity, name)
    return importance.param_importance(session, study)
