"""What the chaos soak checks its invariants against: the database, read directly and
read-only, and the evidence files the training function wrote
(``benchmarks.chaos_trainable``).

The database is the service's own account of what happened (trials and their reports:
``server/tables.py``); the evidence is the training function's, written before each
report and fsynced, so it survives the very kills the soak injects. Comparing the two is
how the soak tells, e.g., a trial the service failed although its training had finished.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from server.tables import Report, Study, Trial

__all__ = ["Attempt", "StoredTrial", "TrialKey", "load_evidence", "load_trials"]

#: (study name, trial number)
TrialKey = tuple[str, int]


@dataclass
class Attempt:
    """One attempt of a trial as its training function recorded it."""

    attempt: int
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def pids(self) -> set[int]:
        return {int(e["pid"]) for e in self.events}

    def trained(self, step: int) -> dict[str, Any] | None:
        """This attempt's ``step`` event of ``step`` (it trained and checkpointed that
        step), if any."""
        return next((e for e in self.of("step") if e["step"] == step), None)

    def returned_at(self, step: int) -> bool:
        """Whether the function returned with its state at ``step``."""
        return any(e["step"] == step for e in self.of("return"))


@dataclass
class StoredTrial:
    """A trial as the database holds it, with its reports ((attempt, step, value) in
    (attempt, step) order) and its budget of steps (``epochs``)."""

    study: str
    number: int
    status: str
    value: float | None
    attempt: int
    failures: int
    params: dict[str, Any]
    epochs: int
    parent: int | None
    error: str | None
    reports: list[tuple[int, int, float | None]]

    @property
    def key(self) -> TrialKey:
        return (self.study, self.number)

    def label(self) -> str:
        return f"{self.study} #{self.number}"


def load_evidence(folder: Path) -> dict[TrialKey, dict[int, Attempt]]:
    """Every evidence file in ``folder``: trial -> attempt number -> its events in the
    order they were written. A line that does not parse (none should: each is written
    whole) is skipped."""
    trials: dict[TrialKey, dict[int, Attempt]] = defaultdict(dict)
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            attempts = trials[(event["study"], int(event["trial"]))]
            number = int(event["attempt"])
            attempts.setdefault(number, Attempt(number)).events.append(event)
    for attempts in trials.values():
        for attempt in attempts.values():
            attempt.events.sort(key=lambda e: e["t"])
    return dict(trials)


def _read_only(url: str) -> dict[str, Any]:
    """Connection arguments that make every transaction read-only where the database
    supports it (PostgreSQL); the checker never writes what it checks."""
    if make_url(url).get_backend_name() == "postgresql":
        return {"options": "-c default_transaction_read_only=on"}
    return {}


def load_trials(url: str, studies: Iterable[str]) -> tuple[dict[str, str], list[StoredTrial]]:
    """The status of each of ``studies`` found, and all their trials with reports."""
    names = list(studies)
    engine = create_engine(url, connect_args=_read_only(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Study.id, Study.name, Study.status, Study.spec).where(Study.name.in_(names))
            ).all()
            by_id = {r.id: r for r in rows}
            trials = conn.execute(
                select(Trial).where(Trial.study_id.in_(by_id)).order_by(Trial.id)
            ).all()
            reports: dict[int, list[tuple[int, int, float | None]]] = defaultdict(list)
            for trial_id, attempt, step, value in conn.execute(
                select(Report.trial_id, Report.attempt, Report.step, Report.value)
                .join(Trial, Trial.id == Report.trial_id)
                .where(Trial.study_id.in_(by_id))
                .order_by(Report.trial_id, Report.attempt, Report.step)
            ):
                reports[trial_id].append((attempt, step, value))
    finally:
        engine.dispose()
    stored = []
    for t in trials:
        study = by_id[t.study_id]
        info = t.info or {}
        parent = info.get("parent")
        stored.append(
            StoredTrial(
                study=study.name,
                number=t.number,
                status=t.status,
                value=t.value,
                attempt=t.attempt,
                failures=t.failures,
                params=dict(t.params),
                epochs=int(info.get("budget") or study.spec["budget"]["epochs"]),
                parent=parent if isinstance(parent, int) else None,
                error=t.error,
                reports=reports.get(t.id, []),
            )
        )
    return {r.name: r.status for r in rows}, stored
