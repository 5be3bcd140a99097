"""``hpo db ...``: schema migrations (Alembic owns the schema)."""

from __future__ import annotations

from typing import Annotated

import typer

from hpo.cli.output import console, handle_errors
from hpo.vocabulary import TokenScope

app = typer.Typer(help="Database migrations.", no_args_is_help=True)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="HPO_DATABASE_URL",
        help="SQLAlchemy URL (default: SQLite in the data directory).",
        show_default=False,
    ),
]


def _url(database_url: str | None) -> str:
    from hpo.settings import get_settings  # here: `hpo --help` reads no settings

    return database_url or get_settings().resolved_database_url


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url: UrlOpt = None,
) -> None:
    """Apply migrations up to REVISION (default: head).

    Example: HPO_DATABASE_URL=postgresql+psycopg://hpo@db/hpo hpo db upgrade
    """
    from server.migrate import current_revision
    from server.migrate import upgrade as do_upgrade

    with handle_errors():
        url = _url(database_url)
        do_upgrade(url, revision)
        console.print(f"database at revision [bold]{current_revision(url)}[/]")


@app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")],
    database_url: UrlOpt = None,
) -> None:
    """Revert migrations down to REVISION (``base`` drops every table).

    Example: hpo db downgrade base
    """
    from server.migrate import current_revision
    from server.migrate import downgrade as do_downgrade

    with handle_errors():
        url = _url(database_url)
        do_downgrade(url, revision)
        console.print(f"database at revision [bold]{current_revision(url) or 'base'}[/]")


@app.command("current")
def current(database_url: UrlOpt = None) -> None:
    """Print the database's current revision.

    Example: hpo db current
    """
    from server.migrate import current_revision

    with handle_errors():
        console.print(current_revision(_url(database_url)) or "base (not migrated)")


@app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="A unique token name.")],
    scope: Annotated[TokenScope, typer.Option(help="admin, user or worker.")] = "admin",
    database_url: UrlOpt = None,
) -> None:
    """Store a new token straight in the database and print it (shown once): the way
    to get a first admin token on a server with auth on and no HPO_API_TOKEN.

    Example: hpo db token ops --scope admin
    """
    from hpo.schemas import TokenIn
    from server.db import Database
    from server.errors import ServiceError
    from server.tokens import create_token

    with handle_errors():
        body = TokenIn(name=name, scope=scope)
        db = Database(_url(database_url))
        try:
            with db.session() as session:
                _row, plain = create_token(session, body.name, body.scope)
        except ServiceError as err:  # a duplicate name: one line, like the API's 409
            raise ValueError(err.message) from None
        finally:
            db.dispose()
    typer.echo(plain)
