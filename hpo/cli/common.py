"""Options shared by the commands that talk to a server."""

from __future__ import annotations

from typing import Annotated

import typer

from hpo.client import Client

__all__ = ["JsonOpt", "ServerOpt", "TokenOpt", "make_client"]

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="HPO_SERVER_URL",
        help="URL of the HPO server (default http://127.0.0.1:8765).",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="HPO_TOKEN", help="API token.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def make_client(server: str | None, token: str | None) -> Client:
    return Client(server_url=server, token=token)
