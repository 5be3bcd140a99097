"""The ``hpo`` command against a real server over HTTP.

Most commands run in-process with Typer's CliRunner (fast); ``watch`` runs as the
installed ``hpo`` command in a subprocess, since it polls until the study ends and must
exit cleanly on Ctrl-C (a real SIGINT). One server per module (SQLite, no workers): the
tests drive trials over HTTP as a worker would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from helpers.cli import ok, one_line_error
from helpers.services import embedded_settings
from helpers.signals import hear_ctrl_c
from helpers.studies import multi_fidelity_study
from typer.testing import CliRunner, Result

from hpo.cli.main import app
from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.schemas import FinishIn, ReportIn

HPO = str(Path(sys.executable).parent / "hpo")
ADMIN = "cli-admin-token"
#: Commands that run locally, not against a server (no --server/--token/--json).
LOCAL = {
    "server",
    "worker",
    "demo",
    "db upgrade",
    "db current",
    "db downgrade",
    "db revision",
    "db token",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    with EmbeddedService(embedded_settings(tmp_path_factory.mktemp("cli")), workers=0) as service:
        yield service


@pytest.fixture
def sdk(server: EmbeddedService) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


def hpo(server: EmbeddedService | None, *args: str, input: str | None = None) -> Result:
    """Run ``hpo ARGS`` in-process against ``server`` (via HPO_SERVER_URL)."""
    env = {"COLUMNS": "200", "HPO_SERVER_URL": server.url if server else ""}
    return CliRunner().invoke(app, list(args), env=env, input=input)


def run_queued(sdk: Client, name: str, value: float = 0.5) -> int:
    """Run every queued trial of a study to completion (value + number / 100)."""
    queued = sdk.list_trials(name, status="queued")
    for t in queued:
        spec = sdk.start_trial(t.id, worker="cli:1")
        sdk.report(t.id, ReportIn(attempt=spec.attempt, step=0, value=value))
        v = value + t.number / 100
        sdk.finish_trial(t.id, FinishIn(attempt=spec.attempt, status="completed", value=v))
    return len(queued)


def complete(sdk: Client, name: str, wait) -> None:
    wait(lambda: run_queued(sdk, name) >= 0 and sdk.get_study(name).status == "completed")


def _leaves(command: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf command of a (Typer or click) group, by its space-separated path."""
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        for name, sub in subcommands.items():
            yield from _leaves(sub, f"{prefix} {name}".strip())
    else:
        yield prefix, command


def test_every_command_has_help_with_an_example_and_the_common_options() -> None:
    commands = dict(_leaves(typer.main.get_command(app)))
    expected = {
        "study create", "study list", "study show", "study watch", "study pause",
        "study resume", "study stop", "study update", "study delete", "study export",
        "trials", "workers", "token create", "token list", "token delete",
    }  # fmt: skip
    assert expected <= set(commands)
    for path, command in commands.items():
        result = ok(hpo(None, *path.split(), "--help"))
        assert "Example:" in result.stdout, path
        if path not in LOCAL:
            options = {o for p in command.params for o in p.opts}
            assert {"--server", "--token", "--json"} <= options, path


def test_study_lifecycle(server, sdk, make_spec, tmp_path: Path) -> None:
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(make_spec("cli-life")))
    created = ok(hpo(server, "study", "create", str(spec_file)))
    assert "created study cli-life" in created.stdout

    listed = json.loads(ok(hpo(server, "study", "list", "--json")).stdout)
    assert "cli-life" in {s["name"] for s in listed}
    assert "cli-life" in ok(hpo(server, "study", "list")).stdout

    paused = ok(hpo(server, "study", "pause", "cli-life"))
    assert "cli-life is paused" in paused.stdout
    resumed = json.loads(ok(hpo(server, "study", "resume", "cli-life", "--json")).stdout)
    assert resumed["status"] == "running"
    updated = ok(hpo(server, "study", "update", "cli-life", "--max-trials", "7"))
    assert "0/7 done" in updated.stdout or "/7 done" in updated.stdout
    assert sdk.get_study("cli-life").max_trials == 7
    one_line_error(hpo(server, "study", "update", "cli-life"), "nothing to change")

    run_queued(sdk, "cli-life", 0.9)
    shown = ok(hpo(server, "study", "show", "cli-life"))
    assert "best: trial #" in shown.stdout and "★" in shown.stdout
    stopped = json.loads(ok(hpo(server, "study", "stop", "cli-life", "--json")).stdout)
    assert stopped["status"] == "stopped"
    one_line_error(hpo(server, "study", "resume", "cli-life"), "409", "stopped")


