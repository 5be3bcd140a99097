"""Input that one database refuses and the other ignores gets one answer, from the edge:
a NUL character in the URL (PostgreSQL refuses NUL in text), ids past the 32-bit
columns (PostgreSQL overflows). Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from hpo.client import Client

pytestmark = pytest.mark.usefixtures("live_server")

BEYOND = 2**31  # one past the largest id a 32-bit column holds


@pytest.fixture
def root(live_server) -> httpx.Client:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/studies/a%00b",
        "/api/v1/studies/a%00b/trials",
        "/api/v1/studies/a%00b/trials/0",
        "/api/v1/studies/a%00b/history",
        "/studies/a%00b",
        "/studies/a%00b/trials/0",
        "/ui/studies/a%00b/header",
    ],
)
def test_a_nul_in_the_path_is_not_found(root: httpx.Client, path: str) -> None:
    answer = root.get(path)
    assert answer.status_code == 404
    assert "NUL" in answer.json()["detail"]


def test_a_nul_in_a_posted_path_is_not_found(root: httpx.Client) -> None:
    assert root.post("/api/v1/studies/a%00b/stop").status_code == 404
    assert root.post("/api/v1/studies/a%00b/suggest").status_code == 404


def test_a_nul_in_the_query_names_the_parameter(root: httpx.Client, sdk: Client, make_spec) -> None:
    sdk.create_study(make_spec("q"))
    answer = root.post("/api/v1/studies/q/suggest?client=a%00b")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "client"
    assert sdk.list_trials("q", status="running") == []  # nothing leased


def test_names_no_study_can_have_are_not_found(root: httpx.Client) -> None:
    for name in ("a%20b", "-leading-dash", "x" * 200, "%C3%A9t%C3%A9"):
        assert root.get(f"/api/v1/studies/{name}").status_code == 404, name


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/v1/trials/{BEYOND}", None),
        ("POST", f"/api/v1/trials/{BEYOND}/heartbeat", {"attempt": 1}),
        ("POST", f"/api/v1/trials/{BEYOND}/reports", {"attempt": 1, "step": 1, "value": 1.0}),
        ("POST", f"/api/v1/trials/{BEYOND}/start", {}),
        ("POST", f"/api/v1/trials/{BEYOND}/finish", {"attempt": 1, "status": "failed"}),
    ],
)
def test_ids_past_32_bits_are_refused_naming_the_field(
    root: httpx.Client, method: str, path: str, body: dict | None
) -> None:
    answer = root.request(method, path, json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "trial_id"


def test_the_largest_id_is_simply_not_found(root: httpx.Client, sdk: Client, make_spec) -> None:
    assert root.get(f"/api/v1/trials/{BEYOND - 1}").status_code == 404
    sdk.create_study(make_spec("big"))
    assert root.get(f"/api/v1/studies/big/trials/{BEYOND - 1}").status_code == 404
    answer = root.get(f"/api/v1/studies/big/trials/{BEYOND}")
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "number"
    assert root.get(f"/studies/big/trials/{BEYOND}").status_code == 422
