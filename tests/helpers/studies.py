"""Study and trial records built in memory, for the code that only formats them."""

from __future__ import annotations

from hpo.schemas import StudyPublic, TrialPublic

__all__ = ["multi_fidelity_study"]


def multi_fidelity_study() -> tuple[StudyPublic, list[TrialPublic]]:
    """A Hyperband study where trial 1 (3 epochs, 0.9667) was continued as trial 3
    (9 epochs, the full budget, 0.9472): the best is trial 3."""
    trial_3 = {"number": 3, "value": 0.9472, "info": {"rung": 2, "budget": 9, "parent": 1}}
    study = StudyPublic.model_validate(
        {
            "id": 1,
            "name": "mf",
            "status": "running",
            "strategy": "hyperband",
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "max_trials": 10,
            "max_parallel": 1,
            "counts": {"completed": 3},
            "n_trials": 3,
            "spec": {"space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}}},
            "created_at": "2026-01-01T00:00:00Z",
            "full_budget": 9,
            "best_budget": 9,
            "best_trial": {
                "id": 4,
                "study": "mf",
                "status": "completed",
                "params": {"lr": 0.01},
                "created_at": "2026-01-01T00:00:00Z",
                **trial_3,
            },
        }
    )
    trials = [
        TrialPublic.model_validate(
            {
                "id": row["number"] + 1,
                "study": "mf",
                "status": "completed",
                "params": {"lr": 0.01},
                "created_at": "2026-01-01T00:00:00Z",
                **row,
            }
        )
        for row in (
            {"number": 0, "value": 0.9, "info": {"rung": 0, "budget": 1}},
            {"number": 1, "value": 0.9667, "info": {"rung": 1, "budget": 3, "parent": 0}},
            trial_3,
        )
    ]
    return study, trials
