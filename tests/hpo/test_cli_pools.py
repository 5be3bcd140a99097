"""Pools in the CLI against a real server: ``hpo workers`` groups workers by pool,
``hpo study show`` says why a study whose pool has no worker waits, and ``hpo worker
--pool`` refuses a name that is not a pool's, naming the option."""

from __future__ import annotations

import json

import httpx
from helpers.cli import ok, one_line_error
from typer.testing import CliRunner, Result

from hpo.cli.main import app


def _run(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "HPO_SERVER_URL": url})


def test_workers_by_pool_and_a_waiting_study(live_server, api: httpx.Client, tmp_path) -> None:
    for name, pool in (("gpu-box:1", "a100"), ("gpu-box:2", "a100"), ("cpu-box:1", "default")):
        body = {"name": name, "host": name.split(":")[0], "pid": 1, "devices": ["0"], "pool": pool}
        assert api.post("/workers", json=body).status_code in (200, 201)
    out = ok(_run(live_server.url, "workers")).output
    assert "2 in pool a100, 1 in pool default" in out
    rows = [line for line in out.splitlines() if "box:" in line]
    assert [("a100" in r, "default" in r) for r in rows] == [(1, 0), (1, 0), (0, 1)]

    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "name": "waits",
                "space": {"lr": {"type": "float", "low": 0.01, "high": 0.1}},
                "resources": {"pool": "h100"},
            }
        )
    )
    ok(_run(live_server.url, "study", "create", str(spec)))
    shown = ok(_run(live_server.url, "study", "show", "waits")).output
    assert "pool h100" in shown
    assert "waiting: no worker serves pool 'h100'" in shown


def test_worker_refuses_a_bad_pool_name() -> None:
    result = CliRunner().invoke(
        app, ["worker", "--pool", "no spaces", "--redis-url", "redis://127.0.0.1:1/0"]
    )
    one_line_error(result, "--pool", "not a pool name")
