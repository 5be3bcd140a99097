"""Wire schemas of the REST API, shared by the server (response models) and the SDK.

Create/Public pairs follow the usual FastAPI layout: what a client sends is validated
strictly (``extra="forbid"``), what the server returns is a Public model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hpo.artifacts import relative_key
from hpo.spec import Objective, TrainSpec, check_json_text
from hpo.vocabulary import DEFAULT_POOL, POOL_PATTERN, TokenScope, TrialSortKey
from search.status import Decision, StudyStatus, TrialStatus

__all__ = [
    "ACCOUNT_NAME",
    "Decision",
    "FinishIn",
    "FinishOut",
    "HeartbeatIn",
    "ReleaseIn",
    "ReportBatchIn",
    "ReportIn",
    "ReportOut",
    "ReportPublic",
    "SpecText",
    "StartIn",
    "StudyPublic",
    "StudyUpdate",
    "TokenCreated",
    "TokenIn",
    "TokenPublic",
    "TrialDetail",
    "TrialPublic",
    "TrialSortKey",
    "TrialSpec",
    "TrialStatus",
    "WorkerIn",
    "WorkerPublic",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrialPublic(BaseModel):
    """One trial as clients see it."""

    id: int
    study: str
    number: int
    status: TrialStatus
    params: dict[str, Any]
    value: float | None = None
    attempt: int = 0
    failures: int = Field(default=0, description="Attempts lost to dead workers.")
    handbacks: int = Field(
        default=0,
        description=(
            "Attempts handed back at a checkpoint for a study of higher priority "
            "(neither failures nor retries: the trial resumes from that checkpoint)."
        ),
    )
    error: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)
    worker: str | None = None
    last_step: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: dict[str, Any] | None = Field(
        default=None,
        description="The metrics of its last report (latest attempt, highest step); in "
        "lists only when asked for (metrics=true).",
    )


class ReportPublic(BaseModel):
    """One per-step report of a trial attempt."""

    attempt: int
    step: int
    value: float | None
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class TrialDetail(TrialPublic):
    """A trial with its full learning curve."""

    reports: list[ReportPublic] = Field(default_factory=list)


class StudyPublic(BaseModel):
    """One study with its progress and best trial."""

    id: int
    name: str
    status: StudyStatus
    strategy: str
    objective: Objective
    max_trials: int
    max_parallel: int
    counts: dict[str, int] = Field(description="Number of trials per status.")
    n_trials: int
    best_trial: TrialPublic | None = Field(
        default=None,
        description=(
            "The completed trial with the best value; in a multi-fidelity study, the best "
            "at the full budget (full_budget) once one has it, else the best so far at any "
            "budget (best_budget then says which)."
        ),
    )
    full_budget: int | None = Field(
        default=None,
        description="Epochs of a full-fidelity trial (Hyperband, ASHA); None otherwise.",
    )
    best_budget: int | None = Field(
        default=None, description="Epochs the best trial trained (multi-fidelity studies)."
    )
    runner: Literal["workers", "external"] = Field(
        default="workers", description="Who evaluates the trials: workers, or ask/tell callers."
    )
    reason: str | None = Field(
        default=None,
        description="Why the study ended failed, with its trials' most common failure reasons.",
    )
    project: str = Field(default="default", description="The project the study belongs to.")
    created_by: str | None = Field(default=None, description="Who created the study.")
    pool: str = Field(default=DEFAULT_POOL, description="The pool its trials run in.")
    priority: float = Field(default=1.0, description="Its weight in the pool's share.")
    waiting: str | None = Field(
        default=None,
        description="Why its trials wait with no one to run them (e.g. an empty pool); "
        "given by GET /studies/{name}.",
    )
    spec: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None = None


class SpecText(_In):
    """A study spec as YAML or JSON text (what a user pastes or uploads)."""

    text: str = Field(max_length=1_000_000)


class StudyUpdate(_In):
    """Change a running, paused or completed study's budget (``PATCH``). Raising
    ``max_trials`` of a completed study runs it again."""

    max_trials: StrictInt | None = Field(default=None, ge=1, le=10_000_000)
    max_parallel: StrictInt | None = Field(default=None, ge=1, le=10_000)


class TrialSpec(BaseModel):
    """What a worker needs to run one attempt of a trial (answer to ``start``)."""

    trial_id: int
    study: str
    number: int
    attempt: int
    params: dict[str, Any] = Field(description="Suggested parameters merged over fixed ones.")
    train: TrainSpec
    epochs: int
    objective: Objective
    seed: int
    heartbeat_interval: float = Field(description="Seconds between heartbeats.")
    timeout: float = Field(description="Seconds this attempt may run.")
    checkpoint: str | None = Field(
        default=None,
        description=(
            "Checkpoint to resume from (an earlier attempt's, or a promoted trial's "
            "parent's): a key of the artifact store, relative to its root."
        ),
    )
    checkpoint_step: int | None = Field(default=None, description="Step the checkpoint ends.")
    report_interval: float = Field(
        default=0.0,
        ge=0,
        description=(
            "0: send every report at once (the study decides on reports: early stopping). "
            "Otherwise reports may wait up to this many seconds and travel together (or "
            "with the finish); one carrying a checkpoint is sent at once."
        ),
    )


class StartIn(_In):
    """A worker asks to start a trial; ``worker`` identifies it (host:pid)."""

    worker: str | None = Field(default=None, max_length=256)

    @field_validator("worker")
    @classmethod
    def _storable(cls, worker: str | None) -> str | None:
        check_json_text(worker, "worker")
        return worker


class ReportIn(_In):
    """A per-step report. Idempotent on (trial, attempt, step)."""

    attempt: StrictInt = Field(ge=1, le=1_000_000)
    step: StrictInt = Field(ge=0, le=10_000_000)
    value: float | None = None
    metrics: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict, max_length=1000
    )
    checkpoint: str | None = Field(
        default=None,
        max_length=4096,
        description=(
            "A checkpoint saved at this step: its path relative to the trial's own "
            "artifact folder (e.g. 'checkpoint.pt'). Absolute paths and '..' are refused: "
            "a checkpoint lives only in the trial's folder."
        ),
    )

    @field_validator("metrics", "checkpoint")
    @classmethod
    def _storable(cls, value: Any, info: Any) -> Any:
        check_json_text(value, info.field_name)
        return value

    @field_validator("checkpoint")
    @classmethod
    def _inside_the_trial(cls, value: str | None) -> str | None:
        return None if value is None else relative_key(value)


class ReportBatchIn(_In):
    """Several reports of one attempt in one request (a worker holding reports back
    sends them together), stored in order as if sent one by one."""

    reports: list[ReportIn] = Field(min_length=1, max_length=1000)


class HeartbeatIn(_In):
    """A running attempt is alive (sent every ``heartbeat_interval`` seconds)."""

    attempt: StrictInt = Field(ge=1, le=1_000_000)


class ReleaseIn(_In):
    """A worker hands a trial back unfinished (e.g. on SIGTERM): it is queued again
    without counting as a failure, and resumes from its last checkpoint."""

    attempt: StrictInt = Field(ge=1, le=1_000_000)
    reason: str = Field(default="released by the worker", max_length=1000)

    @field_validator("reason")
    @classmethod
    def _storable(cls, reason: str) -> str:
        check_json_text(reason, "reason")
        return reason


class WorkerIn(_In):
    """A worker process announces itself (and repeats it as its own heartbeat)."""

    name: str = Field(min_length=1, max_length=256)
    host: str = Field(min_length=1, max_length=256)
    pid: StrictInt = Field(ge=0, le=2**31 - 1)
    devices: list[str] = Field(default_factory=list, max_length=64)
    pool: str = Field(default=DEFAULT_POOL, pattern=POOL_PATTERN)
    status: Literal["idle", "busy", "stopped"] = "idle"

    @field_validator("name", "host", "devices")
    @classmethod
    def _storable(cls, value: Any, info: Any) -> Any:
        check_json_text(value, info.field_name)
        return value


class WorkerPublic(BaseModel):
    """A registered worker, its current trials and how fresh its heartbeat is."""

    name: str
    host: str
    pid: int
    devices: list[str]
    pool: str = DEFAULT_POOL
    status: str
    current_trials: list[int] = Field(description="Ids of trials it runs now.")
    started_at: datetime
    heartbeat_at: datetime
    stale: bool = Field(description="No heartbeat within the server's heartbeat timeout.")


class ReportOut(BaseModel):
    """The server's decision after a report."""

    decision: Decision
    reason: str | None = None
    hand_back: bool = Field(
        default=False,
        description=(
            "The server asks this attempt to hand its trial back at its next checkpoint "
            "(a study of higher priority needs the slot): release it, unfinished."
        ),
    )


