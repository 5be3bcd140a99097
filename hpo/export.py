"""Client-side export of a study's trials: flat records, CSV, JSON, a pandas DataFrame
and TensorBoard HParams logs.

Everything here works on what the REST API returns (``StudyPublic``, ``TrialPublic``,
``TrialDetail``); nothing talks to the database. pandas and tensorboardX are optional:
they are imported only by the functions that need them, which raise
:class:`MissingDependency` (an ``ImportError``) naming the package to install.

The record layout (one flat ``dict`` per trial, the same columns for every row):

========================  ===========================================================
``number``                the trial's number in its study (0, 1, ...)
``status``                queued | running | completed | pruned | failed | stopped
``value``                 the objective's final value (None until completed)
``attempt``               attempts started (a retry after a lost worker adds one)
``failures``              attempts lost to dead workers
``worker``                the worker that ran the latest attempt
``created_at``            when the trial was created (a UTC ``datetime``)
``started_at``            when its latest attempt started (or None)
``finished_at``           when it finished (or None)
``duration_s``            ``finished_at - started_at`` in seconds (None until finished)
``last_step``             the last reported step
``budget``                epochs this trial trains (Hyperband/ASHA; else None)
``rung``                  its rung (Hyperband/ASHA; else None)
``parent``                the trial it continues from (a promotion; else None)
``best``                  True for the study's best trial (at the full budget in a
                          multi-fidelity study, once one trained it), else False
``error``                 why it failed or was stopped (or None)
``param_<name>``          one column per parameter, in the search space's order; None
                          where a conditional parameter was inactive
``metric_<name>``         one column per metric any trial reported (by name): its
                          value in the trial's last report (None where it has none)
========================  ===========================================================
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from hpo.schemas import StudyPublic, TrialDetail, TrialPublic
from search.checks import is_finite_number
from search.errors import SpaceError

__all__ = [
    "BASE_COLUMNS",
    "METRIC_PREFIX",
    "PARAM_PREFIX",
    "MissingDependency",
    "csv_text",
    "param_names",
    "records_dataframe",
    "records_to_json",
    "trial_records",
    "write_csv",
    "write_tensorboard",
]

logger = logging.getLogger(__name__)

PARAM_PREFIX = "param_"
METRIC_PREFIX = "metric_"
#: The fixed columns of a record, in order; ``param_<name>`` columns follow.
BASE_COLUMNS: tuple[str, ...] = (
    "number",
    "status",
    "value",
    "attempt",
    "failures",
    "worker",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "last_step",
    "budget",
    "rung",
    "parent",
    "best",
    "error",
)


class MissingDependency(ImportError):
    """An optional package needed for this export is not installed."""


def _require(module: str, package: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{purpose} needs the optional package {package!r}: pip install {package}"
        ) from None


def param_names(study: StudyPublic | None, trials: Iterable[TrialPublic]) -> list[str]:
    """Parameter names: the study's search space order first, then any other name seen
    in a trial (sorted), so every record has the same columns."""
    names = list(study.spec.get("space", {})) if study is not None else []
    seen = set(names)
    extra = sorted({k for t in trials for k in t.params} - seen)
    return names + extra


def trial_records(
    trials: Sequence[TrialPublic], study: StudyPublic | None = None
) -> list[dict[str, Any]]:
    """One flat dict per trial (layout in the module docstring), in the given order."""
    names = param_names(study, trials)
    metric_names = sorted({k for t in trials for k in (t.metrics or {})})
    best = study.best_trial.number if study is not None and study.best_trial else None
    rows = []
    for t in trials:
        info = t.info or {}
        duration = (
            (t.finished_at - t.started_at).total_seconds()
            if t.started_at is not None and t.finished_at is not None
            else None
        )
        row: dict[str, Any] = {
            "number": t.number,
            "status": t.status,
            "value": t.value,
            "attempt": t.attempt,
            "failures": t.failures,
            "worker": t.worker,
            "created_at": t.created_at,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "duration_s": duration,
            "last_step": t.last_step,
            "budget": info.get("budget"),
            "rung": info.get("rung"),
            "parent": info.get("parent"),
            "best": t.number == best,
            "error": t.error,
        }
        for name in names:
            row[PARAM_PREFIX + name] = t.params.get(name)
        for name in metric_names:
            row[METRIC_PREFIX + name] = (t.metrics or {}).get(name)
        rows.append(row)
    return rows


def _columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    columns = list(BASE_COLUMNS)
    for row in records:
        columns.extend(k for k in row if k not in columns)
    return columns


def _plain(value: Any) -> Any:
    """JSON/CSV form of a record value: datetimes as ISO 8601 (UTC, ``Z``)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text + "Z" if value.tzinfo is None else text
    return value


def write_csv(records: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    """Write records as CSV with a header row; None is an empty cell."""
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(records)
    writer.writerow(columns)
    for row in records:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])


def records_to_json(records: Sequence[Mapping[str, Any]]) -> str:
    """Records as a JSON array of flat objects (the same rows as the CSV)."""
    return json.dumps([{k: _plain(v) for k, v in row.items()} for row in records], indent=2)


