"""Settings shared by the server, the workers and the CLI.

Every setting comes from an ``HPO_*`` environment variable (or a ``.env`` file); with none
set, everything runs embedded on one machine: SQLite in the user's data directory and a
local executor. The contract: ``get_settings()`` is cheap and always reflects the current
environment, so tests and the CLI can change variables and build a fresh ``Settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_PORT", "Settings", "get_settings"]

DEFAULT_PORT = 8765


if TYPE_CHECKING:
    from hpo.artifacts import LocalStore


class Settings(BaseSettings):
    """All ``HPO_*`` settings. Unset values fall back to the embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="HPO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("hpo", appauthor=False)),
        description="Where the embedded SQLite database and artifacts live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/hpo.db.",
    )
    redis_url: str | None = Field(default=None, description="Redis for fleet mode.")
    server_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_PORT}",
        description="Where clients and workers reach the server.",
    )
    token: str | None = Field(default=None, description="API token clients present.")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    scheduler_interval: float = Field(
        default=0.5, gt=0, description="Seconds between scheduler passes (it also wakes on events)."
    )
    workers: int | None = Field(
        default=None,
        ge=0,
        description="Local executor processes; default one per CPU core; 0: none.",
    )
    http_timeout: float = Field(default=30.0, gt=0)
    artifact_dir: Path | None = Field(
        default=None,
        description="Where workers write checkpoints (shared storage in fleet mode); "
        "default <data_dir>/artifacts.",
    )
    heartbeat_interval: float = Field(
        default=10.0, gt=0, description="Seconds between a running trial's heartbeats."
    )
    artifact_url: str | None = Field(
        default=None,
        description="An object store for artifacts (fsspec URL, e.g. s3://bucket/prefix; "
        "needs the s3 extra); artifact_dir is then each machine's local cache. Unset: "
        "artifact_dir is the store.",
    )
    artifact_options: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON options for the object store's client, e.g. "
        '{"client_kwargs": {"endpoint_url": "http://minio:9000"}}.',
    )
    checkpoint_interval: float = Field(
        default=30.0,
        ge=0,
        description="Worker side: least seconds between two checkpoints of a built-in "
        "trial; its last epoch and a hand-back on shutdown always save one (0: every epoch).",
    )
    report_interval: float = Field(
        default=2.0,
        ge=0,
        description="Server side: how long a worker may hold reports to send them together "
        "(only in studies without early stopping; 0: every report at once).",
    )
    heartbeat_timeout: float = Field(
        default=60.0, gt=0, description="A running trial silent this long is reaped."
    )
    reconcile_interval: float = Field(
        default=10.0, gt=0, description="Seconds between reaper/reconciler passes."
    )
    server_patience: float = Field(
        default=600.0,
        gt=0,
        description="Worker side: how long to keep retrying an unreachable server.",
    )
    queue_name: str = Field(default="hpo-trials", description="RQ queue name.")
    dispatch: Literal["fair", "fifo"] = Field(
        default="fair",
        description="Server side: which study a free slot serves. fair = the one furthest "
        "below its weighted share (priority, projects, quotas); fifo = each study keeps "
        "max_parallel trials queued and workers take them in order (for comparison).",
    )
    api_token: str | None = Field(
        default=None,
        description="Server side: an admin token (enables auth; creates the other tokens).",
    )
    worker_token: str | None = Field(
        default=None, description="Server side: a token with worker rights (enables auth)."
    )
    auth: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Require tokens: auto = when binding beyond loopback or a token is set.",
    )
    log_max_bytes: int = Field(
        default=1 << 20,
        ge=4096,
        le=1 << 30,
        description="Server side: most bytes of output kept per trial attempt (its head and "
        "its tail, half each; what lies between is cut and marked).",
    )
    log_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Worker side: seconds between two shipments of a trial's output (a "
        "killed worker loses at most about this much of it).",
    )
    log_tee: bool = Field(
        default=True,
        description="Worker side: also pass what a trial prints on to the worker's own "
        "stdout (off: it goes to the trial's log only).",
    )
    webhook_retry_base: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Server side: seconds before a failed webhook delivery is tried again; "
        "doubled at each try, at most an hour.",
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Server side: tries of a webhook delivery."
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Server side: seconds a receiver may take."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (else 413)."
    )

    @field_validator("server_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resolved_artifact_dir(self) -> Path:
        """Checkpoint folder, defaulting to ``<data_dir>/artifacts``."""
        return self.artifact_dir or self.data_dir / "artifacts"

    def artifact_store(self) -> LocalStore:
        """The artifact store these settings name (``hpo.artifacts.open_store``)."""
        from hpo.artifacts import open_store

        return open_store(self.resolved_artifact_dir, self.artifact_url, self.artifact_options)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'hpo.db'}"


_ENV_KEYS = ("HOME", "XDG_DATA_HOME")  # besides HPO_*: what the default data_dir reads
_memo: tuple[tuple, Settings] | None = None


def _inputs() -> tuple:
    """Everything a ``Settings()`` reads: the ``HPO_*`` variables, the variables behind
    the default data folder, and the ``.env`` file of the working directory."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("HPO_")))
    try:
        stat = os.stat(".env")
        dotenv: tuple | None = (os.path.abspath(".env"), stat.st_mtime_ns, stat.st_size)
    except OSError:
        dotenv = None
    return env, tuple(os.environ.get(k) for k in _ENV_KEYS), dotenv


def get_settings() -> Settings:
    """Settings of the current environment. Built again whenever an input changed (an
    ``HPO_*`` variable, HOME/XDG_DATA_HOME, the ``.env`` file), else the last one is
    returned (workers ask once per trial; parsing costs about a millisecond). Treat the
    result as read-only."""
    global _memo
    key = _inputs()
    if _memo is None or _memo[0] != key:
        _memo = (key, Settings())
    return _memo[1]
