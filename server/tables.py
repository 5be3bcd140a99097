"""Database tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` create them.

Named ``tables`` because ``models/`` is the torch room. Invariants the schema enforces:
trial numbers are unique per study; one report row per (trial, attempt, step).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hpo.vocabulary import Role
from search.status import Direction, Runner, StudyStatus, TrialStatus, WorkerStatus

__all__ = [
    "LOG_CHUNKS",
    "REPORTS",
    "STUDIES",
    "TRIALS",
    "Base",
    "Delivery",
    "Event",
    "LogChunk",
    "Membership",
    "Project",
    "Report",
    "Study",
    "Token",
    "Trial",
    "User",
    "Webhook",
    "Worker",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database. PostgreSQL keeps the zone;
    SQLite stores none and hands back naive values, which would reach clients as
    timestamps without an offset (not RFC 3339): they are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _column(attribute: Any) -> Any:
    """The Core column behind a mapped attribute while its class body is being built
    (what an index over an expression of it needs; the type checker sees ``Mapped``)."""
    return attribute.column


class Base(DeclarativeBase):
    pass


class User(Base):
    """A person using the service: user tokens belong to one, and a user belongs to
    projects with a role (``Membership``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Project(Base):
    """Studies belong to a project; its members see and change them by role.
    ``entrypoints``: the module prefixes its studies' ``train.entrypoint`` may name
    (``"*"``: any); the built-in models are always allowed."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    entrypoints: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The most slots (GPUs; one per trial without ``resources.gpus``) its studies'
    #: trials hold at once, fleet-wide; None: no cap (``server.share``).
    gpu_quota: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    """A user's role in a project (one row per user and project)."""

    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_memberships_user", "user_id"),)


class Event(Base):
    """One line of the audit trail: who (``actor``) did what (``action``, e.g.
    ``study.stop``) to which project or study, and when. Kept when the study is
    deleted (the study is named, not referenced)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    study: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_events_project_at", "project_id", "at"),)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", name="fk_studies_project_id"))
    #: Who created it: a user's name, or ``admin`` / ``local`` for the environment's
    #: token and a server with auth off.
    created_by: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[StudyStatus] = mapped_column(String(16), default="running")
    strategy: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(String(8))
    metric: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int] = mapped_column(Integer)
    max_trials: Mapped[int] = mapped_column(Integer)
    max_parallel: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    trial_timeout: Mapped[float] = mapped_column(Float, default=86400.0, server_default="86400")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Who evaluates its trials: "workers" (the scheduler queues them) or "external"
    #: (only ask/tell callers lease them, through suggest).
    runner: Mapped[Runner] = mapped_column(String(16), default="workers", server_default="workers")
    #: The pool of workers its trials run in, the GPUs one trial holds (None: one slot)
    #: and its weight in that pool's share (``hpo.resources``).
    pool: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    gpus: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    #: Why a study ended failed (fail-fast, or every trial failed), with the most
    #: common reasons of its failed trials.
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    trials: Mapped[list[Trial]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )
    project: Mapped[Project] = relationship()

    __table_args__ = (
        Index("ix_studies_status", "status"),
        Index("ix_studies_project", "project_id"),
        Index("ix_studies_pool_status", "pool", "status"),
    )


class Trial(Base):
    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[TrialStatus] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    value: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    #: Attempts lost to a dead worker (reaped); bounded by the study's max_retries.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    checkpoint: Mapped[str | None] = mapped_column(Text)
    checkpoint_step: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(256))
    last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the trial last became queued (created or handed back): the reconciler only
    #: re-enqueues trials queued for longer than its grace period.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    study: Mapped[Study] = relationship(back_populates="trials")

    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        Index("ix_trials_study_status", "study_id", "status"),
        # The study's trials in the order they ended (fail-fast reads the last few).
        Index("ix_trials_study_finished", "study_id", "finished_at"),
        Index("ix_trials_status", "status"),
        # Pages of a study's trials by value, either way with nulls last, and its best
        # trial: index-only scans (status included for the status filter).
        Index(
            "ix_trials_study_value",
            "study_id",
            _column(value).is_(None),
            "value",
            "number",
            postgresql_include=["status"],
        ),
        Index(
            "ix_trials_study_value_desc",
            "study_id",
            _column(value).is_(None),
            _column(value).desc(),
            "number",
            postgresql_include=["status"],
        ),
    )


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("trial_id", "attempt", "step", name="uq_reports_trial_attempt_step"),
    )


class LogChunk(Base):
    """A piece of what one attempt of a trial printed (stdout and stderr, as the worker
    captured them). ``position`` counts bytes of the attempt's whole output, so a gap
    between two chunks is output cut to keep the log bounded (its head and tail stay)."""

    __tablename__ = "log_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(BigInteger)
    nbytes: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "trial_id", "attempt", "position", name="uq_log_chunks_trial_attempt_position"
        ),
    )


class Webhook(Base):
    """Where to tell a project's (or one study's) news: ``events`` such as
    ``study.completed`` are POSTed to ``url``, signed with ``secret`` (HMAC-SHA256)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: Only this study's events (None: every study of the project).
    study: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_webhooks_project", "project_id"),)


class Delivery(Base):
    """One event for one webhook: written in the transaction of the change it tells of
    (an outbox), then sent, retried with backoff, and kept as the delivery log."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    #: The exact bytes sent (and signed), as UTF-8 JSON text.
    body: Mapped[str] = mapped_column(Text)
    #: pending (to send at ``next_at``), delivered, or failed (no tries left).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_at"),
        Index("ix_deliveries_webhook", "webhook_id", "id"),
    )


class Worker(Base):
    """A worker process that registered with the server (one per GPU slot)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    pool: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    status: Mapped[WorkerStatus] = mapped_column(String(16), default="idle")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_workers_heartbeat_at", "heartbeat_at"),)


class Token(Base):
    """An API token: only its SHA-256 digest is stored (the plain text is shown once,
    when it is created). ``scope`` is admin, user or worker."""

    __tablename__ = "tokens"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: The user a user or admin token belongs to (None for worker tokens).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_tokens_user_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


#: The tables as Core ``Table`` objects, for the hot paths that skip the ORM's unit of
#: work (one statement per finish, per claim).
STUDIES = cast(Table, Study.__table__)
TRIALS = cast(Table, Trial.__table__)
REPORTS = cast(Table, Report.__table__)
LOG_CHUNKS = cast(Table, LogChunk.__table__)
