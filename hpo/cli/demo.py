"""``hpo demo``: a whole study end to end on the embedded default.

Starts the server in-process (SQLite in the data directory) with local workers, submits
the digits demo study, follows it with a progress bar and prints the best trial.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpo.cli.output import console, fail, format_params, format_value, handle_errors
from search.status import TERMINAL

if TYPE_CHECKING:
    from hpo.client import Client
    from hpo.schemas import StudyPublic


def demo(
    trials: Annotated[int, typer.Option(min=1, help="Trials in the study.")] = 30,
    strategy: Annotated[
        str,
        typer.Option(help="Strategy: random, grid, bayes, evolution, hyperband or asha."),
    ] = "random",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Local workers (default: one per CPU core).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per trial.")] = 15,
    seed: Annotated[int | None, typer.Option(help="Strategy seed (default: random).")] = None,
    port: Annotated[int, typer.Option(help="API port (0: any free port).")] = 0,
) -> None:
    """Run the demo study: tune an MLP or a CNN on scikit-learn's digits, end to end.

    Example: hpo demo --trials 20 --strategy hyperband --workers 2
    """
    from hpo.client import Client
    from hpo.demo import demo_spec
    from hpo.embedded import EmbeddedService
    from hpo.settings import get_settings
    from worker.local import default_worker_count

    with handle_errors():
        settings = get_settings()
    n_workers = workers or settings.workers or default_worker_count()
    spec = demo_spec(trials=trials, strategy=strategy, epochs=epochs, parallel=n_workers, seed=seed)
    started = time.monotonic()
    console.print(
        f"[bold]HPO demo[/]: {trials} trials ({strategy}), {epochs} epochs each, "
        f"{n_workers} local worker(s); database {settings.resolved_database_url}"
    )
    service = EmbeddedService(settings, workers=n_workers, port=port)
    with handle_errors():
        service.start()
    try:
        with handle_errors(), Client(service.url) as client:
            study = client.create_study(spec)
            console.print(f"dashboard at [bold]{service.url}/[/] · API docs at {service.url}/docs")
            study = _follow(client, study)
            _summary(study, time.monotonic() - started, service.url)
    except KeyboardInterrupt:
        if service.executor is not None:
            service.executor.terminate()
        raise fail("interrupted", code=130) from None
    finally:
        service.stop()


def _follow(client: Client, study: StudyPublic) -> StudyPublic:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("trials", total=study.max_trials, best="—")
        while True:
            study = client.get_study(study.name)
            done = sum(study.counts.get(s, 0) for s in TERMINAL)
            best = format_value(study.best_trial.value) if study.best_trial else "—"
            progress.update(
                task,
                completed=done,
                total=max(study.n_trials, done) if study.status != "running" else study.max_trials,
                best=best,
            )
            if study.status != "running":
                return study
            time.sleep(0.3)


def _summary(study: StudyPublic, seconds: float, url: str) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(study.counts.items()))
    console.print(f"study [bold]{study.name}[/] {study.status} in {seconds:.1f}s ({counts})")
    best = study.best_trial
    if best is None:
        console.print("[red]no trial completed[/]")
        return
    console.print(
        f"best trial #{best.number}: {study.objective.metric} = "
        f"[bold green]{format_value(best.value)}[/]"
    )
    console.print(f"  parameters: {format_params(best.params)}")
    console.print(f"API: {url}/api/v1/studies/{study.name} (stopped with the demo)")
