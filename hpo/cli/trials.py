"""``hpo trials STUDY``: a study's trials as a table (or JSON), filtered and sorted by
the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from hpo.cli.common import JsonOpt, ServerOpt, StatusOpt, TokenOpt, make_client
from hpo.cli.output import console, handle_errors, print_json, trials_table
from hpo.vocabulary import PAGE_SIZE, TrialSortKey
from search.status import TrialStatus

if TYPE_CHECKING:
    from hpo.client import Client
    from hpo.schemas import TrialPublic

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
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Only these parameters, comma-separated (default: all).",
            show_default=False,
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Also these reported metrics (their last value), comma-separated.",
            show_default=False,
        ),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List a study's trials as a table, filtered and sorted.

    Columns: status, objective value, chosen metrics, parameters, attempt, worker and
    duration; the best trial is marked with ★. Status and value are never cut, however
    narrow the terminal: parameters wrap (or pick them with --columns).

    Example: hpo trials digits-mlp --status completed --sort value --metrics val_loss
    """
    chosen = _names(columns)
    wanted = _names(metrics) or []
    with handle_errors(), make_client(server, token) as client:
        study = client.get_study(study_name)
        if order is None:
            maximize = study.objective.direction == "maximize"
            order = "desc" if sort == "value" and maximize else "asc"
        rows, total = _fetch(
            client,
            study_name,
            status=status,
            sort=sort,
            order=order,
            limit=limit,
            metrics=bool(wanted),
        )
    if json_out:
        print_json(rows)
        return
    if not rows:
        what = f"{status} trials" if status else "trials"
        console.print(f"study {study.name} has no {what} yet")
        return
    console.print(trials_table(study, rows, detail=True, columns=chosen, metrics=wanted))
    if len(rows) < total:
        console.print(f"showing {len(rows)} of {total} trials (--limit)")


def _fetch(
    client: Client,
    study_name: str,
    *,
    status: TrialStatus | None,
    sort: TrialSortKey,
    order: Literal["asc", "desc"],
    limit: int | None,
    metrics: bool = False,
) -> tuple[list[TrialPublic], int]:
    """The first ``limit`` (default: all) trials in the listing's order, and how many
    match the filter in all (as of the first page).

    Pages after the first follow the server's cursors: an offset page would repeat or
    skip rows when trials are added or finish between two pages (e.g. new trials
    ahead of the offset with ``--order desc``), and skipping ``offset`` rows gets
    slower the deeper it is. A server that gives no cursor is paged by offset.
    """
    page = client.trials_page(
        study_name,
        status=status,
        sort=sort,
        order=order,
        limit=min(limit or PAGE_SIZE, PAGE_SIZE),
        metrics=metrics,
    )
    rows: list[TrialPublic] = list(page.trials)
    # The first page's total bounds the listing: trials added meanwhile (after the end
    # of an ascending order) are not chased.
    total = page.total
    want = total if limit is None else min(limit, total)
    cursors = page.next_cursor is not None
    while len(rows) < want and page.trials:
        if page.next_cursor is None and cursors:
            break  # a cursor server gives none after the last page
        page = client.trials_page(
            study_name,
            status=status,
            sort=sort,
            order=order,
            limit=min(PAGE_SIZE, want - len(rows)),
            offset=0 if page.next_cursor else len(rows),
            cursor=page.next_cursor,
            metrics=metrics,
        )
        rows.extend(page.trials)
    return rows, total


def _names(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ["a", "b"]; None when not given."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]
