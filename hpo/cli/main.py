"""The ``hpo`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from hpo.cli import db, project, study, token, trial
from hpo.cli.demo import demo
from hpo.cli.fleet import worker, workers
from hpo.cli.output import console, handle_errors
from hpo.cli.trials import trials

app = typer.Typer(
    help="HPO Service: hyperparameter optimization as a service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(study.app, name="study")
app.command("trials")(trials)
app.add_typer(trial.app, name="trial")
app.command("workers")(workers)
app.add_typer(token.app, name="token")
app.add_typer(project.app, name="project")
app.command("worker")(worker)
app.add_typer(db.app, name="db")
app.command("demo")(demo)


@app.command("server")
def server(
    host: Annotated[str | None, typer.Option(help="Bind address (HPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HPO_PORT, default 8765).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Local workers (default: one per CPU core; 0: none)."),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Apply migrations at start-up.")] = True,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs) with local workers.

    Example: hpo server --port 8765 --workers 2
    """
    import signal
    import time

    from hpo.embedded import EmbeddedService
    from hpo.settings import get_settings

    with handle_errors():
        settings = get_settings()
        host = host or settings.host
        port = settings.port if port is None else port
        n_workers = settings.workers if workers is None else workers
        service = EmbeddedService(
            settings, workers=n_workers, host=host, port=port, log_level="info"
        )
        service.start()
    console.print(f"HPO server at [bold]{service.url}[/] (docs {service.url}/docs); Ctrl-C stops")
    from server.auth import auth_required

    if auth_required(settings.auth, host, bool(settings.api_token or settings.worker_token)):
        if not settings.api_token:
            console.print(
                "[yellow]auth is on (bound beyond loopback) but HPO_API_TOKEN is unset: "
                "only tokens already stored work; set HPO_API_TOKEN to an admin token, or "
                "HPO_AUTH=off on a trusted network[/]"
            )
        else:
            console.print("auth is on: clients present a token (HPO_TOKEN)")

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (docker stop, systemd) shuts down like Ctrl-C

    signal.signal(signal.SIGTERM, _terminate)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        service.stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
