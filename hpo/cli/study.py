"""``hpo study ...``: submit, inspect, control, delete and export studies on a running
server (``hpo study watch`` lives in :mod:`hpo.cli.watch`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from hpo.cli.common import JsonOpt, ServerOpt, StatusOpt, TokenOpt, YesOpt, make_client
from hpo.cli.output import (
    best_budget_note,
    confirm,
    console,
    fail,
    format_params,
    format_value,
    handle_errors,
    print_json,
    studies_table,
    study_done,
    trials_table,
)
from hpo.cli.watch import watch
from hpo.vocabulary import DEFAULT_POOL

if TYPE_CHECKING:
    from hpo.schemas import StudyPublic

#: Trials ``hpo study show`` lists unless told --all.
SHOW_LIMIT = 20

app = typer.Typer(
    help="Create, list, show, watch, pause, resume, stop, update, delete and export studies.",
    no_args_is_help=True,
)
NameArg = Annotated[str, typer.Argument(help="Study name.", show_default=False)]


@app.command("create")
def create(
    spec_file: Annotated[Path, typer.Argument(help="Study spec file (YAML or JSON).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Submit a study spec to the server.

    Example: hpo study create examples/digits-mlp.yaml
    """
    from hpo.spec import StudySpec, load_spec_file

    with handle_errors():
        data = load_spec_file(spec_file)
        StudySpec.model_validate(data)  # field-named errors before anything is sent
        with make_client(server, token) as client:
            study = client.create_study(data)
    if json_out:
        print_json(study)
        return
    console.print(
        f"[green]created study[/] [bold]{study.name}[/] "
        f"({study.strategy}, {study.max_trials} trials, seed {study.spec['strategy']['seed']})"
    )


