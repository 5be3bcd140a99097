"""Whole system on the embedded default: server + local worker processes + CLI.

A small study runs to the end through real worker processes; the CLI, run as a user
runs it (the installed ``hpo`` command in a subprocess), lists, shows and creates
studies and reports bad input without a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.signals import hear_ctrl_c

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.settings import Settings

pytestmark = pytest.mark.e2e
HPO = str(Path(sys.executable).parent / "hpo")


def hpo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HPO, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def fleet(sqlite_settings: Settings):
    with EmbeddedService(sqlite_settings, workers=2) as service:
        yield service


def test_small_study_runs_to_the_end_through_local_workers(
    fleet: EmbeddedService, make_spec, wait, tmp_path
) -> None:
    spec = make_spec(
        "e2e",
        budget={"max_trials": 6, "max_parallel": 2, "epochs": 3},
        train={"model": "mlp", "dataset": "digits", "params": {"optimizer": "adam"}},
    )
    with Client(fleet.url) as client:
        # Both processes up first (imports take seconds on a busy machine; a fast
        # study could otherwise end before the second one is ready).
        wait(lambda: len(client.list_workers()) == 2, timeout=120)
        client.create_study(spec)
        study = wait(
            lambda: (s := client.get_study("e2e")).status == "completed" and s, timeout=240
        )
        trials = client.all_trials("e2e")
        assert len(trials) == 6
        assert {t.status for t in trials} == {"completed"}
        assert all(t.value is not None and 0.0 <= t.value <= 1.0 for t in trials)
        assert all(t.attempt == 1 for t in trials)
        assert len({t.worker for t in trials}) == 2  # both worker processes took trials
        assert study.best_trial is not None
        assert study.best_trial.value == max(t.value for t in trials)
        assert len(client.get_trial("e2e", 0).reports) == 3

    env = {"HPO_SERVER_URL": fleet.url}
    listed = hpo("study", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "e2e" in listed.stdout and "completed" in listed.stdout

    shown = hpo("study", "show", "e2e", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "★" in shown.stdout
    assert f"#{study.best_trial.number}" in shown.stdout

    as_json = hpo("study", "list", "--json", env=env)
    assert as_json.returncode == 0
    assert '"name": "e2e"' in as_json.stdout

    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            make_spec("from-cli", budget={"max_trials": 1, "max_parallel": 1, "epochs": 1})
        )
    )
    created = hpo("study", "create", str(good), "--server", fleet.url)
    assert created.returncode == 0, created.stderr
    assert "from-cli" in created.stdout

    bad = tmp_path / "bad.yaml"
    bad_spec = make_spec("bad-cli")
    bad_spec["space"]["lr"] = {"type": "float", "low": -1, "high": 1, "log": True}
    bad.write_text(yaml.safe_dump(bad_spec))
    refused = hpo("study", "create", str(bad), env=env)
    assert refused.returncode == 1
    assert "space.lr" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout

    dup = hpo("study", "create", str(good), env=env)
    assert dup.returncode == 1
    assert "already exists" in dup.stderr

    missing = hpo("study", "show", "nope", env=env)
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_cli_reports_an_unreachable_server_without_a_traceback() -> None:
    out = hpo("study", "list", "--server", "http://127.0.0.1:9")
    assert out.returncode == 1
    assert "cannot reach" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_reports_a_missing_spec_file_without_a_traceback(tmp_path: Path) -> None:
    out = hpo("study", "create", str(tmp_path / "absent.yaml"), "--server", "http://127.0.0.1:9")
    assert out.returncode == 1
    assert "absent.yaml" in out.stderr
    assert "Traceback" not in out.stderr


def test_db_upgrade_current_downgrade_through_the_cli(tmp_path: Path) -> None:
    env = {"HPO_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    from alembic.script import ScriptDirectory

    from server.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(env["HPO_DATABASE_URL"])).get_current_head()
    up = hpo("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert head in up.stdout
    assert head in hpo("db", "current", env=env).stdout
    # The operator's bootstrap token: printed once, a duplicate is one clear line.
    made = hpo("db", "token", "ops", "--scope", "admin", env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("hpo_")
    again = hpo("db", "token", "ops", env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    down = hpo("db", "downgrade", "base", env=env)
    assert down.returncode == 0, down.stderr
    assert "base" in hpo("db", "current", env=env).stdout


def test_demo_command_runs_a_study_end_to_end(tmp_path: Path) -> None:
    out = hpo(
        "demo",
        "--trials",
        "3",
        "--epochs",
        "2",
        "--workers",
        "2",
        "--seed",
        "5",
        env={"HPO_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "completed" in out.stdout
    assert "best trial #" in out.stdout
    assert "val_accuracy" in out.stdout
    assert "/api/v1/studies/digits-demo-" in out.stdout
    assert (tmp_path / "hpo.db").exists()  # SQLite in the data directory


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_hpo_server_serves_the_api_and_openapi_docs(tmp_path: Path, wait, stop_signal) -> None:
    import signal
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HPO_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [HPO, "server", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=hear_ctrl_c,  # the test's Ctrl-C must arrive
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait(healthy, timeout=60, interval=0.2)
        assert httpx.get(f"{url}/docs").status_code == 200
        paths = httpx.get(f"{url}/openapi.json").json()["paths"]
        assert "/api/v1/studies" in paths
        assert "/api/v1/trials/{trial_id}/start" in paths
        assert httpx.get(f"{url}/api/v1/studies").json() == []
    finally:
        proc.send_signal(getattr(signal, stop_signal))
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["server"], {"HPO_PORT": "abc"}, "port"),
        (["db", "upgrade"], {"HPO_DATABASE_URL": "notaurl"}, "database error"),
        (["db", "upgrade", "nosuchrev"], {}, "nosuchrev"),
        (["study", "show", "x", "--server", "http://[::1"], {}, "invalid server URL"),
    ],
)
def test_cli_errors_are_one_line_without_a_traceback(args, env, expected, tmp_path: Path) -> None:
    out = hpo(*args, env={"HPO_DATA_DIR": str(tmp_path), **env}, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert expected in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_study_create_validates_locally_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "dates.yaml"
    spec.write_text("name: d\nspace:\n  activation: [2020-01-01, relu]\n")
    out = hpo("study", "create", str(spec), "--server", "http://127.0.0.1:9")
    assert out.returncode == 1
    assert "space.activation" in out.stderr
    assert "Traceback" not in out.stderr
