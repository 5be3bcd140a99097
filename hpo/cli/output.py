"""Rendering for the CLI: Rich tables for people, JSON for scripts, errors without
tracebacks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from hpo.errors import APIError
from search.status import TERMINAL

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from hpo.schemas import StudyPublic, TrialPublic

__all__ = [
    "confirm",
    "console",
    "err_console",
    "fail",
    "format_duration",
    "format_params",
    "format_validation_error",
    "format_value",
    "handle_errors",
    "print_json",
    "studies_table",
    "study_done",
    "trials_table",
]

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error in red on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def format_validation_error(err: ValidationError) -> str:
    """One ``field: message`` line per error, with our spec errors' dotted fields."""
    from hpo.spec import expand_errors

    lines = []
    for e in expand_errors(list(err.errors())):
        if e.get("type") == "spec_field":
            lines.append(f"{e['ctx']['field']}: {e['ctx']['message']}")
        else:
            field = ".".join(str(p) for p in e.get("loc", ())) or "input"
            lines.append(f"{field}: {e['msg']}")
    return "\n".join(lines)


#: Libraries whose errors mean "the database is unreachable or the URL/revision is
#: wrong": reported in one line, never as a traceback.
_DATABASE_LIBS = ("sqlalchemy", "alembic", "psycopg", "sqlite3")


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn API, input and database errors into one readable message and exit code 1."""
    # Here, not at the top: `hpo --help` needs no HTTP client, pydantic or exports.
    import httpx
    from pydantic import ValidationError

    from hpo.export import MissingDependency

    try:
        yield
    except APIError as err:
        prefix = f"{err.status_code} " if err.status_code else ""
        raise fail(f"{prefix}{err.message}") from None
    except MissingDependency as err:
        raise fail(str(err)) from None
    except ValidationError as err:
        raise fail(format_validation_error(err)) from None
    except (ValueError, OSError, httpx.HTTPError, httpx.InvalidURL) as err:
        raise fail(str(err)) from None
    except Exception as err:
        if type(err).__module__.split(".")[0] in _DATABASE_LIBS:
            raise fail(f"database error: {err}".splitlines()[0]) from None
        raise


def confirm(question: str) -> None:
    """Ask a yes/no question on the terminal; exit 1 unless the answer is yes (also
    when there is nobody to answer: stdin closed)."""
    try:
        if typer.confirm(question, default=False):
            return
    except typer.Abort:  # EOF on stdin: a script without --yes
        raise fail("no confirmation: pass --yes to confirm without a prompt") from None
    raise fail("cancelled")


def print_json(data: BaseModel | Sequence[BaseModel | dict[str, Any]] | dict[str, Any]) -> None:
    """Print a model, a dict or a list of either as indented JSON on stdout."""
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, dict):
        payload = data
    else:
        payload = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    typer.echo(json.dumps(payload, indent=2, default=str))


def format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={format_value(v) if isinstance(v, float) else v}" for k, v in params.items()
    )


def format_duration(seconds: float | None) -> str:
    """``42.1s``, ``3m05s``, ``2h03m``; ``—`` for None."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


#: Trial statuses that are final.


def study_done(study: StudyPublic) -> int:
    """How many of the study's trials have finished (in any final status)."""
    return sum(study.counts.get(s, 0) for s in TERMINAL)


def _progress(study: StudyPublic) -> str:
    return f"{study_done(study)}/{study.max_trials}"


def studies_table(studies: Sequence[StudyPublic]) -> Table:
    table = Table(title="Studies", header_style="bold")
    for col in ("name", "status", "strategy", "objective", "done", "running", "best"):
        table.add_column(col, justify="right" if col in ("done", "running", "best") else "left")
    for s in studies:
        best = s.best_trial
        table.add_row(
            s.name,
            s.status,
            s.strategy,
            f"{s.objective.direction} {s.objective.metric}",
            _progress(s),
            str(s.counts.get("running", 0)),
            f"{format_value(best.value)} (#{best.number}{best_budget_note(s, short=True)})"
            if best
            else "—",
        )
    return table


def best_budget_note(study: StudyPublic, *, short: bool = False) -> str:
    """For a multi-fidelity study whose best trial has not trained the full budget
    (none has yet): at how many epochs it was found; else empty."""
    if study.full_budget is None or study.best_budget in (None, study.full_budget):
        return ""
    if short:
        return f", {study.best_budget}/{study.full_budget} epochs"
    return (
        f"  (at {study.best_budget} of {study.full_budget} epochs: "
        "no trial has trained the full budget yet)"
    )


STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "pruned": "yellow",
    "running": "cyan",
    "queued": "dim",
    "stopped": "magenta",
}


