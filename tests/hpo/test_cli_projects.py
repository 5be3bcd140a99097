"""``hpo project ...`` and ``hpo token create --user`` against a real server with auth
on: an admin makes a project and a user, the user's role decides what the CLI may do,
entrypoints outside the allowlist are refused naming the field, and the audit trail
lists it all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.services import embedded_settings
from typer.testing import CliRunner, Result

from hpo.cli.main import app
from hpo.embedded import EmbeddedService

ADMIN = "cli-projects-admin"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    settings = embedded_settings(tmp_path_factory.mktemp("cli-projects"), api_token=ADMIN)
    with EmbeddedService(settings, workers=0) as service:
        yield service


def _run(service: EmbeddedService, token: str, *args: str) -> Result:
    env = {"COLUMNS": "200", "HPO_SERVER_URL": service.url, "HPO_TOKEN": token}
    return CliRunner().invoke(app, list(args), env=env)


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _refused(result: Result, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.stderr, result.stderr


def _spec(tmp_path: Any, name: str, **train: Any) -> str:
    path = tmp_path / f"{name}.json"
    spec = {
        "name": name,
        "project": "vision",
        "objective": {"metric": "score", "direction": "maximize"},
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},
        "budget": {"max_trials": 2, "max_parallel": 1, "epochs": 1},
        "train": train or {"entrypoint": "team.vision.train:fit"},
    }
    path.write_text(json.dumps(spec))
    return str(path)


def test_projects_members_allowlists_and_the_audit_trail(secured, tmp_path) -> None:
    admin = lambda *a: _run(secured, ADMIN, *a)  # noqa: E731
    _ok(admin("project", "create", "vision", "-e", "team.vision", "--description", "CV"))
    ana = _ok(admin("token", "create", "ana-laptop", "--user", "ana")).stdout.strip()
    bob = _ok(admin("token", "create", "bob")).stdout.strip()  # user bob, by the token's name
    listed = json.loads(_ok(admin("token", "list", "--json")).stdout)
    assert {(t["name"], t["user"]) for t in listed} == {("ana-laptop", "ana"), ("bob", "bob")}

    _ok(admin("project", "add-member", "vision", "ana", "--role", "owner"))
    # Ana owns it now: she adds bob as a viewer, and changes the allowlist.
    added = _ok(_run(secured, ana, "project", "add-member", "vision", "bob", "--role", "viewer"))
    assert "bob is a viewer of project vision" in added.stdout
    _ok(_run(secured, ana, "project", "set", "vision", "-e", "team.vision", "-e", "team.common"))
    shown = _ok(_run(secured, ana, "project", "show", "vision")).stdout
    assert "team.common, team.vision" in shown and "ana" in shown and "bob" in shown

    # Bob, a viewer, sees the project but may change nothing.
    mine = json.loads(_ok(_run(secured, bob, "project", "list", "--json")).stdout)
    assert [(p["name"], p["role"]) for p in mine] == [("vision", "viewer")]
    _refused(_run(secured, bob, "study", "create", _spec(tmp_path, "by-bob")), "403", "member")
    _refused(_run(secured, bob, "project", "add-member", "vision", "bob"), "403", "owner")

    # Ana creates within the allowlist; outside it the field is named.
    _ok(_run(secured, ana, "study", "create", _spec(tmp_path, "by-ana")))
    outside = _spec(tmp_path, "outside", entrypoint="elsewhere.train:fit")
    _refused(_run(secured, ana, "study", "create", outside), "train.entrypoint", "team.vision")
    _refused(
        _run(secured, ana, "project", "add-member", "vision", "nobody"), "user", "no user named"
    )
    _refused(_run(secured, ana, "project", "remove-member", "vision", "ana"), "last owner")
    _ok(_run(secured, ana, "project", "remove-member", "vision", "bob"))
    _refused(_run(secured, bob, "project", "show", "vision"), "404")

    events = json.loads(_ok(_run(secured, ana, "project", "events", "vision", "--json")).stdout)
    done = [(e["actor"], e["action"]) for e in reversed(events)]
    assert done == [
        ("admin", "project.create"),
        ("admin", "member.add"),
        ("ana", "member.add"),
        ("ana", "project.update"),
        ("ana", "study.create"),
        ("ana", "member.remove"),
    ]
    table = _ok(_run(secured, ana, "project", "events", "vision")).stdout
    assert "study.create" in table and "by-ana" in table
    only = json.loads(
        _ok(_run(secured, ana, "project", "events", "--study", "by-ana", "--json")).stdout
    )
    assert [e["action"] for e in only] == ["study.create"]
    # Only an admin creates projects.
    _refused(_run(secured, ana, "project", "create", "hers"), "403", "admin")
