"""Wire schemas of a team's service: projects, their members, the audit trail.

A study belongs to a project; a user belongs to projects with a role (viewer, member,
owner; ``hpo.vocabulary.Role``). Shared by the server (response models) and the SDK.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hpo.schemas import ACCOUNT_NAME
from hpo.spec import NAME_PATTERN
from hpo.vocabulary import Role, WebhookEvent

__all__ = [
    "DeliveryPublic",
    "EventPublic",
    "MemberIn",
    "MemberPublic",
    "ProjectIn",
    "ProjectPublic",
    "ProjectUpdate",
    "WebhookCreated",
    "WebhookIn",
    "WebhookPublic",
]

#: A module prefix an allowlist may hold (``team``, ``team.models``), or ``*`` (any).
_PREFIX = re.compile(r"\*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _prefixes(values: list[str] | None) -> list[str] | None:
    for index, value in enumerate(values) if values is not None else ():
        if not _PREFIX.fullmatch(value):
            raise ValueError(
                f"entrypoints.{index}: {value!r} is not a module prefix (package.module) or '*'"
            )
    return values


GPU_QUOTA = (
    "The most GPUs the project's trials hold at once, fleet-wide (a trial without "
    "resources.gpus counts one slot); unset: no cap."
)


class ProjectIn(_In):
    """A new project (admin): a unique name, what it is for, and the module prefixes its
    studies' entrypoints may come from (``*``: any; none: built-in models only)."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    entrypoints: list[str] = Field(default_factory=list, max_length=1000)
    gpu_quota: float | None = Field(default=None, gt=0, le=1_000_000, description=GPU_QUOTA)

    _check = field_validator("entrypoints")(_prefixes)


class ProjectUpdate(_In):
    """Change a project's settings (owner or admin; its quota: admin); what is left
    out stays. ``gpu_quota: null`` lifts the quota."""

    description: str | None = Field(default=None, max_length=10_000)
    entrypoints: list[str] | None = Field(default=None, max_length=1000)
    gpu_quota: float | None = Field(default=None, gt=0, le=1_000_000, description=GPU_QUOTA)

    _check = field_validator("entrypoints")(_prefixes)


class ProjectPublic(BaseModel):
    """A project as its readers see it."""

    name: str
    description: str
    entrypoints: list[str]
    gpu_quota: float | None = None
    role: Role | None = Field(
        default=None, description="Your role in it (none: you see it as an admin)."
    )
    n_studies: int = 0
    created_at: datetime


class MemberIn(_In):
    """Add a user to a project, or change their role (owner or admin)."""

    user: str = Field(min_length=1, max_length=128, pattern=ACCOUNT_NAME)
    role: Role = "member"


class MemberPublic(BaseModel):
    user: str
    role: Role
    created_at: datetime


class EventPublic(BaseModel):
    """One line of the audit trail."""

    id: int
    at: datetime
    actor: str = Field(description="Who did it: a user's name, or admin / local / worker.")
    action: str = Field(description="What was done, e.g. study.create, member.add.")
    project: str | None = None
    study: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class WebhookIn(_In):
    """Tell ``url`` (http or https) of ``events`` of the project's studies, or of one
    ``study``'s (owner or admin)."""

    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")
    events: list[WebhookEvent] = Field(min_length=1, max_length=8)
    study: str | None = Field(default=None, pattern=NAME_PATTERN)


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    study: str | None = None
    created_by: str | None = None
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The answer to creating a hook: the only time its secret is shown. Check each
    delivery's ``X-HPO-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the body."""

    secret: str


class DeliveryPublic(BaseModel):
    """One event sent (or being sent) to a hook."""

    id: int
    event: str
    status: str = Field(description="pending, delivered, or failed (no tries left).")
    attempts: int
    response_code: int | None = None
    error: str | None = None
    next_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None
