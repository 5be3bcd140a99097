"""Fair-share dispatch through the real server, on both databases: a pool keeps no more
trials in flight than its serving workers have slots, and each freed slot goes to the
study furthest below its weighted share (priority, projects, quotas), the finishing
worker being leased it at once; not to whichever study queued first."""

from __future__ import annotations

import time
from typing import Any

import httpx

from hpo.embedded import EmbeddedService

SETTLE = 0.4  # several scheduler passes (the test settings run one every 0.05 s)


def _register(api: httpx.Client, *names: str, pool: str = "default") -> None:
    for name in names:
        body = {"name": name, "host": "box", "pid": 1, "devices": ["cpu"], "pool": pool}
        assert api.post("/workers", json=body).status_code == 200


def _study(api: httpx.Client, make_spec, name: str, parallel: int, **extra: Any) -> None:
    budget = {"max_trials": 50, "max_parallel": parallel, "epochs": 1}
    answer = api.post("/studies", json={**make_spec(name, budget=budget), **extra})
    assert answer.status_code == 201, answer.text


def _open(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    trials = api.get(f"/studies/{name}/trials").json()
    return [t for t in trials if t["status"] in ("queued", "running")]


def _start_all(api: httpx.Client, name: str, worker: str) -> list[int]:
    ids = [t["id"] for t in _open(api, name) if t["status"] == "queued"]
    for i, trial_id in enumerate(ids):
        answer = api.post(f"/trials/{trial_id}/start", json={"worker": f"{worker}{i}"})
        assert answer.status_code == 200, answer.text
    return ids


def _finish(api: httpx.Client, trial_id: int) -> dict[str, Any] | None:
    body = {"attempt": 1, "status": "completed", "value": 0.5, "lease_next": True}
    answer = api.post(f"/trials/{trial_id}/finish", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["next_trial"]


def test_a_pool_holds_no_more_than_its_slots_and_a_new_study_gets_the_next_one(
    api, make_spec, wait
) -> None:
    _register(api, "w:1", "w:2")
    _study(api, make_spec, "big", parallel=8)
    wait(lambda: len(_open(api, "big")) == 2)
    time.sleep(SETTLE)
    assert len(_open(api, "big")) == 2  # not max_parallel: the pool has 2 slots
    first, second = _start_all(api, "big", "w:")

    _study(api, make_spec, "small", parallel=2)
    time.sleep(SETTLE)
    assert _open(api, "small") == []  # the pool is full: it waits for a slot
    handed = _finish(api, first)
    assert handed is not None and handed["study"] == "small"  # not big's next trial
    # both now hold one: the tie goes to the older study
    handed = _finish(api, second)
    assert handed is not None and handed["study"] == "big"
    assert len(_open(api, "big")) + len(_open(api, "small")) == 2


def test_priority_weighs_the_share_a_freed_slot_restores(api, make_spec, wait) -> None:
    _register(api, "w:1", "w:2", "w:3")
    _study(api, make_spec, "low", parallel=8)
    wait(lambda: len(_open(api, "low")) == 3)
    ids = _start_all(api, "low", "w:")
    _study(api, make_spec, "high", parallel=8, priority=3)
    # low 2 (weight 1) vs high 0: high; low 1 vs high 1/3: high; low 0 vs high 2/3: low
    assert [(_finish(api, t) or {}).get("study") for t in ids] == ["high", "high", "low"]


def test_a_project_quota_caps_its_trials_and_the_rest_go_to_others(api, make_spec, wait) -> None:
    made = api.post("/projects", json={"name": "capped", "gpu_quota": 1})
    assert made.status_code == 201, made.text
    assert made.json()["gpu_quota"] == 1
    _register(api, "w:1", "w:2", "w:3")
    _study(api, make_spec, "held-back", parallel=4, project="capped")
    wait(lambda: len(_open(api, "held-back")) == 1)
    _study(api, make_spec, "free", parallel=4)
    wait(lambda: len(_open(api, "free")) == 2)
    time.sleep(SETTLE)
    assert (len(_open(api, "held-back")), len(_open(api, "free"))) == (1, 2)

    lifted = api.patch("/projects/capped", json={"gpu_quota": None})
    assert lifted.status_code == 200 and lifted.json()["gpu_quota"] is None
    bad = api.patch("/projects/capped", json={"gpu_quota": 0})
    assert bad.status_code == 422 and "gpu_quota" in bad.text


def test_a_pool_no_worker_serves_yet_gets_each_study_topped_up(api, make_spec, wait) -> None:
    _study(api, make_spec, "early", parallel=3)
    wait(lambda: len(_open(api, "early")) == 3)  # size unknown: max_parallel, as before


def test_fifo_dispatch_keeps_max_parallel_queued_whatever_the_pool(settings, make_spec) -> None:
    fifo = settings.model_copy(update={"dispatch": "fifo"})
    with (
        EmbeddedService(fifo, workers=0) as service,
        httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as api,
    ):
        _register(api, "w:1")
        _study(api, make_spec, "queue-it", parallel=4)
        deadline = time.monotonic() + 10
        while len(_open(api, "queue-it")) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_open(api, "queue-it")) == 4


def test_a_finishing_worker_is_leased_only_a_trial_of_the_size_it_held(
    api, make_spec, wait
) -> None:
    # one worker with 4 GPUs: a 2-GPU trial runs, a one-GPU study fills the rest
    body = {"name": "w:1", "host": "box", "pid": 1, "devices": ["0", "1", "2", "3"]}
    assert api.post("/workers", json={**body, "pool": "default"}).status_code == 200
    budget = {"max_trials": 1, "max_parallel": 1, "epochs": 1}
    made = api.post("/studies", json={**make_spec("pair", budget=budget), "resources": {"gpus": 2}})
    assert made.status_code == 201, made.text
    wait(lambda: len(_open(api, "pair")) == 1)
    (pair,) = _start_all(api, "pair", "w:1/")
    _study(api, make_spec, "ones", parallel=8)
    wait(lambda: len(_open(api, "ones")) == 2)
    # The pair's two GPUs go to two one-GPU trials: queued for whoever has room, never
    # leased to the runner that held the pair (it holds two devices, not one).
    assert _finish(api, pair) is None
    wait(lambda: len(_open(api, "ones")) == 4)


def test_a_big_trial_keeps_its_devices_while_its_study_is_below_its_share(
    api, make_spec, wait
) -> None:
    for project in ("a", "b"):
        assert api.post("/projects", json={"name": project}).status_code == 201
    body = {"name": "w:1", "host": "box", "pid": 1, "devices": [str(g) for g in range(8)]}
    assert api.post("/workers", json={**body, "pool": "default"}).status_code == 200
    _study(api, make_spec, "quad", parallel=1, project="a", resources={"gpus": 4})
    wait(lambda: len(_open(api, "quad")) == 1)
    (quad,) = _start_all(api, "quad", "w:1/q")
    _study(api, make_spec, "ones", parallel=8, project="a")
    wait(lambda: len(_open(api, "ones")) == 4)
    ones = _start_all(api, "ones", "w:1/o")
    _study(api, make_spec, "newcomer", parallel=8, project="b")
    time.sleep(SETTLE)
    assert _open(api, "newcomer") == []  # the pool is full
    # Project b holds nothing, so the rule alone would split quad's 4 GPUs among the
    # newcomer's one-GPU trials; but quad holds none of the 1 trial its share comes to:
    # its runner keeps the devices and a project-a one-GPU trial gives way instead
    handed = _finish(api, quad)
    assert handed is not None and handed["study"] == "quad"
    assert _open(api, "newcomer") == []
    assert [(_finish(api, t) or {}).get("study") for t in ones] == ["newcomer"] * 4


def test_a_bigger_trial_waiting_for_room_does_not_stop_one_gpu_finishers_being_leased(
    api, make_spec, wait
) -> None:
    body = {"name": "w:1", "host": "box", "pid": 1, "devices": [str(g) for g in range(8)]}
    assert api.post("/workers", json={**body, "pool": "default"}).status_code == 200
    _study(api, make_spec, "ones", parallel=8)
    wait(lambda: len(_open(api, "ones")) == 8)
    ones = _start_all(api, "ones", "w:1/o")
    _study(api, make_spec, "quad", parallel=1, resources={"gpus": 4})
    # quad is next in line: the slots four finishes free are held for its trial
    assert [_finish(api, t) for t in ones[:4]] == [None] * 4
    wait(lambda: [t["status"] for t in _open(api, "quad")] == ["queued"])
    time.sleep(1.5)  # past the lease grace: it waits for a machine to drain
    # A one-GPU finisher could not run it: it is leased the next one-GPU trial
    handed = _finish(api, ones[4])
    assert handed is not None and handed["study"] == "ones"
