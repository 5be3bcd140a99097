"""``hpo worker`` (the GPU worker daemon) and ``hpo workers`` (who is connected)."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer
from rich.table import Table

from hpo.cli.common import JsonOpt, ServerOpt, TokenOpt, make_client
from hpo.cli.output import console, fail, handle_errors, print_json
from hpo.vocabulary import DEFAULT_POOL, POOL_PATTERN


def worker(
    gpus: Annotated[
        str | None,
        typer.Option(help="GPUs to use, e.g. 0,1,2,3 (default: every visible GPU; none: CPU)."),
    ] = None,
    slots: Annotated[int, typer.Option(min=1, help="CPU slots when no GPU is used.")] = 1,
    pool: Annotated[
        str,
        typer.Option(
            envvar="HPO_WORKER_POOL", help="The pool this worker serves (a study's resources.pool)."
        ),
    ] = DEFAULT_POOL,
    server: ServerOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="HPO_WORKER_TOKEN", help="Worker token.", show_default=False
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", envvar="HPO_REDIS_URL", help="Redis with the trial queue."),
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Queue name (HPO_QUEUE_NAME).")] = None,
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
) -> None:
    """Run trials of one pool from the queue, of any size: each trial gets the GPUs it
    asks for (resources.gpus: N whole ones, or a share of one) in a process pinned to
    them, and never more than this machine has.

    Example: HPO_REDIS_URL=redis://redis:6379/0 hpo worker --pool a100 --gpus 0,1 --server http://hpo:8765
    """
    from hpo.settings import get_settings
    from worker.daemon import DaemonConfig, run_daemon
    from worker.gpus import cuda_device_count, parse_gpus, plan_slots
    from worker.local import default_worker_count

    with handle_errors():
        settings = get_settings()
        redis_url = redis_url or settings.redis_url
        if not redis_url:
            raise fail("no Redis to take trials from: set HPO_REDIS_URL or pass --redis-url")
        if not re.fullmatch(POOL_PATTERN, pool):
            raise fail(
                f"--pool: {pool!r} is not a pool name (letters, digits, '_', '.', '-'; "
                "at most 64, starting with a letter or digit)"
            )
        chosen = parse_gpus(gpus)
        # GPUs are counted (which imports torch) only when the plan needs the count: with
        # --gpus none, or CUDA_VISIBLE_DEVICES set, it does not.
        counted = chosen != [] and "CUDA_VISIBLE_DEVICES" not in os.environ
        count = cuda_device_count() if counted else 0
        plan = plan_slots(
            chosen,
            environ=os.environ,
            device_count=count,
            cpu_slots=slots,
            cores=default_worker_count(),
        )
    # Slot processes read their settings from the environment they inherit.
    if server:
        os.environ["HPO_SERVER_URL"] = server
    if token:
        os.environ["HPO_WORKER_TOKEN"] = token
    os.environ["HPO_REDIS_URL"] = redis_url
    names = ", ".join(f"{s.name} ({s.device})" for s in plan)
    console.print(
        f"hpo worker: pool {pool}, {len(plan)} slot(s): {names}; server {get_settings().server_url}"
    )
    config = DaemonConfig(
        redis_url=redis_url,
        queue_name=queue or settings.queue_name,
        pool=pool,
        slots=tuple(plan),
        burst=burst,
    )
    raise typer.Exit(run_daemon(config))


def workers(
    server: ServerOpt = None,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="Include stopped workers.")] = False,
) -> None:
    """List workers by pool: host, devices, current trials, last heartbeat (stale ones
    marked).

    Example: hpo workers --server http://hpo.internal:8765
    """
    with handle_errors(), make_client(server, token) as client:
        rows = client.list_workers(include_stopped=all_)
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no workers connected: start one with [bold]hpo worker[/]")
        return
    pools: dict[str, int] = {}
    for w in rows:
        pools[w.pool] = pools.get(w.pool, 0) + 1
    title = "Workers: " + ", ".join(f"{n} in pool {p}" for p, n in sorted(pools.items()))
    table = Table(title=title, header_style="bold")
    for col in ("pool", "name", "host", "devices", "status", "trials", "last heartbeat"):
        table.add_column(col)
    previous = None
    for w in sorted(rows, key=lambda w: (w.pool, w.name)):
        if previous is not None and w.pool != previous:
            table.add_section()
        previous = w.pool
        beat = f"{w.heartbeat_at:%Y-%m-%d %H:%M:%S}" + (" [red](stale)[/]" if w.stale else "")
        table.add_row(
            w.pool,
            w.name,
            w.host,
            ",".join(w.devices),
            w.status,
            ",".join(map(str, w.current_trials)) or "—",
            beat,
        )
    console.print(table)
