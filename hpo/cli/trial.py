"""``hpo trial ...``: one trial. ``hpo trial logs`` prints what an attempt printed
(stdout and stderr, tracebacks included), and follows it live with ``--follow``."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from hpo.cli.common import JsonOpt, ServerOpt, TokenOpt, make_client
from hpo.cli.output import err_console, handle_errors, print_json

__all__ = ["app"]

app = typer.Typer(help="One trial: its log.", no_args_is_help=True)


@app.command("logs")
def logs(
    study: Annotated[str, typer.Argument(help="Study name.", show_default=False)],
    number: Annotated[int, typer.Argument(min=0, help="Trial number.", show_default=False)],
    attempt: Annotated[
        int | None,
        typer.Option(min=1, help="Which attempt (default: the latest).", show_default=False),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing while the attempt runs.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two reads when following.")
    ] = 1.0,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print a trial attempt's log; with --follow, until the attempt ends.

    Example: hpo trial logs digits-mlp 7 --follow
    """
    with handle_errors(), make_client(server, token) as client:
        log = client.trial_log(study, number, attempt=attempt)
        if json_out:
            print_json(log)
            return
        shown = log.attempt
        err_console.print(
            f"[dim]{study} #{number}, attempt {shown} of {log.attempts or [shown]}"
            + (f"; {log.cut_bytes:,} bytes cut from the middle" if log.cut_bytes else "")
            + "[/]"
        )
        sys.stdout.write(log.text)
        sys.stdout.flush()
        while follow and log.running:
            time.sleep(interval)
            log = client.trial_log(study, number, attempt=shown, after=log.next_position)
            sys.stdout.write(log.text)
            sys.stdout.flush()
        if follow:
            err_console.print(f"[dim]attempt {shown} ended[/]")