class FinishIn(_In):
    """A worker ends an attempt. ``completed`` takes ``value``, or without one the
    trial's last reported objective value (of any attempt: a retry that resumed at the
    last step has nothing left to report); with neither, or a value that is not finite,
    the trial is stored as ``failed`` with the reason."""

    attempt: StrictInt = Field(ge=1, le=1_000_000)
    status: Literal["completed", "failed", "pruned"]
    value: float | None = None
    error: str | None = Field(default=None, max_length=20_000)
    reports: list[ReportIn] = Field(
        default_factory=list,
        max_length=10_000,
        description="Reports of this attempt not sent yet, stored before the finish.",
    )
    lease_next: bool = Field(
        default=False,
        description=(
            "Ask for the study's next trial in the answer (``next_trial``), leased to this "
            "worker, when the freed slot is refilled at once and no other trial waits. "
            "A repeat of the same finish (its answer was lost) gets the same trial again "
            "while the worker has not touched it."
        ),
    )

    @field_validator("error")
    @classmethod
    def _storable(cls, error: str | None) -> str | None:
        check_json_text(error, "error")
        return error


class FinishOut(TrialPublic):
    """The answer to a finish: the trial as stored, and, when the finish asked for one
    (``lease_next``), the next trial already started for this worker (attempt 1)."""

    next_trial: TrialSpec | None = None


#: Names of tokens and users.
ACCOUNT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"


class TokenIn(_In):
    """A new API token: a unique name, its scope, and the user it belongs to (user and
    admin tokens; default: a user named like the token, created when new)."""

    name: str = Field(min_length=1, max_length=128, pattern=ACCOUNT_NAME)
    scope: TokenScope = "user"
    user: str | None = Field(default=None, min_length=1, max_length=128, pattern=ACCOUNT_NAME)


class TokenPublic(BaseModel):
    """A stored token, without the secret."""

    name: str
    scope: str
    user: str | None = Field(default=None, description="Whose token it is (none: a worker's).")
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenPublic):
    """The answer to creating a token: the only time the token itself is shown."""

    token: str = Field(description="Present as 'Authorization: Bearer <token>'.")
