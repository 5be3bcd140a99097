"""Pools through the real server, on both databases: workers register in a pool, a
study asks for one, a trial no worker of its pool could hold is refused naming
``resources.gpus``, and a study whose pool has no worker says why it waits."""

from __future__ import annotations

from typing import Any

import httpx

SPACE = {"lr": {"type": "float", "low": 0.001, "high": 0.1}}


def _register(api: httpx.Client, name: str, pool: str, devices: list[str]) -> None:
    body = {"name": name, "host": name.split(":")[0], "pid": 1, "devices": devices, "pool": pool}
    assert api.post("/workers", json=body).status_code in (200, 201)


def _create(api: httpx.Client, name: str, **extra: Any) -> httpx.Response:
    return api.post("/studies", json={"name": name, "space": SPACE, **extra})


def _only_error(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    return dict(error)


def test_a_trial_too_big_for_every_worker_of_its_pool_is_refused_at_creation(api) -> None:
    _register(api, "a100-box:1", "a100", ["0"])
    _register(api, "a100-box:2", "a100", ["1"])
    _register(api, "cpu-box:1", "cpu", ["cpu"])
    error = _only_error(_create(api, "too-big", resources={"pool": "a100", "gpus": 2}))
    assert error["field"] == "resources.gpus"
    assert "2 GPUs" in error["msg"] and "a100" in error["msg"] and "1 GPU" in error["msg"]
    error = _only_error(_create(api, "no-gpu", resources={"pool": "cpu", "gpus": 0.5}))
    assert error["field"] == "resources.gpus" and "no GPU" in error["msg"]
    assert api.get("/studies/too-big").status_code == 404  # nothing half-written

    made = _create(api, "fits", resources={"pool": "a100", "gpus": 0.25}, priority=3)
    assert made.status_code == 201, made.text
    study = api.get("/studies/fits").json()
    assert (study["pool"], study["priority"], study["waiting"]) == ("a100", 3.0, None)
    assert study["spec"]["resources"] == {"pool": "a100", "gpus": 0.25}


def test_a_study_whose_pool_has_no_worker_says_why_it_waits(api) -> None:
    _register(api, "box:1", "default", ["cpu"])
    assert _create(api, "lonely", resources={"pool": "h100"}).status_code == 201
    waiting = api.get("/studies/lonely").json()["waiting"]
    assert "no worker serves pool 'h100'" in waiting and "hpo worker --pool h100" in waiting
    assert _create(api, "served").status_code == 201
    assert api.get("/studies/served").json()["waiting"] is None
    _register(api, "h100-box:1", "h100", ["0"])
    assert api.get("/studies/lonely").json()["waiting"] is None


def test_workers_are_listed_with_their_pool_and_bad_pools_name_the_field(api) -> None:
    _register(api, "b:1", "zeta", ["0"])
    _register(api, "a:1", "alpha", ["cpu"])
    listed = [(w["pool"], w["name"]) for w in api.get("/workers").json()]
    assert listed == [("alpha", "a:1"), ("zeta", "b:1")]
    bad = {"name": "c:1", "host": "c", "pid": 1, "devices": [], "pool": "no spaces"}
    assert api.post("/workers", json=bad).status_code == 422
    error = _only_error(_create(api, "bad-pool", resources={"pool": "a:b"}))
    assert error["field"] == "resources.pool"


def test_an_embedded_server_runs_only_the_default_pool(sqlite_settings) -> None:
    from hpo.embedded import EmbeddedService

    with (
        EmbeddedService(sqlite_settings, workers=1) as service,
        httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as api,
    ):
        error = _only_error(_create(api, "elsewhere", resources={"pool": "a100"}))
        assert error["field"] == "resources.pool" and "HPO_REDIS_URL" in error["msg"]
        assert _create(api, "here", resources={"pool": "default"}).status_code == 201


def test_the_dashboard_groups_workers_by_pool_and_says_why_a_study_waits(api, live_server) -> None:
    _register(api, "g:1", "a100", ["0"])
    _register(api, "g:2", "a100", ["1"])
    _register(api, "c:1", "default", ["cpu"])
    assert _create(api, "stranded", resources={"pool": "h100"}).status_code == 201
    with httpx.Client(base_url=live_server.url, timeout=30) as pages:
        workers = pages.get("/workers").text
        assert workers.count('class="pool-row"') == 2
        assert "Pool a100 · 2 worker(s)" in workers and "Pool default · 1 worker(s)" in workers
        assert workers.index('data-pool="a100"') < workers.index('data-worker="g:1"')
        study = pages.get("/studies/stranded").text
        assert 'id="study-waiting"' in study and "no worker serves pool &#39;h100&#39;" in study
        header = pages.get("/ui/studies/stranded/header").text
        assert 'id="study-waiting"' in header