def records_dataframe(records: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of records (one row per trial, columns in record order).

    Raises :class:`MissingDependency` when pandas is not installed."""
    pd = _require("pandas", "pandas", "a trials DataFrame")
    return pd.DataFrame(list(records), columns=_columns(records))


# -- TensorBoard HParams -----------------------------------------------------------------

_RUN_NAME = "trial-{number:05d}"


def _tag(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./-]", "_", name) or "_"


def _hparam_infos(study: StudyPublic, names: Sequence[str], values: dict[str, list[Any]]) -> list:
    """HParamInfo per parameter, typed and with the search space's domain where it
    has one (interval for float/int, the choices for a categorical of one type)."""
    from tensorboardX.proto.api_pb2 import DataType, HParamInfo, Interval

    from search import SearchSpace

    try:
        space: Any = SearchSpace.from_dict(study.spec.get("space", {}))
        known = set(space.names)
    except SpaceError as err:  # an export must not fail on a space this client cannot read
        logger.warning(
            "study %s: hparams without their domains, the space is unreadable here: %s",
            study.name,
            err,
        )
        space, known = None, set()
    infos = []
    for name in names:
        info = HParamInfo(name=name)
        param: Any = space[name] if name in known else None
        kind = getattr(param, "kind", None)
        if kind in ("float", "int"):
            info.type = DataType.Value("DATA_TYPE_FLOAT64")
            info.domain_interval.CopyFrom(
                Interval(min_value=float(param.low), max_value=float(param.high))
            )
            infos.append(info)
            continue
        choices = list(param.choices) if kind == "categorical" else values.get(name, [])
        types = {_hp_type(v) for v in choices if v is not None}
        if len(types) == 1:
            (hp_type,) = types
            info.type = DataType.Value(hp_type)
            for choice in dict.fromkeys(choices):
                if choice is not None:
                    _set_value(info.domain_discrete.values.add(), choice)
        else:  # mixed types: TensorBoard shows them as strings
            info.type = DataType.Value("DATA_TYPE_STRING")
        infos.append(info)
    return infos


def _hp_type(value: Any) -> str:
    if isinstance(value, bool):
        return "DATA_TYPE_BOOL"
    if isinstance(value, int | float):
        return "DATA_TYPE_FLOAT64"
    return "DATA_TYPE_STRING"


def _set_value(target: Any, value: Any) -> None:
    """Fill a protobuf ``Value`` from a parameter value."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int | float):
        target.number_value = float(value)
    else:
        target.string_value = str(value)


def _hparams_summary(tag: str, **content: Any) -> Any:
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    data = HParamsPluginData(version=0, **content)
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams", content=data.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def _timestamp(when: datetime | None) -> float:
    if when is None:
        return 0.0
    from datetime import timezone

    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def write_tensorboard(
    study: StudyPublic, trials: Sequence[TrialDetail], logdir: str | Path
) -> list[Path]:
    """Write TensorBoard HParams logs of the study's completed trials under ``logdir``.

    ``logdir`` gets the experiment (every parameter with its domain, and the metrics);
    each completed trial gets a run directory ``trial-NNNNN`` with its hparams, the
    objective's final value as the scalar ``hparams/<metric>``, and the learning curve of
    its latest attempt as per-step scalars (``<metric>`` and each reported metric).
    Trials that did not complete are skipped. Returns the run directories written.
    Raises :class:`MissingDependency` when tensorboardX is not installed.
    """
    tbx = _require("tensorboardX", "tensorboardX", "the TensorBoard export")
    from tensorboardX.proto.api_pb2 import Experiment, MetricInfo, MetricName, Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo, SessionStartInfo

    root = Path(logdir)
    root.mkdir(parents=True, exist_ok=True)
    done = [t for t in trials if t.status == "completed" and t.value is not None]
    names = param_names(study, done)
    metric = _tag(study.objective.metric)
    final_tag = f"hparams/{metric}"
    curve_tags: dict[str, None] = {metric: None}
    for t in done:
        for r in t.reports:
            curve_tags.update({_tag(k): None for k, v in r.metrics.items() if is_finite_number(v)})

    values = {n: [t.params.get(n) for t in done] for n in names}
    experiment = Experiment(
        name=study.name,
        description=study.spec.get("description", ""),
        time_created_secs=_timestamp(study.created_at),
        hparam_infos=_hparam_infos(study, names, values),
        metric_infos=[MetricInfo(name=MetricName(tag=final_tag), display_name=metric)]
        + [MetricInfo(name=MetricName(tag=tag)) for tag in curve_tags],
    )
    with tbx.SummaryWriter(logdir=str(root)) as writer:
        writer.file_writer.add_summary(
            _hparams_summary("_hparams_/experiment", experiment=experiment)
        )

    runs = []
    for t in done:
        run = root / _RUN_NAME.format(number=t.number)
        start = SessionStartInfo(group_name=run.name, start_time_secs=_timestamp(t.started_at))
        for name, value in t.params.items():
            if value is not None:
                _set_value(start.hparams[name], value)
        with tbx.SummaryWriter(logdir=str(run)) as writer:
            writer.file_writer.add_summary(
                _hparams_summary("_hparams_/session_start_info", session_start_info=start)
            )
            last_step = 0
            for r in (r for r in t.reports if r.attempt == t.attempt):
                wall = _timestamp(r.created_at)
                if is_finite_number(r.value):
                    writer.add_scalar(metric, r.value, r.step, walltime=wall)
                for key, val in r.metrics.items():
                    if is_finite_number(val) and _tag(key) != metric:
                        writer.add_scalar(_tag(key), val, r.step, walltime=wall)
                last_step = max(last_step, r.step)
            writer.add_scalar(final_tag, t.value, last_step, walltime=_timestamp(t.finished_at))
            end = SessionEndInfo(
                status=Status.Value("STATUS_SUCCESS"), end_time_secs=_timestamp(t.finished_at)
            )
            writer.file_writer.add_summary(
                _hparams_summary("_hparams_/session_end_info", session_end_info=end)
            )
        runs.append(run)
    return runs


def csv_text(records: Sequence[Mapping[str, Any]]) -> str:
    """Records as CSV text (see :func:`write_csv`)."""
    buffer = io.StringIO()
    write_csv(records, buffer)
    return buffer.getvalue()
