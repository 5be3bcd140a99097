"""A bad spec gets every error at once, on both databases: each problem of the space,
of the other sections and every unknown key, the misspelt ones with the key they most
likely meant; in the 422 body as a list and in the CLI, one line each."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hpo.cli.main import app

BAD = {
    "name": "many-errors",
    "space": {
        "lr": {"tpye": "float", "low": 0.1, "high": 1},
        "units": {"type": "int", "low": 5, "high": 1},
        "act": {"type": "categorical"},
        "drop": {"type": "float", "low": 0.0, "hihg": 0.5},
    },
    "budjet": {},
    "budget": {"max_trails": 3, "max_parallel": 0},
}
EXPECTED = {
    "space.lr.tpye": "unknown key; did you mean 'type'?",
    "space.units.low": "low must be less than high (low=5, high=1)",
    "space.act.choices": "is required for type categorical",
    "space.drop.hihg": "unknown key for type float; did you mean 'high'?",
    "budget.max_parallel": "Input should be greater than or equal to 1",
    "budget.max_trails": "Extra inputs are not permitted; did you mean 'max_trials'?",
    "budjet": "Extra inputs are not permitted; did you mean 'budget'?",
}


def test_every_error_is_reported_at_once_with_did_you_mean(api) -> None:
    answer = api.post("/studies", json=BAD)
    assert answer.status_code == 422
    found = {d["field"]: d["msg"] for d in answer.json()["detail"]}
    for field, message in EXPECTED.items():
        assert found.get(field, "").startswith(message), (field, found)
    assert "space.lr.type" not in found  # the misspelling, not "type is required"
    assert api.get("/studies").json() == []  # nothing half-written


def test_the_cli_prints_every_error(live_server, tmp_path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(BAD))
    result = CliRunner().invoke(
        app, ["study", "create", str(spec)], env={"HPO_SERVER_URL": live_server.url}
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    for field in EXPECTED:
        assert field in result.stderr, result.stderr
