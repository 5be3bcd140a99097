"""Readable CLI tables and every metric, against a real server: at 80 and 160 columns a
trial's number, status and value are never cut; parameters wrap or are chosen with
--columns; chosen metrics get columns; ``study show`` stops at its default limit unless
--all; exports carry every reported metric."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest
from helpers.cli import ok
from helpers.services import embedded_settings
from typer.testing import CliRunner, Result

from hpo.cli.main import app
from hpo.embedded import EmbeddedService

TRIALS = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    settings = embedded_settings(tmp_path_factory.mktemp("cli-tables"))
    with EmbeddedService(settings, workers=0) as service:
        with httpx.Client(base_url=service.url + "/api/v1") as api:
            spec = {
                "name": "wide",
                "objective": {"metric": "score", "direction": "maximize"},
                "space": {
                    "learning_rate_of_the_first_optimizer": {
                        "type": "float",
                        "low": 1e-5,
                        "high": 1e-1,
                        "log": True,
                    },
                    "a_rather_long_parameter_name": {"type": "int", "low": 1, "high": 999},
                    "activation_function_choice": {
                        "type": "categorical",
                        "choices": ["relu", "gelu", "leaky_relu", "tanh"],
                    },
                },
                "strategy": {"name": "random", "seed": 5},
                "budget": {"max_trials": TRIALS, "max_parallel": TRIALS, "epochs": 2},
                "runner": "external",
            }
            assert api.post("/studies", json=spec).status_code == 201
            leased = api.post("/studies/wide/suggest", params={"count": TRIALS}).json()
            for lease in leased:
                n, tid = lease["number"], lease["trial_id"]
                report = {"attempt": 1, "step": 2, "value": n / 100, "metrics": {"loss": 9 - n}}
                assert api.post(f"/trials/{tid}/reports", json=report).status_code == 200
                status = "failed" if n % 7 == 3 else "completed"
                done = {"attempt": 1, "status": status, "value": 0.123456789 + n}
                done |= {"error": "CUDA out of memory"} if status == "failed" else {}
                assert api.post(f"/trials/{tid}/finish", json=done).status_code == 200
        yield service


def _hpo(server: EmbeddedService, width: int, *args: str) -> Result:
    env = {"COLUMNS": str(width), "HPO_SERVER_URL": server.url}
    return ok(CliRunner().invoke(app, list(args), env=env, terminal_width=width))


@pytest.mark.parametrize("width", [80, 160])
def test_status_and_value_are_never_cut(server: EmbeddedService, width: int) -> None:
    out = _hpo(server, width, "trials", "wide", "--metrics", "loss").stdout
    assert max(len(line) for line in out.splitlines()) <= width
    for n in range(TRIALS):
        status = "failed" if n % 7 == 3 else "completed"
        value = f"{0.123456789 + n:.4g}"
        rows = [line for line in out.splitlines() if f"│ {n:>2} │" in line or f" {n} │" in line]
        assert any(status in line and value in line for line in rows), (n, value, out)
    assert "loss" in out
    header = next(line for line in out.splitlines() if "status" in line)
    if width == 80:  # too narrow for a column each: one column, a line per parameter
        assert "parameters" in header and "note" in header
    else:
        assert "parameters" not in header and "a_rather_long_parameter_name" in header


def test_columns_choose_the_parameters_and_metrics_get_columns(server: EmbeddedService) -> None:
    out = _hpo(
        server,
        160,
        "trials",
        "wide",
        "--columns",
        "activation_function_choice",
        "--metrics",
        "loss",
    ).stdout
    header = next(line for line in out.splitlines() if "status" in line)
    assert "activation_function_choice" in header and "loss" in header
    assert "a_rather_long_parameter_name" not in out
    listed = json.loads(_hpo(server, 160, "trials", "wide", "--metrics", "loss", "--json").stdout)
    assert {t["number"]: t["metrics"]["loss"] for t in listed} == {n: 9 - n for n in range(TRIALS)}


def test_study_show_stops_at_its_limit_unless_all(server: EmbeddedService) -> None:
    shown = _hpo(server, 160, "study", "show", "wide").stdout
    assert f"showing the latest 20 of {TRIALS} trials (--all for every one)" in shown
    assert "│ 24 │" in shown.replace("  ", " ") or " 24 " in shown
    everything = _hpo(server, 160, "study", "show", "wide", "--all").stdout
    assert "showing the latest" not in everything


def test_exports_carry_every_reported_metric(server: EmbeddedService) -> None:
    out = _hpo(server, 160, "study", "export", "wide", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == TRIALS
    assert {int(r["number"]): float(r["metric_loss"]) for r in rows} == {
        n: 9 - n for n in range(TRIALS)
    }