def test_errors_are_one_line_naming_the_field(server, make_spec, tmp_path: Path) -> None:
    one_line_error(hpo(server, "study", "show", "nope"), "404", "nope")
    one_line_error(hpo(server, "trials", "nope"), "404")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(make_spec("cli-bad", budget={"max_trials": 0})))
    one_line_error(hpo(server, "study", "create", str(bad)), "budget.max_trials")
    unreachable = CliRunner().invoke(app, ["study", "list", "--server", "http://127.0.0.1:9"])
    one_line_error(unreachable, "cannot reach the HPO server")


def test_trials_table_filter_sort_limit(server, sdk, make_spec, wait) -> None:
    sdk.create_study(make_spec("cli-trials", budget={"max_trials": 4, "max_parallel": 2}))
    complete(sdk, "cli-trials", wait)

    best_first = json.loads(
        ok(hpo(server, "trials", "cli-trials", "--sort", "value", "--json")).stdout
    )
    assert [t["number"] for t in best_first] == [3, 2, 1, 0]  # maximize: best first
    ascending = ok(
        hpo(server, "trials", "cli-trials", "--sort", "value", "--order", "asc", "--json")
    )
    assert [t["number"] for t in json.loads(ascending.stdout)] == [0, 1, 2, 3]

    table = ok(hpo(server, "trials", "cli-trials", "--sort", "value", "--limit", "2"))
    assert "★" in table.stdout  # the best trial is first and marked
    for column in ("val_accuracy", "lr", "batch_size", "units", "attempt", "worker", "duration"):
        assert column in table.stdout
    assert "cli:1" in table.stdout
    assert "showing 2 of 4 trials" in table.stdout

    none = ok(hpo(server, "trials", "cli-trials", "--status", "failed"))
    assert "no failed trials" in none.stdout
    assert hpo(server, "trials", "cli-trials", "--sort", "bogus").exit_code == 2


def _finish(sdk: Client, trial_id: int) -> None:
    """Run one queued trial to completion over HTTP, as a worker would."""
    spec = sdk.start_trial(trial_id, worker="cli:1")
    sdk.finish_trial(trial_id, FinishIn(attempt=spec.attempt, status="completed", value=0.5))


