"""How a study ends when its trials fail: fail-fast, and a failed outcome with reasons.

A study whose trials keep failing (a broken entrypoint, a data set that is not there)
must not run its whole budget into the ground and then read "completed". Two rules:

* **fail-fast**: when the last ``budget.max_consecutive_failures`` trials to end (in the
  order they ended) all failed, the study ends ``failed`` at once: its queued trials are
  stopped, running ones hear ``stop`` at their next report;
* **every trial failed**: a study whose budget is spent with no trial completed or
  pruned ends ``failed``, not ``completed``.

Either way the study's ``reason`` says why, with its trials' most common failure
reasons (grouped with the numbers in them set aside, so "no heartbeat for 6.1s" and
"for 7.3s" count as one).
"""

from __future__ import annotations

import re
from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from search.status import LIVE_STUDY
from server.db import changed_rows
from server.tables import Study, Trial, utcnow
from server.webhooks import emit

__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_FAILURES",
    "common_reasons",
    "end_failed",
    "failing_fast",
    "failure_streak",
    "max_consecutive_failures",
    "reason_groups",
]

#: The spec's default (``Budget.max_consecutive_failures``), for studies stored before it.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 10
#: Failed trials read to find the most common reasons (the most recent ones).
REASONS_SAMPLE = 1000
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def max_consecutive_failures(study: Study) -> int:
    """The study's fail-fast threshold (0: never)."""
    budget = study.spec.get("budget") or {}
    return int(budget.get("max_consecutive_failures", DEFAULT_MAX_CONSECUTIVE_FAILURES))


def failing_fast(session: Session, study: Study) -> str | None:
    """The reason to end ``study`` failed now, when its last
    ``max_consecutive_failures`` ended trials all failed; else None. One index range
    read (``ix_trials_study_finished``), newest first."""
    limit = max_consecutive_failures(study)
    if limit <= 0:
        return None
    if failure_streak(session, study, limit) < limit:
        return None
    return (
        f"fail-fast: the last {limit} trials failed in a row "
        f"(budget.max_consecutive_failures); {common_reasons(session, study)}"
    )


def common_reasons(session: Session, study: Study, shown: int = 3) -> str:
    """The most common failure reasons of the study's trials, most frequent first:
    ``most common reasons: 8 x <reason>; 2 x <reason>``."""
    groups = reason_groups(session, study, shown)
    if not groups:
        return "no failed trial gave a reason"
    return "most common reasons: " + "; ".join(f"{n} x {text}" for n, text in groups)


def failure_streak(session: Session, study: Study, limit: int) -> int:
    """How many of the study's latest ended trials (at most ``limit``) failed in a
    row, newest first."""
    last = session.scalars(
        select(Trial.status)
        .where(Trial.study_id == study.id, Trial.finished_at.is_not(None))
        .order_by(Trial.finished_at.desc())
        .limit(limit)
    ).all()
    streak = 0
    for status in last:
        if status != "failed":
            break
        streak += 1
    return streak


def reason_groups(session: Session, study: Study, shown: int = 3) -> list[tuple[int, str]]:
    """The most common failure reasons of the study's (latest) failed trials as
    (count, the most recent text of the group), most frequent first; reasons that
    differ only in their numbers are one group."""
    errors = session.scalars(
        select(Trial.error)
        .where(Trial.study_id == study.id, Trial.status == "failed")
        .order_by(Trial.finished_at.desc())
        .limit(REASONS_SAMPLE)
    ).all()
    groups: Counter[str] = Counter()
    example: dict[str, str] = {}
    for error in errors:
        text = (error or "no reason given").strip().splitlines()[0][:300]
        key = _NUMBER.sub("#", text)
        groups[key] += 1
        example.setdefault(key, text)  # the most recent of its group
    return [(n, example[key]) for key, n in groups.most_common(shown)]


def end_failed(session: Session, study: Study, reason: str) -> bool:
    """End a live study as ``failed`` with ``reason`` (compare-and-set: False when it
    ended otherwise meanwhile); its queued trials are stopped."""
    now = utcnow()
    ended = changed_rows(
        session,
        update(Study)
        .where(Study.id == study.id, Study.status.in_(LIVE_STUDY))
        .values(status="failed", reason=reason, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False),
    )
    if ended != 1:
        return False
    for key, value in (("status", "failed"), ("reason", reason), ("finished_at", now)):
        set_committed_value(study, key, value)
    session.execute(
        update(Trial)
        .where(Trial.study_id == study.id, Trial.status == "queued")
        .values(status="stopped", finished_at=now, error="study failed")
        .execution_options(synchronize_session=False)
    )
    emit(session, study, "study.failed")
    return True
