"""Auth over real HTTP: a walk over the whole route table (so a new route cannot forget
auth), token lifecycle with hashed storage, HPO_AUTH's automatic mode, body limits."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from server.tables import Token

ADMIN = "admin-secret-token"
WORKER = "worker-secret-token"

#: Routes a worker token may call; every other /api/v1 route needs user or admin.
WORKER_ROUTES = {
    ("GET", "/api/v1/trials/{trial_id}"),
    ("POST", "/api/v1/trials/{trial_id}/start"),
    ("POST", "/api/v1/trials/{trial_id}/heartbeat"),
    ("POST", "/api/v1/trials/{trial_id}/reports"),
    ("POST", "/api/v1/trials/{trial_id}/reports/batch"),
    ("POST", "/api/v1/trials/{trial_id}/finish"),
    ("POST", "/api/v1/trials/{trial_id}/release"),
    ("POST", "/api/v1/trials/{trial_id}/logs"),
    ("GET", "/api/v1/trials/{trial_id}/logs"),
    ("POST", "/api/v1/workers"),
}
ADMIN_PREFIX = "/api/v1/tokens"
OPEN_PATHS = {"/healthz"}


@pytest.fixture
def secured(settings: Settings) -> Iterator[EmbeddedService]:
    """The real server with auth on (environment admin and worker tokens)."""
    secured = settings.model_copy(update={"api_token": ADMIN, "worker_token": WORKER})
    with EmbeddedService(secured, workers=0) as service:
        yield service


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _concrete(path: str) -> str:
    """A request path for a route template: ids 1, numbers 0, names 'x'."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: "1" if m.group(1).endswith("id") else "0" if m.group(1) == "number" else "x",
        path,
    )


def _api_routes(service: EmbeddedService) -> list[tuple[str, str]]:
    from server.app import create_app

    # The OpenAPI document lists every public route, however routers are nested.
    app = create_app(service.settings, run_scheduler=False)
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path not in OPEN_PATHS
    )