def _duration(trial: TrialPublic) -> float | None:
    """Seconds from start to finish; for a running trial, so far (by this machine's
    clock; the server's times are UTC)."""
    if trial.started_at is None:
        return None
    end = trial.finished_at
    if end is None:
        if trial.status != "running":
            return None
        end = datetime.now(timezone.utc)
        if trial.started_at.tzinfo is None:
            end = end.replace(tzinfo=None)
    return max((end - trial.started_at).total_seconds(), 0.0)


def _fidelity_cells(trial: TrialPublic) -> list[str]:
    info = trial.info or {}
    parent = info.get("parent")
    return [
        str(info.get("budget", "—")),
        str(info.get("rung", "—")),
        f"#{parent}" if isinstance(parent, int) else "—",
    ]


def _param_cell(value: object) -> str:
    if isinstance(value, float):
        return format_value(value)
    return "" if value is None else str(value)


def _metric_cell(value: object) -> str:
    if isinstance(value, float):
        return format_value(value)
    return "—" if value is None else str(value)


def _note(trial: TrialPublic) -> str:
    """The note cell: the trial's error, and how often it handed back its devices to a
    higher-priority study (kept apart from failures: it resumed, it did not fail)."""
    parts = [f"handbacks: {trial.handbacks}"] if trial.handbacks else []
    return "; ".join([*parts, trial.error] if trial.error else parts)


def trials_table(
    study: StudyPublic,
    trials: Sequence[TrialPublic],
    *,
    limit: int | None = None,
    detail: bool = False,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    metrics: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """Trials with one column per parameter (``columns``: only these) and per chosen
    metric (``metrics``: its last reported value; the trials must carry metrics); the
    best trial is marked with ★. ``detail`` adds attempt, worker and duration columns.

    However narrow the terminal (``width``, default the console's), the number, status
    and value are never cut: those columns do not wrap and keep their width. The
    parameters get a column each when they fit, else one column with a line each; the
    note folds onto more lines."""
    best_number = study.best_trial.number if study.best_trial else None
    names: list[str] = list(study.spec.get("space", {}).keys())
    names += sorted({k for t in trials for k in t.params} - set(names))
    if columns is not None:
        names = [n for n in names if n in columns]
    table = Table(title=title or f"Trials of {study.name}", header_style="bold")
    table.add_column("", width=1, no_wrap=True)
    shown = trials if limit is None else trials[:limit]
    numbers = [str(t.number) for t in shown]
    values = [format_value(t.value) for t in shown]
    table.add_column(
        "#", justify="right", no_wrap=True, min_width=max(map(len, numbers), default=1)
    )
    table.add_column(
        "status", no_wrap=True, min_width=max((len(t.status) for t in shown), default=6)
    )
    metric = study.objective.metric
    table.add_column(
        metric, justify="right", no_wrap=True, min_width=max(map(len, values), default=1)
    )
    for name in metrics:
        table.add_column(name, justify="right", no_wrap=True, min_width=6)
    param_cells = [[_param_cell(t.params.get(n)) for n in names] for t in shown]
    # One column per parameter when they fit the terminal; else one column that lists
    # them, a "name=value" line each (a 3-character column per parameter is unreadable).
    widths = [max([len(n), *(len(row[i]) for row in param_cells)]) + 3 for i, n in enumerate(names)]
    fixed = 5 + len(max(numbers, key=len, default="")) + 12 + max(map(len, values), default=6)
    fixed += 9 * len(metrics) + 15
    room = width or console.width
    # Detail columns go first when room is short, then per-parameter columns.
    per_parameter = fixed + sum(widths) + (30 if detail else 0) <= room
    if not per_parameter and detail and fixed + sum(widths) <= room:
        per_parameter, detail = True, False
    if per_parameter:
        for name in names:
            table.add_column(name, justify="right", overflow="fold")
    elif names:
        table.add_column("parameters", overflow="fold", min_width=16)
    fidelity = study.full_budget is not None
    if fidelity:  # Hyperband, ASHA: which rung a trial is on, and what it continues
        for column in ("budget", "rung", "parent"):
            table.add_column(column, justify="right")
    detail = detail and per_parameter  # narrow: attempts, worker and duration are in --json
    if detail:
        table.add_column("attempt", justify="right")
        table.add_column("worker", overflow="ellipsis", max_width=24)
        table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold", min_width=10, max_width=40)
    for t, cells in zip(shown, param_cells, strict=True):
        mark = "★" if t.number == best_number else ""
        style = STATUS_STYLE.get(t.status, "")
        if not per_parameter and names:
            cells = ["\n".join(f"{n}={c}" for n, c in zip(names, cells, strict=True) if c)]
        table.add_row(
            mark,
            str(t.number),
            f"[{style}]{t.status}[/]" if style else t.status,
            format_value(t.value),
            *(_metric_cell((t.metrics or {}).get(m)) for m in metrics),
            *cells,
            *(_fidelity_cells(t) if fidelity else []),
            *([str(t.attempt), t.worker or "—", format_duration(_duration(t))] if detail else []),
            _note(t),
            style="bold" if mark else None,
        )
    return table
