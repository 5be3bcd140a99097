"""``hpo token ...``: create, list and delete API tokens (needs an admin token)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hpo.cli.common import JsonOpt, ServerOpt, TokenOpt, YesOpt, make_client
from hpo.cli.output import confirm, console, err_console, handle_errors, print_json
from hpo.vocabulary import TokenScope

__all__ = ["app"]

app = typer.Typer(
    help="Create, list and delete API tokens (admin scope needed).", no_args_is_help=True
)
TokenName = Annotated[str, typer.Argument(help="Token name (unique).", show_default=False)]


@app.command("create")
def create(
    name: TokenName,
    scope: Annotated[
        TokenScope,
        typer.Option(
            "--scope",
            help="admin: everything incl. tokens; user: studies and trials; "
            "worker: run trials only.",
        ),
    ] = "user",
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Whose token it is (user and admin tokens; default: a user named like "
            "the token, created when new).",
            show_default=False,
        ),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a token and print it: this is the only time it is shown.

    Only the token goes to stdout (the note goes to stderr), so a script can capture it.

    Example: hpo token create alice-laptop --user alice
    """
    with handle_errors(), make_client(server, token) as client:
        created = client.create_token(name, scope, user)
    if json_out:
        print_json(created)
        return
    owner = f" of user {created['user']}" if created.get("user") else ""
    err_console.print(
        f"created token [bold]{created['name']}[/] (scope {created['scope']}{owner}); "
        "store it now, it is not shown again. Use it as HPO_TOKEN or --token:"
    )
    typer.echo(created["token"])


@app.command("list")
def list_(server: ServerOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List tokens: name, scope, when created and last used (never the secret).

    Example: hpo token list --json
    """
    with handle_errors(), make_client(server, token) as client:
        rows = client.list_tokens()
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no tokens yet: create one with [bold]hpo token create NAME[/]")
        return
    table = Table(title="Tokens", header_style="bold")
    for col in ("name", "scope", "user", "created", "last used"):
        table.add_column(col)
    for t in rows:
        table.add_row(
            t["name"],
            t["scope"],
            t.get("user") or "—",
            _when(t.get("created_at")),
            _when(t.get("last_used_at")),
        )
    console.print(table)


def _when(value: str | None) -> str:
    """``2026-01-02T03:04:05.678Z`` -> ``2026-01-02 03:04:05``; ``—`` for never."""
    return value[:19].replace("T", " ") if value else "—"


@app.command("delete")
def delete(
    name: TokenName,
    yes: YesOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a token at once (asks first).

    Example: hpo token delete gpu-box-1 --yes
    """
    with handle_errors(), make_client(server, token) as client:
        if not yes:
            confirm(f"Revoke token {name!r}? Whoever uses it is locked out at once")
        client.delete_token(name)
    if json_out:
        print_json({"deleted": name})
    else:
        console.print(f"revoked token [bold]{name}[/]")
