"""Projects and roles over real HTTP: a walk over every API route and dashboard page
with two projects x three roles, plus an admin and a worker, on both databases.

Project A ("alpha") has a viewer, a member and an owner; so has project B ("bravo").
Every route is called on project A's objects by everyone, and the answer must be the
documented one:

* a user of B (any role) gets 404, as for an object that does not exist, and lists
  never name A's studies or project;
* a viewer of A reads, and gets 403 for a change; a member also changes studies; only
  the owner (or the admin) manages members and settings;
* only the admin manages tokens and creates projects; a worker's token runs trials and
  registers workers, nothing else (403).

"Allowed" means past access control: neither 401, 403 nor 404 (a 409 for a trial that
is not queued is allowed: the state said no, not the role). Routes that destroy their
target get a fresh one per caller. A route added to the API without a line in ROUTES
fails ``test_the_walk_covers_every_route``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hpo.embedded import EmbeddedService
from hpo.settings import Settings

ADMIN = "admin-secret-token"
WORKER = "worker-secret-token"
ROLES = ("viewer", "member", "owner")
RANK = {role: rank for rank, role in enumerate(ROLES)}
_fresh = itertools.count()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """The server, its two projects with a user per role, and project A's objects."""

    service: EmbeddedService
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)  # caller -> token
    trial_id: int = 0

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=_bearer(self.tokens[caller]), **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.call("admin", method, path, **kwargs)
        assert answer.status_code < 300, (method, path, answer.text)
        return answer

    def study(self, project: str, prefix: str = "alpha-tmp", **overrides: Any) -> str:
        """A new running study of ``project`` whose trials ask/tell callers lease."""
        name = f"{prefix}-{next(_fresh)}"
        spec = {
            "name": name,
            "project": project,
            "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
            "strategy": {"name": "random", "seed": 1},
            "budget": {"max_trials": 50, "max_parallel": 50, "epochs": 2},
            "runner": "external",
        } | overrides
        self.admin("POST", "/api/v1/studies", json=spec)
        return name

    def trial(self, study: str = "alpha-study") -> int:
        """A trial of ``study`` leased to an ask/tell caller (running, attempt 1)."""
        leased = self.admin("POST", f"/api/v1/studies/{study}/suggest").json()
        return int(leased[0]["trial_id"])


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    secured = settings.model_copy(update={"api_token": ADMIN, "worker_token": WORKER})
    with (
        EmbeddedService(secured, workers=0) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        w = World(service, http, {"admin": ADMIN, "worker": WORKER})
        for project in ("alpha", "bravo"):
            w.admin("POST", "/api/v1/projects", json={"name": project, "entrypoints": ["team"]})
            for role in ROLES:
                user = f"{project}-{role}"
                created = w.admin("POST", "/api/v1/tokens", json={"name": user, "scope": "user"})
                w.tokens[user] = created.json()["token"]
                body = {"user": user, "role": role}
                w.admin("POST", f"/api/v1/projects/{project}/members", json=body)
        # The two studies every read goes to.
        w.admin("POST", "/api/v1/studies", json=_spec("alpha-study", "alpha"))
        w.admin("POST", "/api/v1/studies", json=_spec("bravo-study", "bravo"))
        w.trial_id = w.trial()
        yield w


def _spec(name: str, project: str) -> dict[str, Any]:
    return {
        "name": name,
        "project": project,
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        "strategy": {"name": "random", "seed": 1},
        "budget": {"max_trials": 500, "max_parallel": 500, "epochs": 2},
        "runner": "external",
    }


#: What a call needs: a role in project A, or one of the scopes.
Need = str  # "viewer" | "member" | "owner" | "admin" | "worker" | "user"
#: Builds a request for one caller: (path, keyword arguments of httpx's request).
Prepare = Callable[[World], tuple[str, dict[str, Any]]]


def _at(path: str, **kwargs: Any) -> Prepare:
    return lambda w: (path.format(trial=w.trial_id), kwargs)


def _fresh_study(action: str) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        return f"/api/v1/studies/{w.study('alpha')}{action}", {}

    return prepare


def _fresh_trial(action: str, body: Callable[[int], dict[str, Any]]) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        trial_id = w.trial()
        return f"/api/v1/trials/{trial_id}{action}", {"json": body(trial_id)}

    return prepare


def _fresh_token(w: World) -> tuple[str, dict[str, Any]]:
    name = f"tmp-{next(_fresh)}"
    w.admin("POST", "/api/v1/tokens", json={"name": name, "scope": "worker"})
    return f"/api/v1/tokens/{name}", {}


def _fresh_member(w: World) -> tuple[str, dict[str, Any]]:
    name = f"tmp-{next(_fresh)}"
    w.admin("POST", "/api/v1/tokens", json={"name": name, "scope": "user"})
    w.admin("POST", "/api/v1/projects/alpha/members", json={"user": name, "role": "viewer"})
    return f"/api/v1/projects/alpha/members/{name}", {}


HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["study.failed"]}


