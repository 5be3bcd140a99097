"""``hpo project ...`` and ``hpo token create --user`` against a real server with auth
on: an admin makes a project and a user, the user's role decides what the CLI may do,
entrypoints outside the allowlist are refused naming the field, and the audit trail
lists it all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.cli import ok, one_line_error
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
    ok(admin("project", "create", "vision", "-e", "team.vision", "--description", "CV"))
    ana = ok(admin("token", "create", "ana-laptop", "--user", "ana")).stdout.strip()
    bob = ok(admin("token", "create", "bob")).stdout.strip()  # user bob, by the token's name
    listed = json.loads(ok(admin("token", "list", "--json")).stdout)
    assert {(t["name"], t["user"]) for t in listed} == {("ana-laptop", "ana"), ("bob", "bob")}

    ok(admin("project", "add-member", "vision", "ana", "--role", "owner"))
    # Ana owns it now: she adds bob as a viewer, and changes the allowlist.
    added = ok(_run(secured, ana, "project", "add-member", "vision", "bob", "--role", "viewer"))
    assert "bob is a viewer of project vision" in added.stdout
    ok(_run(secured, ana, "project", "set", "vision", "-e", "team.vision", "-e", "team.common"))
    shown = ok(_run(secured, ana, "project", "show", "vision")).stdout
    assert "team.common, team.vision" in shown and "ana" in shown and "bob" in shown

    # Bob, a viewer, sees the project but may change nothing.
    mine = json.loads(ok(_run(secured, bob, "project", "list", "--json")).stdout)
    assert [(p["name"], p["role"]) for p in mine] == [("vision", "viewer")]
    one_line_error(
        _run(secured, bob, "study", "create", _spec(tmp_path, "by-bob")), "403", "member"
    )
    one_line_error(_run(secured, bob, "project", "add-member", "vision", "bob"), "403", "owner")

    # Ana creates within the allowlist; outside it the field is named.
    ok(_run(secured, ana, "study", "create", _spec(tmp_path, "by-ana")))
    outside = _spec(tmp_path, "outside", entrypoint="elsewhere.train:fit")
    one_line_error(
        _run(secured, ana, "study", "create", outside), "train.entrypoint", "team.vision"
    )
    one_line_error(
        _run(secured, ana, "project", "add-member", "vision", "nobody"), "user", "no user named"
    )
    one_line_error(_run(secured, ana, "project", "remove-member", "vision", "ana"), "last owner")
    ok(_run(secured, ana, "project", "remove-member", "vision", "bob"))
    one_line_error(_run(secured, bob, "project", "show", "vision"), "404")

    events = json.loads(ok(_run(secured, ana, "project", "events", "vision", "--json")).stdout)
    done = [(e["actor"], e["action"]) for e in reversed(events)]
    assert done == [
        ("admin", "project.create"),
        ("admin", "member.add"),
        ("ana", "member.add"),
        ("ana", "project.update"),
        ("ana", "study.create"),
        ("ana", "member.remove"),
    ]
    table = ok(_run(secured, ana, "project", "events", "vision")).stdout
    assert "study.create" in table and "by-ana" in table
    only = json.loads(
        ok(_run(secured, ana, "project", "events", "--study", "by-ana", "--json")).stdout
    )
    assert [e["action"] for e in only] == ["study.create"]
    # Only an admin creates projects.
    one_line_error(_run(secured, ana, "project", "create", "hers"), "403", "admin")


def test_only_an_admin_sets_a_projects_gpu_quota_and_show_prints_it(secured) -> None:
    admin = lambda *a: _run(secured, ADMIN, *a)  # noqa: E731
    ok(admin("project", "create", "capped"))
    owner = ok(admin("token", "create", "cara-laptop", "--user", "cara")).stdout.strip()
    ok(admin("project", "add-member", "capped", "cara", "--role", "owner"))
    # an owner may change the project's settings, not lift or set its quota
    one_line_error(
        _run(secured, owner, "project", "set", "capped", "--gpu-quota", "64"), "403", "gpu_quota"
    )
    assert "no GPU quota" in ok(admin("project", "show", "capped")).stdout
    assert "GPU quota 16" in ok(admin("project", "set", "capped", "--gpu-quota", "16")).stdout
    shown = json.loads(ok(admin("project", "show", "capped", "--json")).stdout)
    assert shown["gpu_quota"] == 16
    assert "GPU quota 16" in ok(_run(secured, owner, "project", "show", "capped")).stdout
    assert "no GPU quota" in ok(admin("project", "set", "capped", "--no-gpu-quota")).stdout
    refused = admin("project", "set", "capped", "--gpu-quota", "0")
    assert refused.exit_code == 2 and "--gpu-quota" in refused.output  # a usage error
