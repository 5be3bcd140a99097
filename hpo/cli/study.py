"""``hpo study ...``: submit and inspect studies on a running server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpo.cli.common import JsonOpt, ServerOpt, TokenOpt, make_client
from hpo.cli.output import (
    console,
    format_params,
    format_value,
    handle_errors,
    print_json,
    studies_table,
    trials_table,
)
from hpo.spec import StudySpec, load_spec_file

app = typer.Typer(help="Create, list, show and stop studies.", no_args_is_help=True)


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
    name: Annotated[str, typer.Argument(help="Study name.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    status: Annotated[
        str | None, typer.Option(help="Only trials with this status.", show_default=False)
    ] = None,
) -> None:
    """Show a study and a table of its trials, the best one marked with ★.

    Example: hpo study show digits-mlp --status completed
    """
    with handle_errors(), make_client(server, token) as client:
        study = client.get_study(name)
        trials = client.all_trials(name, status=status)
    if json_out:
        print_json(
            {
                "study": study.model_dump(mode="json"),
                "trials": [t.model_dump(mode="json") for t in trials],
            }
        )
        return
    done = sum(study.counts.get(s, 0) for s in ("completed", "pruned", "failed", "stopped"))
    console.print(
        f"[bold]{study.name}[/]  status [bold]{study.status}[/]  strategy {study.strategy}  "
        f"{study.objective.direction} {study.objective.metric}  "
        f"done {done}/{study.max_trials}"
    )
    if study.best_trial:
        best = study.best_trial
        console.print(
            f"best: trial #{best.number}  {study.objective.metric} = "
            f"[bold green]{format_value(best.value)}[/]  {format_params(best.params)}"
        )
    console.print(trials_table(study, trials))


@app.command("stop")
def stop(
    name: Annotated[str, typer.Argument(help="Study name.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop a study: no new trials, queued ones are stopped, running ones told to stop.

    Example: hpo study stop digits-mlp
    """
    with handle_errors(), make_client(server, token) as client:
        study = client.stop_study(name)
    if json_out:
        print_json(study)
    else:
        console.print(f"study [bold]{study.name}[/] is {study.status}")