@app.command("list")
def list_(server: ServerOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List every study with its progress and best value.

    Example: hpo study list
    """
    with handle_errors(), make_client(server, token) as client:
        studies = client.list_studies()
    if json_out:
        print_json(studies)
    elif not studies:
        console.print("no studies yet: submit one with [bold]hpo study create FILE[/]")
    else:
        console.print(studies_table(studies))


@app.command("show")
def show(
    name: NameArg,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    status: StatusOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Trials shown (the latest).")
    ] = SHOW_LIMIT,
    all_trials: Annotated[bool, typer.Option("--all", help="Show every trial.")] = False,
) -> None:
    """Show a study and a table of its latest trials (--all: every one), the best one
    marked with ★.

    Example: hpo study show digits-mlp --status completed --all
    """
    with handle_errors(), make_client(server, token) as client:
        study = client.get_study(name)
        if all_trials:
            trials = client.all_trials(name, status=status)
            total = len(trials)
        else:
            page = client.trials_page(name, status=status, sort="number", order="desc", limit=limit)
            trials, total = sorted(page.trials, key=lambda t: t.number), page.total
    if json_out:
        print_json(
            {
                "study": study.model_dump(mode="json"),
                "trials": [t.model_dump(mode="json") for t in trials],
            }
        )
        return
    console.print(
        f"[bold]{study.name}[/]  status [bold]{study.status}[/]  strategy {study.strategy}  "
        f"{study.objective.direction} {study.objective.metric}  "
        f"done {study_done(study)}/{study.max_trials}  parallel {study.max_parallel}"
        + (f"  pool {study.pool}" if study.pool != DEFAULT_POOL else "")
    )
    if study.waiting:
        console.print(f"[bold yellow]waiting:[/] {escape(study.waiting)}")
    if study.best_trial:
        best = study.best_trial
        console.print(
            f"best: trial #{best.number}  {study.objective.metric} = "
            f"[bold green]{format_value(best.value)}[/]  {format_params(best.params)}"
            + best_budget_note(study)
        )
    if study.reason:
        console.print(f"[bold red]{study.status}:[/] {escape(study.reason)}")
    console.print(trials_table(study, trials))
    if len(trials) < total:
        console.print(f"showing the latest {len(trials)} of {total} trials (--all for every one)")


app.command("watch")(watch)


def _report(study: StudyPublic, json_out: bool) -> None:
    if json_out:
        print_json(study)
    else:
        console.print(
            f"study [bold]{study.name}[/] is [bold]{study.status}[/] "
            f"({study_done(study)}/{study.max_trials} done, max parallel {study.max_parallel})"
        )


#: The status changes a user asks for by name (``hpo study <action> NAME``), each the
#: client's ``<action>_study``, with its help; the server decides which are allowed
#: (a stopped study cannot resume: 409).
TRANSITIONS: dict[str, str] = {
    "stop": "Stop a study for good: no new trials, queued and running ones are stopped.",
    "pause": "Pause a running study: no new trials; queued and running ones finish.",
    "resume": "Resume a paused study.",
}


def _transition(action: str) -> Callable[..., None]:
    """The command ``hpo study <action> NAME``."""

    def command(
        name: NameArg,
        server: ServerOpt = None,
        token: TokenOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        with handle_errors(), make_client(server, token) as client:
            study = getattr(client, f"{action}_study")(name)
        _report(study, json_out)

    command.__name__ = command.__qualname__ = action
    command.__doc__ = f"{TRANSITIONS[action]}\n\nExample: hpo study {action} digits-mlp"
    return command


for _action in TRANSITIONS:
    app.command(_action)(_transition(_action))


@app.command("update")
def update(
    name: NameArg,
    max_trials: Annotated[
        int | None,
        typer.Option("--max-trials", min=1, help="New trial budget.", show_default=False),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option("--max-parallel", min=1, help="Trials at once.", show_default=False),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a study's budget; raising --max-trials of a completed study runs it again.

    Example: hpo study update digits-mlp --max-trials 50 --max-parallel 4
    """
    if max_trials is None and max_parallel is None:
        raise fail("nothing to change: pass --max-trials and/or --max-parallel")
    with handle_errors(), make_client(server, token) as client:
        study = client.update_study(name, max_trials=max_trials, max_parallel=max_parallel)
    _report(study, json_out)


@app.command("delete")
def delete(
    name: NameArg,
    yes: YesOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete a study with all its trials and reports, for good (asks first).

    Example: hpo study delete digits-mlp --yes
    """
    with handle_errors(), make_client(server, token) as client:
        study = client.get_study(name)
        if not yes:
            confirm(
                f"Delete study {study.name!r} with its {study.n_trials} trials and their "
                "reports? This cannot be undone"
            )
        client.delete_study(name)
    if json_out:
        print_json({"deleted": study.name, "trials": study.n_trials})
    else:
        console.print(f"deleted study [bold]{study.name}[/] ({study.n_trials} trials)")


ExportFormat = Literal["csv", "json", "tensorboard"]


@app.command("export")
def export(
    name: NameArg,
    dest: Annotated[
        Path | None,
        typer.Argument(
            help="Output file (csv/json) or directory (tensorboard); same as --output.",
            show_default=False,
        ),
    ] = None,
    format_: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="csv, json or tensorboard.")
    ] = "csv",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File (csv/json; default stdout) or directory (tensorboard, required).",
            show_default=False,
        ),
    ] = None,
    status: StatusOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a study's trials as CSV, JSON or TensorBoard HParams logs.

    CSV and JSON have one flat row per trial: number, status, value, attempt, failures,
    worker, created_at, started_at, finished_at, duration_s, last_step, error, then
    param_<name> per parameter. TensorBoard writes one run per completed trial (its
    hparams, final value and learning curve) and needs tensorboardX.

    Example: hpo study export digits-mlp --format csv --output trials.csv

    Example: hpo study export digits-mlp --format tensorboard runs/digits
    """
    from hpo.export import csv_text, records_to_json

    if dest is not None and output is not None and dest != output:
        raise fail(f"two destinations: {dest} and --output {output}; give one")
    target = output or dest
    with handle_errors(), make_client(server, token) as client:
        if format_ == "tensorboard":
            if target is None:
                raise fail("--format tensorboard needs an output directory: DIR or --output DIR")
            if status not in (None, "completed"):
                raise fail("--format tensorboard exports completed trials only")
            runs = client.export_tensorboard(name, target)
            summary = {"format": format_, "path": str(target), "trials": len(runs)}
            message = (
                f"wrote {len(runs)} completed trials to {target}: "
                f"view with [bold]tensorboard --logdir {target}[/] (HParams tab)"
            )
        else:
            records = client.trials_records(name, status=status)
            text = csv_text(records) if format_ == "csv" else records_to_json(records) + "\n"
            if target is None:
                sys.stdout.write(text)
                sys.stdout.flush()
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            summary = {"format": format_, "path": str(target), "trials": len(records)}
            message = f"wrote {len(records)} trials to {target}"
    if json_out:
        print_json(summary)
    else:
        console.print(message)