def test_every_route_refuses_missing_wrong_and_too_small_tokens(
    secured: EmbeddedService, tmp_path: Path
) -> None:
    routes = _api_routes(secured)
    assert len(routes) >= 20  # the walk really covers the API
    with httpx.Client(base_url=secured.url) as client:
        user = client.post(
            "/api/v1/tokens", json={"name": "walker", "scope": "user"}, headers=_bearer(ADMIN)
        )
        assert user.status_code == 201, user.text
        user_token = user.json()["token"]
        for method, path in routes:
            url = _concrete(path)
            anonymous = client.request(method, url, json={})
            assert anonymous.status_code == 401, (method, path, anonymous.status_code)
            wrong = client.request(method, url, json={}, headers=_bearer("not-a-token"))
            assert wrong.status_code == 401, (method, path)
            as_worker = client.request(method, url, json={}, headers=_bearer(WORKER))
            if (method, path) in WORKER_ROUTES:
                assert as_worker.status_code != 403, (method, path)
            else:
                assert as_worker.status_code == 403, (method, path, as_worker.status_code)
            as_user = client.request(method, url, json={}, headers=_bearer(user_token))
            if path.startswith(ADMIN_PREFIX):
                assert as_user.status_code == 403, (method, path)
            else:
                assert as_user.status_code not in (401, 403), (method, path)
        assert client.get("/healthz").status_code == 200
        # Pages go to the login page first; the login page itself is open.
        page = client.get("/studies/x", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/studies/x"
        assert client.get("/login").status_code == 200


def test_the_api_docs_are_behind_the_token(secured: EmbeddedService) -> None:
    """The schema needs a token (any scope) or the dashboard's session cookie; the docs
    pages send a browser to the login page first."""
    with httpx.Client(base_url=secured.url) as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers=_bearer("not-a-token")).status_code == 401
        for token in (ADMIN, WORKER):
            schema = client.get("/openapi.json", headers=_bearer(token))
            assert schema.status_code == 200 and "/api/v1/studies" in schema.json()["paths"]
        for page in ("/docs", "/redoc"):
            answer = client.get(page, follow_redirects=False)
            assert answer.status_code == 303, page
            assert answer.headers["location"] == f"/login?next={page}"
        signed_in = client.post(
            "/login", data={"token": ADMIN, "next": "/docs"}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        assert client.get("/docs").status_code == 200  # the cookie now
        assert client.get("/openapi.json").status_code == 200


def test_the_api_docs_are_open_with_auth_off(live_server: EmbeddedService) -> None:
    for page in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(f"{live_server.url}{page}").status_code == 200, page


def test_tokens_are_shown_once_stored_hashed_and_revocable(secured: EmbeddedService) -> None:
    with httpx.Client(base_url=f"{secured.url}/api/v1") as client:
        created = client.post(
            "/tokens", json={"name": "ci", "scope": "user"}, headers=_bearer(ADMIN)
        ).json()
        token = created["token"]
        assert created["scope"] == "user" and token.startswith("hpo_")
        listed = client.get("/tokens", headers=_bearer(ADMIN)).json()
        assert [t["name"] for t in listed] == ["ci"]
        assert "token" not in listed[0]
        # The user token works for studies, not for token management.
        assert client.get("/studies", headers=_bearer(token)).status_code == 200
        denied = client.post("/tokens", json={"name": "x"}, headers=_bearer(token))
        assert denied.status_code == 403
        dup = client.post("/tokens", json={"name": "ci"}, headers=_bearer(ADMIN))
        assert dup.status_code == 409 and dup.json()["field"] == "name"
        bad = client.post("/tokens", json={"name": "a b", "scope": "root"}, headers=_bearer(ADMIN))
        assert bad.status_code == 422
        assert {d["field"] for d in bad.json()["detail"]} == {"name", "scope"}

        engine = create_engine(secured.settings.resolved_database_url)
        with engine.connect() as conn:
            stored = conn.execute(select(Token.digest, Token.last_used_at)).one()
        engine.dispose()
        assert token not in stored.digest and len(stored.digest) == 64
        assert stored.last_used_at is not None

        assert client.delete("/tokens/ci", headers=_bearer(ADMIN)).status_code == 204
        assert client.get("/studies", headers=_bearer(token)).status_code == 401
        assert client.delete("/tokens/ci", headers=_bearer(ADMIN)).status_code == 404


@pytest.mark.parametrize(
    ("host", "mode", "protected"),
    [
        ("127.0.0.1", "auto", False),
        ("0.0.0.0", "auto", True),
        ("127.0.0.1", "on", True),
        ("0.0.0.0", "off", False),
    ],
)
def test_auth_is_on_by_default_beyond_loopback(
    sqlite_settings: Settings, host: str, mode: str, protected: bool
) -> None:
    settings = sqlite_settings.model_copy(update={"auth": mode})
    with EmbeddedService(settings, workers=0, host=host) as service:
        response = httpx.get(f"{service.url}/api/v1/studies")
        assert response.status_code == (401 if protected else 200)
        assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_bodies_over_the_limit_get_413(live_server: EmbeddedService, make_spec) -> None:
    limit = live_server.settings.max_body_bytes
    spec = make_spec("big", description="x" * (limit + 10))
    with httpx.Client(base_url=f"{live_server.url}/api/v1") as client:
        response = client.post("/studies", json=spec)
        assert response.status_code == 413
        assert response.json()["field"] == "body"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"name": "big2", "description": "'
            for _ in range(limit // 65536 + 2):
                yield b"y" * 65536
            yield b'"}'

        streamed = client.post(
            "/studies", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.get("/studies").json() == []  # nothing was stored
        assert client.post("/studies", json=make_spec("small")).status_code == 201


def test_tokens_never_reach_the_logs(
    secured: EmbeddedService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=f"{secured.url}/api/v1") as client:
        created = client.post(
            "/tokens", json={"name": "quiet", "scope": "user"}, headers=_bearer(ADMIN)
        ).json()["token"]
        for token in (ADMIN, WORKER, created, "wrong-token-value"):
            client.get("/studies", headers=_bearer(token))
            client.post("/studies", json={}, headers=_bearer(token))
    logged = caplog.text
    assert logged  # the server did log (so the check below means something)
    for token in (ADMIN, WORKER, created, "wrong-token-value"):
        assert token not in logged


def test_a_space_over_the_parameter_cap_is_422_not_a_slow_death(
    live_server: EmbeddedService, make_spec
) -> None:
    space = {f"p{i}": {"type": "categorical", "choices": ["a", "b"]} for i in range(10_001)}
    spec = make_spec("wide", space=space, train={"entrypoint": "pkg.mod:fn"})
    spec["objective"] = {"metric": "score", "direction": "maximize"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=60) as client:
        response = client.post("/studies", json=spec)
        assert response.status_code == 422, response.text[:300]
        assert response.json()["detail"][0]["field"].startswith("space")
        assert client.get("/studies").json() == []
