"""The service's status vocabulary, defined once (DESIGN.md, "Vocabulary").

Every room imports these names from here: ``search`` is the one room all others may
import, and this module imports nothing but ``typing``, so the light client pays
nothing for it. A new status is added here and nowhere else.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ENDED_STUDY",
    "FINISHED",
    "LIVE_STUDY",
    "OPEN",
    "STUDY_STATUSES",
    "TERMINAL",
    "TRIAL_STATUSES",
    "Decision",
    "Direction",
    "Runner",
    "StudyStatus",
    "TrialStatus",
    "WorkerStatus",
]

TrialStatus = Literal["queued", "running", "completed", "pruned", "failed", "stopped"]
StudyStatus = Literal["running", "paused", "completed", "failed", "stopped"]
#: A stopping rule's answer to a report.
Decision = Literal["continue", "stop"]
Direction = Literal["minimize", "maximize"]
#: Who runs a study's trials: the service's workers, or an ask/tell caller.
Runner = Literal["workers", "external"]
WorkerStatus = Literal["idle", "busy", "stopped"]

TRIAL_STATUSES: tuple[TrialStatus, ...] = get_args(TrialStatus)
STUDY_STATUSES: tuple[StudyStatus, ...] = get_args(StudyStatus)

#: Trials that may still change: waiting for a worker, or on one.
OPEN: frozenset[str] = frozenset({"queued", "running"})
#: Trials that never change again (their reports, status and value are final).
TERMINAL: frozenset[str] = frozenset({"completed", "pruned", "failed", "stopped"})
#: Terminal trials that ran their course, to the end or until a stopping rule stopped
#: them: their learning curves are the peers a stopping rule compares against.
FINISHED: frozenset[str] = frozenset({"completed", "pruned"})

#: Studies whose trials may still run (a paused study's running trials finish).
LIVE_STUDY: frozenset[str] = frozenset({"running", "paused"})
#: Studies that will never run a trial again.
ENDED_STUDY: frozenset[str] = frozenset({"completed", "failed", "stopped"})
