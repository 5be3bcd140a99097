"""``hpo study watch``: follow a study live until it ends.

The contract: poll the API every ``--interval`` seconds (default 1), draw a progress bar,
the running trials and the best ones, and exit 0 once the study is completed or stopped.
Ctrl-C stops watching (exit 130) and leaves the study running. With ``--json`` each poll
prints one JSON object on its own line (JSON Lines) instead of drawing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from hpo.cli.common import ServerOpt, TokenOpt, make_client
from hpo.cli.output import (
    console,
    err_console,
    fail,
    format_value,
    handle_errors,
    study_done,
    trials_table,
)
from hpo.errors import ServerUnavailable

if TYPE_CHECKING:
    from hpo.client import Client
    from hpo.schemas import StudyPublic, TrialPublic

__all__ = ["ENDED", "Snapshot", "poll", "render", "watch"]

#: Study statuses after which watching ends.
ENDED = ("completed", "failed", "stopped")
#: How long an unreachable server is tolerated (a restart) before giving up.
PATIENCE_S = 30.0
MAX_RUNNING_ROWS = 20


@dataclass
class Snapshot:
    """What one poll saw: the study, its running trials and its best completed ones."""

    study: StudyPublic
    running: list[TrialPublic]
    best: list[TrialPublic]

    def as_json(self) -> dict[str, Any]:
        s = self.study
        return {
            "name": s.name,
            "status": s.status,
            "max_trials": s.max_trials,
            "done": study_done(s),
            "counts": s.counts,
            "running": [t.number for t in self.running],
            "best": s.best_trial.model_dump(mode="json") if s.best_trial else None,
        }


def poll(client: Client, name: str, top: int) -> Snapshot:
    """Three requests: the study, its running trials, its ``top`` best completed ones."""
    study = client.get_study(name)
    running = (
        client.list_trials(name, status="running", limit=MAX_RUNNING_ROWS)
        if study.counts.get("running")
        else []
    )
    best = []
    if top and study.counts.get("completed"):
        order: Literal["asc", "desc"] = "desc" if study.objective.direction == "maximize" else "asc"
        best = client.list_trials(name, status="completed", sort="value", order=order, limit=top)
    return Snapshot(study, running, best)


def render(snap: Snapshot, note: str = "") -> RenderableType:
    """The screen for one snapshot: header, progress bar, running and best trials."""
    s = snap.study
    done = study_done(s)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items()) if n)
    header = Text.from_markup(
        f"[bold]{s.name}[/]  [bold]{s.status}[/]  {s.strategy}  "
        f"{s.objective.direction} {s.objective.metric}  "
        f"{done}/{s.max_trials} done" + (f"  ({counts})" if counts else "")
    )
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(s.max_trials, 1), completed=min(done, s.max_trials), width=50),
        f"{100 * done / max(s.max_trials, 1):3.0f}%",
    )
    parts: list[RenderableType] = [header, bar]
    if s.best_trial is not None:
        parts.append(
            Text.from_markup(
                f"best: trial #{s.best_trial.number}  {s.objective.metric} = "
                f"[bold green]{format_value(s.best_trial.value)}[/]"
            )
        )
    if s.reason:
        parts.append(Text(f"{s.status}: {s.reason}", style="bold red"))
    if snap.running:
        parts.append(trials_table(s, snap.running, detail=True, title="Running"))
    if snap.best:
        parts.append(trials_table(s, snap.best, detail=True, title="Best"))
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def watch(
    name: Annotated[str, typer.Argument(help="Study name.", show_default=False)],
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between polls of the server.")
    ] = 1.0,
    top: Annotated[int, typer.Option(min=0, help="How many best trials to list.")] = 5,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per poll (JSON Lines).")
    ] = False,
) -> None:
    """Follow a study live until it is completed or stopped.

    Shows a progress bar, the running trials and the best ones, polling the server every
    --interval seconds; exits 0 when the study is completed or stopped. Ctrl-C stops
    watching (exit 130); the study goes on.

    Example: hpo study watch digits-mlp --top 10
    """
    with handle_errors(), make_client(server, token) as client:
        snap = poll(client, name, top)  # a bad name or server fails here, before drawing
        try:
            if json_out:
                _follow_json(client, name, top, interval, snap)
            else:
                _follow_live(client, name, top, interval, snap)
        except KeyboardInterrupt:
            err_console.print(f"stopped watching; study {name} goes on")
            raise typer.Exit(130) from None


def _next(client: Client, name: str, top: int, since: list[float]) -> tuple[Snapshot | None, str]:
    """Poll once; on an unreachable server return (None, note) until ``PATIENCE_S``
    has passed since the last good poll (``since[0]``), then give up."""
    try:
        snap = poll(client, name, top)
    except ServerUnavailable as err:
        if time.monotonic() - since[0] > PATIENCE_S:
            raise fail(err.message) from None
        return None, "server unreachable, retrying..."
    since[0] = time.monotonic()
    return snap, ""


def _follow_live(client: Client, name: str, top: int, interval: float, snap: Snapshot) -> None:
    since = [time.monotonic()]
    with Live(render(snap), console=console, auto_refresh=False) as live:
        while snap.study.status not in ENDED:
            time.sleep(interval)
            new, note = _next(client, name, top, since)
            snap = new or snap
            live.update(render(snap, note), refresh=True)
    best = snap.study.best_trial
    console.print(
        f"study [bold]{snap.study.name}[/] is {snap.study.status}"
        + (f"; best trial #{best.number}: {format_value(best.value)}" if best else "")
    )
    if snap.study.reason:
        console.print(f"[red]{escape(snap.study.reason)}[/]")


def _follow_json(client: Client, name: str, top: int, interval: float, snap: Snapshot) -> None:
    since = [time.monotonic()]
    typer.echo(json.dumps(snap.as_json()))
    while snap.study.status not in ENDED:
        time.sleep(interval)
        new, _ = _next(client, name, top, since)
        if new is not None:
            snap = new
            typer.echo(json.dumps(snap.as_json()))