def test_trials_pages_follow_cursors_under_concurrent_finishes(
    server, sdk, make_spec, wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past one page, ``hpo trials`` follows the server's cursors: trials that finish
    while it pages land ahead of it (``--order desc``) and neither repeat a row nor
    shift the pages, as a second page by offset would (it would repeat the first
    page's last rows)."""
    name = "cli-pages"
    sdk.create_study(make_spec(name, budget={"max_trials": 10, "max_parallel": 10}))
    queued = wait(lambda: (t := sdk.list_trials(name, status="queued")) and len(t) == 10 and t)
    for t in queued[:7]:
        _finish(sdk, t.id)
    late = [t.id for t in queued[7:9]]  # higher numbers: ahead of the listing in desc order

    seen: list[httpx.QueryParams] = []

    class FinishAfterFirstPage(httpx.HTTPTransport):
        """The real server over HTTP; after the first trials page is answered, two
        more trials finish before the CLI asks for the next page."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.url.path.endswith(f"/studies/{name}/trials"):
                seen.append(request.url.params)
                if len(seen) == 1:
                    for trial_id in late:
                        _finish(sdk, trial_id)
            return response

    def client_with_spy(server_url: str | None, token: str | None) -> Client:
        return Client(server_url, token, transport=FinishAfterFirstPage())

    monkeypatch.setattr("hpo.cli.trials.make_client", client_with_spy)
    monkeypatch.setattr("hpo.cli.trials.PAGE_SIZE", 3)  # 7 rows: pages of 3, 3, 1
    args = ("trials", name, "--status", "completed", "--order", "desc", "--json")
    listed = json.loads(ok(hpo(server, *args)).stdout)

    assert [t["number"] for t in listed] == [6, 5, 4, 3, 2, 1, 0]
    assert len(seen) == 3
    assert "cursor" not in seen[0]
    for params in seen[1:]:  # the server saw cursor pages, not offset ones
        assert params.get("cursor") and params.get("offset") == "0", params

    # --limit still caps the listing across pages (and the note counts every match).
    table = ok(hpo(server, "trials", name, "--status", "completed", "--limit", "5"))
    assert "showing 5 of 9 trials" in table.stdout


def test_export_csv_json_and_tensorboard(server, sdk, make_spec, wait, tmp_path) -> None:
    sdk.create_study(make_spec("cli-exp", budget={"max_trials": 2, "max_parallel": 2}))
    complete(sdk, "cli-exp", wait)

    rows = list(csv.DictReader(io.StringIO(ok(hpo(server, "study", "export", "cli-exp")).stdout)))
    assert [r["number"] for r in rows] == ["0", "1"]
    assert {"param_lr", "param_units", "duration_s", "worker"} <= set(rows[0])

    out = tmp_path / "sub" / "trials.json"
    result = ok(hpo(server, "study", "export", "cli-exp", "--format", "json", "-o", str(out)))
    assert f"wrote 2 trials to {out}" in result.stdout
    assert [r["status"] for r in json.loads(out.read_text())] == ["completed", "completed"]

    tb = tmp_path / "tb"
    summary = ok(
        hpo(server, "study", "export", "cli-exp", "--format", "tensorboard", str(tb), "--json")
    )
    assert json.loads(summary.stdout) == {"format": "tensorboard", "path": str(tb), "trials": 2}
    assert list((tb / "trial-00001").glob("events.out.tfevents.*"))
    one_line_error(
        hpo(server, "study", "export", "cli-exp", "--format", "tensorboard"),
        "needs an output directory",
    )


def test_watch_of_a_finished_study_exits_at_once(server, sdk, make_spec, wait) -> None:
    sdk.create_study(make_spec("cli-w0", budget={"max_trials": 2, "max_parallel": 2}))
    complete(sdk, "cli-w0", wait)
    result = ok(hpo(server, "study", "watch", "cli-w0"))
    assert "100%" in result.stdout and "2/2 done" in result.stdout
    assert "study cli-w0 is completed; best trial #1" in result.stdout
    lines = ok(hpo(server, "study", "watch", "cli-w0", "--json")).stdout.splitlines()
    assert [json.loads(line)["done"] for line in lines] == [2]
    one_line_error(hpo(server, "study", "watch", "nope"), "404")


def _spawn(server: EmbeddedService, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HPO_SERVER_URL": server.url, "COLUMNS": "200"}
    return subprocess.Popen(
        [HPO, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=hear_ctrl_c,  # the test's Ctrl-C must arrive
    )


def test_watch_follows_a_study_until_it_completes(server, sdk, make_spec) -> None:
    sdk.create_study(make_spec("cli-w1", budget={"max_trials": 4, "max_parallel": 2}))
    results: list[Result] = []
    watcher = threading.Thread(
        target=lambda: results.append(
            hpo(server, "study", "watch", "cli-w1", "--json", "--interval", "0.1")
        )
    )
    watcher.start()
    deadline = time.monotonic() + 60
    time.sleep(0.3)  # a few polls of the running study first
    while watcher.is_alive() and time.monotonic() < deadline:
        if sdk.list_trials("cli-w1", status="queued"):
            time.sleep(0.2)  # let a poll see each step
            run_queued(sdk, "cli-w1")
        time.sleep(0.05)
    watcher.join(timeout=30)
    polls = [json.loads(line) for line in ok(results[0]).stdout.splitlines()]
    assert polls[0]["status"] == "running" and polls[0]["done"] == 0
    assert polls[-1]["status"] == "completed" and polls[-1]["done"] == 4
    assert polls[-1]["best"]["number"] == 3
    done = [p["done"] for p in polls]
    assert done == sorted(done) and len(set(done)) >= 3  # it saw the progress


def test_watch_ctrl_c_exits_cleanly_and_the_study_goes_on(server, sdk, make_spec) -> None:
    sdk.create_study(make_spec("cli-w2"))
    proc = _spawn(server, "study", "watch", "cli-w2", "--json", "--interval", "0.2")
    try:
        assert json.loads(proc.stdout.readline())["status"] == "running"  # type: ignore[union-attr]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "stopped watching; study cli-w2 goes on" in err
    assert "Traceback" not in err
    assert sdk.get_study("cli-w2").status == "running"


def test_delete_asks_unless_yes(server, sdk, make_spec) -> None:
    sdk.create_study(make_spec("cli-del"))
    one_line_error(hpo(server, "study", "delete", "cli-del"), "pass --yes")
    one_line_error(hpo(server, "study", "delete", "cli-del", input="n\n"), "cancelled")
    assert sdk.get_study("cli-del").name == "cli-del"
    # (the DELETE route is part of the same change on the server side)
    deleted = ok(hpo(server, "study", "delete", "cli-del", input="y\n"))
    assert "Delete study 'cli-del'" in deleted.stdout
    assert "deleted study cli-del" in deleted.stdout
    sdk.create_study(make_spec("cli-del2"))
    as_json = json.loads(ok(hpo(server, "study", "delete", "cli-del2", "--yes", "--json")).stdout)
    assert as_json["deleted"] == "cli-del2"
    one_line_error(hpo(server, "study", "show", "cli-del2"), "404")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    settings = embedded_settings(tmp_path_factory.mktemp("cli-auth"), api_token=ADMIN)
    with EmbeddedService(settings, workers=0) as service:
        yield service


def test_token_create_list_delete(secured: EmbeddedService) -> None:
    def as_admin(*args: str, input: str | None = None) -> Result:
        env = {"COLUMNS": "200", "HPO_SERVER_URL": secured.url, "HPO_TOKEN": ADMIN}
        return CliRunner().invoke(app, list(args), env=env, input=input)

    created = ok(as_admin("token", "create", "ci-box", "--scope", "worker"))
    secret = created.stdout.strip()  # stdout holds the token alone, printed once
    assert secret.startswith("hpo_") and "\n" not in secret
    assert "not shown again" in created.stderr
    listed = json.loads(ok(as_admin("token", "list", "--json")).stdout)
    assert [(t["name"], t["scope"]) for t in listed] == [("ci-box", "worker")]
    assert secret not in ok(as_admin("token", "list")).stdout
    user = json.loads(ok(as_admin("token", "create", "alice", "--json")).stdout)
    assert user["scope"] == "user" and user["token"].startswith("hpo_")

    # The new token works as --token; a worker token may not list studies.
    listed_as_user = CliRunner().invoke(
        app, ["study", "list", "--server", secured.url, "--token", user["token"]]
    )
    assert ok(listed_as_user).stdout
    worker = CliRunner().invoke(app, ["study", "list", "--server", secured.url, "--token", secret])
    one_line_error(worker, "403")

    one_line_error(as_admin("token", "delete", "alice"), "pass --yes")
    one_line_error(as_admin("token", "delete", "alice", input="n\n"), "cancelled")
    ok(as_admin("token", "delete", "alice", input="y\n"))
    assert "revoked token ci-box" in ok(as_admin("token", "delete", "ci-box", "--yes")).stdout
    one_line_error(as_admin("token", "delete", "ci-box", "--yes"), "404")
    revoked = CliRunner().invoke(
        app, ["study", "list", "--server", secured.url, "--token", user["token"]]
    )
    one_line_error(revoked, "401")
    one_line_error(CliRunner().invoke(app, ["token", "list", "--server", secured.url]), "401")


def test_a_multi_fidelity_trials_table_shows_budget_rung_parent_and_the_best() -> None:
    from rich.console import Console

    from hpo.cli.output import best_budget_note, trials_table

    study, trials = multi_fidelity_study()
    table = trials_table(study, trials)
    assert [c.header for c in table.columns][-4:-1] == ["budget", "rung", "parent"]
    console = Console(record=True, width=200)
    console.print(table)
    lines = console.export_text().splitlines()
    starred = [line for line in lines if "★" in line]
    assert len(starred) == 1 and "#1" in starred[0] and "0.9472" in starred[0]
    assert best_budget_note(study) == ""  # the best trained the full budget
    early = study.model_copy(update={"best_budget": 3})
    assert "at 3 of 9 epochs" in best_budget_note(early)
