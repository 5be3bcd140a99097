"""``hpo trials STUDY``: a study's trials as a table (or JSON), filtered and sorted by
the server."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from hpo.cli.common import JsonOpt, ServerOpt, StatusOpt, TokenOpt, make_client
from hpo.cli.output import console, handle_errors, print_json, trials_table
from hpo.client import PAGE_SIZE
from hpo.schemas import TrialPublic, TrialSortKey

__all__ = ["trials"]


def trials(
    study_name: Annotated[str, typer.Argument(metavar="STUDY", help="Study name.")],
    status: StatusOpt = None,
    sort: Annotated[
        TrialSortKey,
        typer.Option("--sort", help="Sort by this column (then by number)."),
    ] = "number",
    order: Annotated[
        Literal["asc", "desc"] | None,
        typer.Option(
            "--order",
            help="asc or desc; default asc, except --sort value: best first.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Show at most this many.", show_default=False),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List a study's trials as a table, filtered and sorted.

    Columns: status, objective value, parameters, attempt, worker and duration; the best
    trial is marked with ★.

    Example: hpo trials digits-mlp --status completed --sort value --limit 10
    """
    with handle_errors(), make_client(server, token) as client:
        study = client.get_study(study_name)
        if order is None:
            best_first = "desc" if study.objective.direction == "maximize" else "asc"
            order = best_first if sort == "value" else "asc"
        page = client.trials_page(
            study_name,
            status=status,
            sort=sort,
            order=order,
            limit=min(limit or PAGE_SIZE, PAGE_SIZE),
        )
        rows: list[TrialPublic] = list(page.trials)
        want = page.total if limit is None else min(limit, page.total)
        while len(rows) < want:
            more = client.list_trials(
                study_name,
                status=status,
                sort=sort,
                order=order,
                offset=len(rows),
                limit=min(PAGE_SIZE, want - len(rows)),
            )
            if not more:
                break
            rows.extend(more)
    if json_out:
        print_json(rows)
        return
    if not rows:
        what = f"{status} trials" if status else "trials"
        console.print(f"study {study.name} has no {what} yet")
        return
    console.print(trials_table(study, rows, detail=True))
    if len(rows) < page.total:
        console.print(f"showing {len(rows)} of {page.total} trials (--limit)")
