"""Settings for a test's own embedded server (SQLite in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

from hpo.settings import Settings

__all__ = ["embedded_settings"]


def embedded_settings(root: Path, **extra: object) -> Settings:
    """A SQLite database under ``root`` and a fast scheduler; ``extra`` overrides."""
    return Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'hpo.db'}",
        scheduler_interval=0.05,
        **extra,  # type: ignore[arg-type]
    )
