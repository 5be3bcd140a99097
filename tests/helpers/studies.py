"""Study and trial records built in memory, for the code that only formats them."""

from __future__ import annotations

from typing import Any

from hpo.schemas import StudyPublic, TrialPublic

__all__ = ["multi_fidelity_study", "study_public", "trial_public"]

CREATED = "2026-01-01T00:00:00Z"


def study_public(**fields: Any) -> StudyPublic:
    """A running random-search study of nothing yet; ``fields`` replace the defaults."""
    return StudyPublic.model_validate(
        {
            "id": 1,
            "name": "study",
            "status": "running",
            "strategy": "random",
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "max_trials": 10,
            "max_parallel": 1,
            "counts": {},
            "n_trials": 0,
            "spec": {},
            "created_at": CREATED,
            **fields,
        }
    )


def trial_public(number: int, **fields: Any) -> TrialPublic:
    """Completed trial ``number`` of study "mf"; ``fields`` replace the defaults."""
    return TrialPublic.model_validate(
        {
            "id": number + 1,
            "study": "mf",
            "number": number,
            "status": "completed",
            "params": {"lr": 0.01},
            "created_at": CREATED,
            **fields,
        }
    )


def multi_fidelity_study() -> tuple[StudyPublic, list[TrialPublic]]:
    """A Hyperband study where trial 1 (3 epochs, 0.9667) was continued as trial 3
    (9 epochs, the full budget, 0.9472): the best is trial 3."""
    trials = [
        trial_public(0, value=0.9, info={"rung": 0, "budget": 1}),
        trial_public(1, value=0.9667, info={"rung": 1, "budget": 3, "parent": 0}),
        trial_public(3, value=0.9472, info={"rung": 2, "budget": 9, "parent": 1}),
    ]
    study = study_public(
        name="mf",
        strategy="hyperband",
        counts={"completed": 3},
        n_trials=3,
        spec={"space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}}},
        full_budget=9,
        best_budget=9,
        best_trial=trials[2].model_dump(),
    )
    return study, trials
