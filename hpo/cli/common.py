"""Options shared by the commands that talk to a server.

Every such command takes ``--server`` (``HPO_SERVER_URL``), ``--token`` (``HPO_TOKEN``)
and ``--json`` (machine-readable output on stdout).

The CLI's modules import at the top only what building the command tree needs (typer,
rich, the options' types), and the client, the spec and the schemas where a command
runs: ``hpo --help`` loads no pydantic model and no HTTP client
(``tests/hpo/test_light_imports.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.status import TrialStatus

if TYPE_CHECKING:
    from hpo.client import Client

__all__ = ["JsonOpt", "ServerOpt", "StatusOpt", "TokenOpt", "YesOpt", "make_client"]

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
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.", show_default=False)
]
StatusOpt = Annotated[
    TrialStatus | None,
    typer.Option("--status", help="Only trials with this status.", show_default=False),
]


def make_client(server: str | None, token: str | None) -> Client:
    """A client of ``server`` (else ``HPO_SERVER_URL``) presenting ``token``."""
    from hpo.client import Client

    return Client(server_url=server, token=token)