def _fresh_hook(action: str) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        hook = w.admin("POST", "/api/v1/projects/alpha/webhooks", json=HOOK).json()
        return f"/api/v1/projects/alpha/webhooks/{hook['id']}{action}", {}

    return prepare


def _new_study(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/studies", {"json": _spec(f"alpha-new-{next(_fresh)}", "alpha")}


def _new_project(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/projects", {"json": {"name": f"p-{next(_fresh)}"}}


REPORT = {"attempt": 1, "step": 1, "value": 0.5}
#: (method, route, what it needs, how to build the call).
ROUTES: list[tuple[str, str, Need, Prepare]] = [
    ("POST", "/api/v1/studies", "member", _new_study),
    ("GET", "/api/v1/studies", "user", _at("/api/v1/studies")),
    ("POST", "/api/v1/studies/parse", "user", _at("/api/v1/studies/parse", json={"text": "a: 1"})),
    ("GET", "/api/v1/studies/{name}", "viewer", _at("/api/v1/studies/alpha-study")),
    (
        "PATCH",
        "/api/v1/studies/{name}",
        "member",
        _at("/api/v1/studies/alpha-study", json={"max_parallel": 400}),
    ),
    ("DELETE", "/api/v1/studies/{name}", "member", _fresh_study("")),
    ("POST", "/api/v1/studies/{name}/stop", "member", _fresh_study("/stop")),
    ("POST", "/api/v1/studies/{name}/pause", "member", _fresh_study("/pause")),
    ("POST", "/api/v1/studies/{name}/resume", "member", _at("/api/v1/studies/alpha-study/resume")),
    (
        "POST",
        "/api/v1/studies/{name}/suggest",
        "member",
        _at("/api/v1/studies/alpha-study/suggest"),
    ),
    ("GET", "/api/v1/studies/{name}/trials", "viewer", _at("/api/v1/studies/alpha-study/trials")),
    (
        "GET",
        "/api/v1/studies/{name}/trials/{number}",
        "viewer",
        _at("/api/v1/studies/alpha-study/trials/0"),
    ),
    ("GET", "/api/v1/studies/{name}/history", "viewer", _at("/api/v1/studies/alpha-study/history")),
    ("GET", "/api/v1/studies/{name}/curves", "viewer", _at("/api/v1/studies/alpha-study/curves")),
    (
        "GET",
        "/api/v1/studies/{name}/importance",
        "viewer",
        _at("/api/v1/studies/alpha-study/importance"),
    ),
    ("GET", "/api/v1/trials/{trial_id}", "viewer+worker", _at("/api/v1/trials/{trial}")),
    (
        "POST",
        "/api/v1/trials/{trial_id}/start",
        "member+worker",
        _at("/api/v1/trials/{trial}/start", json={"worker": "w"}),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/heartbeat",
        "member+worker",
        _at("/api/v1/trials/{trial}/heartbeat", json={"attempt": 1}),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/release",
        "member+worker",
        _fresh_trial("/release", lambda _: {"attempt": 1}),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/reports",
        "member+worker",
        _at("/api/v1/trials/{trial}/reports", json=REPORT),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/reports/batch",
        "member+worker",
        _at("/api/v1/trials/{trial}/reports/batch", json={"reports": [REPORT]}),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/finish",
        "member+worker",
        _fresh_trial("/finish", lambda _: {"attempt": 1, "status": "completed", "value": 0.5}),
    ),
    (
        "POST",
        "/api/v1/trials/{trial_id}/logs",
        "member+worker",
        _at(
            "/api/v1/trials/{trial}/logs",
            json={"attempt": 1, "position": 0, "nbytes": 3, "text": "hi\n"},
        ),
    ),
    ("GET", "/api/v1/trials/{trial_id}/logs", "viewer+worker", _at("/api/v1/trials/{trial}/logs")),
    (
        "GET",
        "/api/v1/studies/{name}/trials/{number}/logs",
        "viewer",
        _at("/api/v1/studies/alpha-study/trials/0/logs"),
    ),
    (
        "POST",
        "/api/v1/workers",
        "worker",
        _at("/api/v1/workers", json={"name": "w1", "host": "h", "pid": 1}),
    ),
    ("GET", "/api/v1/workers", "user", _at("/api/v1/workers")),
    ("GET", "/api/v1/tokens", "admin", _at("/api/v1/tokens")),
    (
        "POST",
        "/api/v1/tokens",
        "admin",
        lambda w: ("/api/v1/tokens", {"json": {"name": f"t-{next(_fresh)}"}}),
    ),
    ("DELETE", "/api/v1/tokens/{name}", "admin", _fresh_token),
    ("GET", "/api/v1/projects", "user", _at("/api/v1/projects")),
    ("POST", "/api/v1/projects", "admin", _new_project),
    ("GET", "/api/v1/projects/{name}", "viewer", _at("/api/v1/projects/alpha")),
    (
        "PATCH",
        "/api/v1/projects/{name}",
        "owner",
        _at("/api/v1/projects/alpha", json={"description": "changed"}),
    ),
    ("GET", "/api/v1/projects/{name}/members", "viewer", _at("/api/v1/projects/alpha/members")),
    (
        "POST",
        "/api/v1/projects/{name}/members",
        "owner",
        _at("/api/v1/projects/alpha/members", json={"user": "alpha-viewer", "role": "viewer"}),
    ),
    ("DELETE", "/api/v1/projects/{name}/members/{user}", "owner", _fresh_member),
    ("GET", "/api/v1/projects/{name}/events", "viewer", _at("/api/v1/projects/alpha/events")),
    (
        "POST",
        "/api/v1/projects/{name}/webhooks",
        "owner",
        _at("/api/v1/projects/alpha/webhooks", json=HOOK),
    ),
    ("GET", "/api/v1/projects/{name}/webhooks", "owner", _at("/api/v1/projects/alpha/webhooks")),
    ("DELETE", "/api/v1/projects/{name}/webhooks/{hook_id}", "owner", _fresh_hook("")),
    (
        "GET",
        "/api/v1/projects/{name}/webhooks/{hook_id}/deliveries",
        "owner",
        _fresh_hook("/deliveries"),
    ),
    ("GET", "/api/v1/events", "user", _at("/api/v1/events")),
]
#: Dashboard pages (GET, the token as a bearer header as the session cookie would be).
PAGES: list[tuple[str, Need]] = [
    ("/", "user"),
    ("/ui/studies", "user"),
    ("/studies/alpha-study", "viewer"),
    ("/ui/studies/alpha-study/header", "viewer"),
    ("/studies/alpha-study/trials/0", "viewer"),
    ("/events", "user"),
    ("/events?project=alpha", "viewer"),
    ("/studies/alpha-study/compare?trials=0,1", "viewer"),
    ("/workers", "user"),
]
CALLERS = ["admin", "worker"] + [f"{p}-{r}" for p in ("alpha", "bravo") for r in ROLES]


def _expected(caller: str, need: Need) -> str:
    """What ``caller`` must get: "allowed", "hidden" (404) or "forbidden" (403)."""
    needs = set(need.split("+"))
    if caller == "admin":
        return "allowed"
    if caller == "worker":
        return "allowed" if "worker" in needs else "forbidden"
    project, role = caller.split("-")
    if needs & {"user", "worker"} and not needs & set(ROLES):
        return "allowed"  # any user (a user token includes the worker scope)
    if "admin" in needs:
        return "forbidden"
    (wanted,) = needs & set(ROLES)
    if project != "alpha":
        return "hidden"
    return "allowed" if RANK[role] >= RANK[wanted] else "forbidden"


def _outcome(answer: httpx.Response) -> str:
    if answer.status_code == 404:
        return "hidden"
    if answer.status_code == 403:
        return "forbidden"
    assert answer.status_code != 401, answer.text
    return "allowed"


def test_the_walk_covers_every_route(world: World) -> None:
    from server.app import create_app

    app = create_app(world.service.settings, run_scheduler=False)
    listed = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/v1/")
    }
    assert listed == {(method, route) for method, route, _, _ in ROUTES}


def test_no_read_or_write_across_projects_and_each_role_does_what_it_may(world: World) -> None:
    wrong = []
    for method, route, need, prepare in ROUTES:
        # Callers that must be refused go first: a refused call changes nothing, so
        # the allowed ones after them find the target as it was.
        order = sorted(CALLERS, key=lambda c: _expected(c, need) == "allowed")
        for caller in order:
            path, kwargs = prepare(world)
            answer = world.call(caller, method, path, **kwargs)
            expected, got = _expected(caller, need), _outcome(answer)
            special = method == "POST" and route == "/api/v1/studies"
            if special and expected == "hidden":
                # Creating in a project you are no member of: 422 naming the project,
                # exactly what a project that does not exist gets.
                ok = answer.status_code == 422 and "project" in answer.text
            else:
                ok = got == expected
            if not ok:
                wrong.append(
                    (caller, method, path, expected, answer.status_code, answer.text[:120])
                )
    assert wrong == []


def test_pages_show_only_your_projects(world: World) -> None:
    wrong = []
    for page, need in PAGES:
        for caller in CALLERS:
            answer = world.call(caller, "GET", page, follow_redirects=False)
            expected = _expected(caller, need)
            if caller == "worker":
                expected = "login"  # a worker's token does not sign in to the dashboard
                got = "login" if answer.status_code == 303 else str(answer.status_code)
            else:
                got = _outcome(answer)
            if got != expected:
                wrong.append((caller, page, expected, answer.status_code))
            if caller.startswith("bravo") and answer.status_code == 200:
                assert "alpha-study" not in answer.text, (caller, page)
    assert wrong == []


def test_lists_never_name_another_projects_studies(world: World) -> None:
    for caller in CALLERS:
        if caller == "worker":
            continue
        for path in (
            "/api/v1/studies",
            "/api/v1/projects",
            "/api/v1/events",
            "/api/v1/studies?project=alpha",
        ):
            text = world.call(caller, "GET", path).text
            sees_alpha = "alpha" in text
            assert sees_alpha == (not caller.startswith("bravo")), (caller, path)
    every = {s["name"] for s in world.call("admin", "GET", "/api/v1/studies").json()}
    assert {"alpha-study", "bravo-study"} <= every
    mine = world.call("alpha-viewer", "GET", "/api/v1/projects").json()
    assert [(p["name"], p["role"]) for p in mine] == [("alpha", "viewer")]
