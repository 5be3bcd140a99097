"""A study's trials filtered by parameter ranges and a search text: what the trials table
asks for when someone narrows it ("lr between 1e-3 and 1e-2, optimizer adam, 'CUDA'").

Parameters live in a JSON column, and the filters differ per study, so this reads the
study's trial rows and filters them here instead of in SQL (a 10,000-trial study is a
few tens of milliseconds); the unfiltered listing keeps its indexed, keyset-paged path
(``server.studies.list_trials``).

A filter is ``name:low:high`` (a number range, either end may be empty: ``lr::0.01``)
or ``name=value`` (a choice, compared as text). The search text matches, without case,
a trial's number, parameters (``name=value``), error and worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.schemas import TrialPublic
from server.convert import trial_public
from server.errors import Invalid
from server.tables import Study, Trial

__all__ = ["ParamFilter", "filter_trials", "parse_filters"]

_RANGE = re.compile(r"^([A-Za-z0-9_.-]+):([^:]*):([^:]*)$")
_CHOICE = re.compile(r"^([A-Za-z0-9_.-]+)=(.*)$")


@dataclass(frozen=True)
class ParamFilter:
    """One parameter's condition: a range (``low``/``high``, None: open) or a choice."""

    name: str
    low: float | None = None
    high: float | None = None
    choice: str | None = None

    def admits(self, params: dict[str, Any]) -> bool:
        value = params.get(self.name)
        if self.choice is not None:
            return value is not None and str(value) == self.choice
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def _bound(text: str, index: int) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Invalid(f"param.{index}: {text!r} is not a finite number", field=f"param.{index}")
    return value


def parse_filters(texts: Sequence[str]) -> list[ParamFilter]:
    """``["lr:0.001:0.01", "optimizer=adam"]`` as filters; Invalid naming
    ``param.<i>`` for one that is neither form."""
    out = []
    for i, text in enumerate(texts):
        ranged = _RANGE.match(text)
        if ranged:
            name, low, high = ranged.groups()
            out.append(ParamFilter(name, _bound(low, i), _bound(high, i)))
            continue
        chosen = _CHOICE.match(text)
        if chosen:
            out.append(ParamFilter(chosen.group(1), choice=chosen.group(2)))
            continue
        raise Invalid(
            f"param.{i}: {text!r} is neither name:low:high (a range) nor name=value",
            field=f"param.{i}",
        )
    return out


def _value_of(trial: Trial, sort: str) -> Any:
    """The trial's value of the sort key (None: it has none)."""
    if sort == "duration":
        if trial.finished_at is None or trial.started_at is None:
            return None
        return (trial.finished_at - trial.started_at).total_seconds()
    return getattr(trial, sort)


def filter_trials(
    session: Session,
    study: Study,
    *,
    status: str | None,
    filters: Sequence[ParamFilter],
    search: str | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[TrialPublic], int]:
    """The page of the study's trials that pass every filter and contain ``search``,
    and how many pass in all."""
    query = select(Trial).where(Trial.study_id == study.id)
    if status:
        query = query.where(Trial.status == status)
    needle = (search or "").strip().lower()
    kept = []
    for trial in session.scalars(query):
        params = trial.params or {}
        if not all(f.admits(params) for f in filters):
            continue
        if needle:
            text = " ".join(
                [str(trial.number), trial.error or "", trial.worker or ""]
                + [f"{k}={v}" for k, v in params.items()]
            ).lower()
            if needle not in text:
                continue
        kept.append(trial)
    # By the key, ties by number, trials without a value last either way (as the
    # indexed listing orders them). Sorts are stable, reversed ones too.
    keyed = [(_value_of(t, sort), t) for t in kept]  # each trial's key read once
    present = sorted((pair for pair in keyed if pair[0] is not None), key=lambda p: p[1].number)
    present.sort(key=lambda pair: pair[0], reverse=descending)
    missing = sorted((t for value, t in keyed if value is None), key=lambda t: t.number)
    page = ([t for _, t in present] + missing)[offset : offset + limit]
    return [trial_public(t, study.name) for t in page], len(kept)
