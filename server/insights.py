"""Plot data of one study, bounded in size: optimization history and learning curves.

Both queries read columns, never ORM entities, and parse a trial's JSON (params, info)
only for the trials they return: a study of 10,000 trials with 30 reports each answers
in tens of milliseconds. Large reads go through the session's connection (Core): the
ORM's result layer costs a third more per row and adds nothing to plain columns. No
query reads all reports of a study: curves pick their trials from the trial rows
first, then fetch the reports of those trials only.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Float, Text, cast, exists, extract, func, select
from sqlalchemy.orm import Session

from hpo.insights import CurvePoints, StudyCurves, StudyHistory
from search.errors import SpaceError
from search.space import SearchSpace
from server.tables import Report, Study, Trial

__all__ = [
    "downsample_curve",
    "evenly",
    "history",
    "last_metrics",
    "learning_curves",
    "study_metrics",
    "study_space",
]


def evenly(items: Sequence[int], k: int) -> list[int]:
    """``k`` items of ``items`` evenly spaced by position, first and last included when
    ``k >= 2``, in their order; all of them when ``k >= len(items)``; the last when
    ``k == 1`` (the latest is the one a reader looks for)."""
    n = len(items)
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(items)
    if k == 1:
        return [items[-1]]
    # floor(i * (n-1)/(k-1) + 1/2) in integers: distinct because the stride is >= 1.
    return [items[(i * (n - 1) + (k - 1) // 2) // (k - 1)] for i in range(k)]


def study_space(study: Study) -> tuple[list[str], SearchSpace | None]:
    """Parameter names of the study's search space in declaration order, and the space
    (None if the stored spec no longer parses: then names are the spec's keys)."""
    raw = (study.spec or {}).get("space") or {}
    try:
        space = SearchSpace.from_dict(raw)
    except SpaceError:
        return [str(k) for k in raw] if isinstance(raw, dict) else [], None
    return list(space.names), space


def _seconds(session: Session) -> ColumnElement[float]:
    """SQL for a trial's run time in seconds (null unless started and finished):
    computed by the database so 10k datetimes are never parsed in Python."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(Trial.finished_at) - func.julianday(Trial.started_at)) * 86400.0
    return cast(extract("epoch", Trial.finished_at - Trial.started_at), Float)


def _better(direction: str) -> Callable[[float, float], bool]:
    if direction == "maximize":
        return lambda a, b: a > b
    return lambda a, b: a < b


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def study_metrics(session: Session, study: Study, sample: int = 200) -> list[str]:
    """Names of the numeric metrics in the study's latest ``sample`` reports, the
    objective first, the others by name."""
    names: set[str] = set()
    for (text,) in session.connection().execute(
        select(cast(Report.metrics, Text))
        .join(Trial, Trial.id == Report.trial_id)
        .where(Trial.study_id == study.id)
        .order_by(Report.id.desc())
        .limit(sample)
    ):
        metrics = json.loads(text) if text else {}
        if isinstance(metrics, dict):
            names.update(k for k, v in metrics.items() if _number(v) is not None)
    names.discard(study.metric)
    return [study.metric, *sorted(names)]


def last_metrics(session: Session, trial_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each trial's last report's metrics (highest attempt, then step); trials without
    reports are left out."""
    last: dict[int, str] = {}
    ids = list(trial_ids)
    for start in range(0, len(ids), 500):
        for tid, text in session.connection().execute(
            select(Report.trial_id, cast(Report.metrics, Text))
            .where(Report.trial_id.in_(ids[start : start + 500]))
            .order_by(Report.trial_id, Report.attempt, Report.step)
        ):
            last[tid] = text  # the last row per trial wins; parsed once below
    out: dict[int, dict[str, Any]] = {}
    for tid, text in last.items():
        metrics = json.loads(text) if text else {}
        out[tid] = metrics if isinstance(metrics, dict) else {}
    return out


def _last_metric(session: Session, trial_ids: list[int], metric: str) -> dict[int, float | None]:
    """Each trial's last reported value of ``metric`` (highest attempt, then step)."""
    return {
        tid: _number(metrics.get(metric))
        for tid, metrics in last_metrics(session, trial_ids).items()
    }


def history(
    session: Session, study: Study, max_points: int, metric: str | None = None
) -> StudyHistory:
    """Optimization history (see ``StudyHistory``), at most ``max_points`` trials.

    Sampling when the study has more trials: first the best trials (every completed
    trial whose value ties the best), then the trials that improved the best so far,
    then the others evenly spaced by number, each group thinned evenly if it alone
    overflows what is left of ``max_points``; the result is in number order.
    """
    conn = session.connection()  # Core: see the module docstring
    rows = conn.execute(
        select(
            Trial.number,
            Trial.status,
            Trial.value,
            _seconds(session),
            cast(Trial.params, Text),  # parsed below only for the returned trials
            Trial.id,
        )
        .where(Trial.study_id == study.id)
        .order_by(Trial.number)
    ).all()
    # Plain column tuples: indexing Row objects in the loops below costs ~3x more.
    numbers, statuses, values, seconds, texts, ids = (
        list(zip(*rows, strict=True)) if rows else [()] * 6
    )
    better = _better(study.direction)
    best: float | None = None
    best_so_far: list[float | None] = []
    improvers: list[int] = []
    ties: list[int] = []  # completed trials whose value equals the best so far
    for i, (status, value) in enumerate(zip(statuses, values, strict=True)):
        if status == "completed" and value is not None:
            if best is None or better(value, best):
                best = value
                improvers.append(i)
                ties = [i]
            elif value == best:
                ties.append(i)
        best_so_far.append(best)
    total = len(rows)
    if total <= max_points:
        keep = list(range(total))
    else:
        keep = evenly(ties, max_points)
        taken = set(keep)
        keep += evenly([i for i in improvers if i not in taken], max_points - len(keep))
        taken = set(keep)
        others = [i for i in range(total) if i not in taken]
        keep += evenly(others, max_points - len(keep))
        keep.sort()
    shown_values: list[float | None] = [values[i] for i in keep]
    shown_best: list[float | None] = [best_so_far[i] for i in keep]
    other = metric is not None and metric != study.metric
    if other:
        assert metric is not None
        found = _last_metric(session, [ids[i] for i in keep], metric)
        shown_values = [found.get(ids[i]) for i in keep]
        shown_best = [None] * len(keep)
    names, _space = study_space(study)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i in keep:
        params = json.loads(texts[i]) if texts[i] else {}
        if not isinstance(params, dict):
            params = {}
        # A stored point holds exactly its active parameters: absent means inactive.
        for name, column in columns.items():
            column.append(params.get(name))
    return StudyHistory(
        study=study.name,
        metric=metric if other and metric is not None else study.metric,
        direction=study.direction,
        total=total,
        sampled=len(keep) < total,
        numbers=[numbers[i] for i in keep],
        statuses=[statuses[i] for i in keep],
        values=shown_values,
        best_so_far=shown_best,
        durations=[None if seconds[i] is None else round(seconds[i], 3) for i in keep],
        params=columns,
        metrics=study_metrics(session, study),
    )


def downsample_curve(
    steps: Sequence[int], values: Sequence[float | None], max_points: int
) -> tuple[list[int], list[float | None]]:
    """A curve of at most ``max_points`` points (>= 2), in step order.

    Unchanged when short enough. Otherwise the first and last points stay, and the
    points between are cut into ``(max_points - 2) // 2`` buckets of consecutive steps
    (equal counts, +-1); each bucket keeps its lowest and highest value (one point when
    they coincide; a bucket of null values keeps its first point). Keeping extremes
    rather than every k-th point keeps spikes and sudden drops visible.
    """
    n = len(steps)
    if n <= max_points:
        return list(steps), list(values)
    buckets = (max_points - 2) // 2
    picked = [0]
    inner = n - 2
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        known = [j for j in range(lo, hi) if values[j] is not None]
        if not known:
            picked.append(lo)
            continue
        j_min = min(known, key=lambda j: typing.cast(float, values[j]))  # known: not None
        j_max = max(known, key=lambda j: typing.cast(float, values[j]))
        picked.extend(sorted({j_min, j_max}))
    picked.append(n - 1)
    return [steps[j] for j in picked], [values[j] for j in picked]


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def learning_curves(
    session: Session, study: Study, max_trials: int, max_points: int, metric: str | None = None
) -> StudyCurves:
    """Learning curves (see ``StudyCurves``) of at most ``max_trials`` trials, each of
    at most ``max_points`` points.

    Trials are chosen from trial rows alone: when more than ``max_trials`` have
    reports, up to a quarter of the slots go to the best completed trials, up to a
    quarter to running trials (the newest), the rest to the others evenly spaced by
    number. Then one query reads the reports of the chosen trials only.
    """
    has_reports = exists().where(Report.trial_id == Trial.id)
    conn = session.connection()  # Core: see the module docstring
    rows = conn.execute(
        select(Trial.id, Trial.number, Trial.status, Trial.value, cast(Trial.info, Text))
        .where(Trial.study_id == study.id, has_reports)
        .order_by(Trial.number)
    ).all()
    total = len(rows)
    if total <= max_trials:
        chosen = list(range(total))
    else:
        completed = [i for i, r in enumerate(rows) if r[2] == "completed" and r[3] is not None]
        sign = -1.0 if study.direction == "maximize" else 1.0
        completed.sort(key=lambda i: (sign * typing.cast(float, rows[i][3]), rows[i][1]))
        picked = set(completed[: max_trials // 4])
        running = [i for i, r in enumerate(rows) if r[2] == "running"]
        picked.update(running[-(max_trials // 4) :] if max_trials >= 4 else [])
        others = [i for i in range(total) if i not in picked]
        picked.update(evenly(others, max_trials - len(picked)))
        chosen = sorted(picked)
    ids = [rows[i][0] for i in chosen]
    # Per trial and step, the row of the highest attempt comes last: it wins below.
    points: dict[int, dict[int, float | None]] = {tid: {} for tid in ids}
    if ids and (metric is None or metric == study.metric):
        for tid, step, value in conn.execute(
            select(Report.trial_id, Report.step, Report.value)
            .where(Report.trial_id.in_(ids))
            .order_by(Report.trial_id, Report.step, Report.attempt)
        ):
            points[tid][step] = value
    elif ids:  # another metric: from each report's metrics
        for tid, step, text in conn.execute(
            select(Report.trial_id, Report.step, cast(Report.metrics, Text))
            .where(Report.trial_id.in_(ids))
            .order_by(Report.trial_id, Report.step, Report.attempt)
        ):
            metrics = json.loads(text) if text else {}
            found = metrics.get(metric) if isinstance(metrics, dict) else None
            points[tid][step] = _number(found)
    curves: list[CurvePoints] = []
    sampled = len(chosen) < total
    for i in chosen:
        tid, number, status, _value, info_text = rows[i]
        info = json.loads(info_text) if info_text else {}
        info = info if isinstance(info, dict) else {}
        by_step = points[tid]
        steps = sorted(by_step)
        short_steps, short_values = downsample_curve(steps, [by_step[s] for s in steps], max_points)
        sampled = sampled or len(short_steps) < len(steps)
        curves.append(
            CurvePoints(
                number=number,
                status=status,
                budget=_as_int(info.get("budget")),
                rung=_as_int(info.get("rung")),
                steps=short_steps,
                values=short_values,
            )
        )
    return StudyCurves(total=total, sampled=sampled, curves=curves)
