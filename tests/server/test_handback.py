"""Hand-back: a preempting study below its share of a full pool asks running trials of
lower-priority studies to hand back at their next checkpoint; they are queued again,
neither failed nor retried, and count the hand-back apart. The choice (pure) and the
protocol through the real server, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from server.handback import Running, below_share, choose
from server.share import Standing

T0 = datetime(2026, 1, 1)


def _standing(sid: int, priority: float, in_flight: int, want: int, **kw: Any) -> Standing:
    return Standing(
        study_id=sid, project_id=1, priority=priority, in_flight=in_flight, want=want, **kw
    )


def test_a_preempting_study_asks_the_newest_trials_of_the_study_furthest_above_its_share() -> None:
    low = _standing(1, 1.0, in_flight=2, want=5)
    lower = _standing(2, 0.5, in_flight=4, want=5)
    high = _standing(3, 4.0, in_flight=0, want=4, preempt=True)
    running = [
        Running(10 + i, sid, T0 + timedelta(seconds=i), asked=False)
        for i, sid in enumerate([1, 1, 2, 2, 2, 2])
    ]
    short = below_share([low, lower, high], 6)
    assert short == {1: -1, 2: -3, 3: 4}  # shares: 1, 1 and 4 of the 6 slots
    asked = choose([low, lower, high], 6, 0.0, [3], running)[3]
    # study 2 is furthest above its share: its newest trials first, until the two are
    # as far above (ties: the older study), newest first again
    assert asked == [15, 14, 11, 13]


def test_no_ask_without_need_nor_from_a_study_of_equal_or_higher_priority() -> None:
    low = _standing(1, 1.0, in_flight=2, want=5)
    running = [Running(10, 1, T0, False), Running(11, 1, T0, False)]
    # free slots cover it: allot hands them out, nobody is asked
    assert choose([low, _standing(2, 4.0, 0, 1, preempt=True)], 4, 2.0, [2], running) == {}
    # same priority: never
    assert choose([low, _standing(2, 1.0, 0, 4, preempt=True)], 2, 0.0, [2], running) == {}
    # another size: what would free is not what it needs
    big = _standing(2, 4.0, 0, 4, preempt=True, size=2.0)
    assert choose([low, big], 2, 0.0, [2], running) == {}
    # already asked: not again
    asked = [Running(10, 1, T0, True), Running(11, 1, T0, True)]
    assert choose([low, _standing(2, 4.0, 0, 4, preempt=True)], 2, 0.0, [2], asked) == {}


def _open(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    trials = api.get(f"/studies/{name}/trials").json()
    return [t for t in trials if t["status"] in ("queued", "running")]


def test_a_trial_asked_to_hand_back_is_told_so_and_its_release_is_no_failure(
    api, make_spec, wait
) -> None:
    body = {"name": "w:1", "host": "box", "pid": 1, "devices": ["cpu0", "cpu1"]}
    assert api.post("/workers", json={**body, "pool": "default"}).status_code == 200
    budget = {"max_trials": 20, "max_parallel": 8, "epochs": 5}
    assert api.post("/studies", json=make_spec("low", budget=budget)).status_code == 201
    wait(lambda: len(_open(api, "low")) == 2)
    low = [t["id"] for t in _open(api, "low")]
    for i, trial_id in enumerate(low):
        started = api.post(f"/trials/{trial_id}/start", json={"worker": f"w:1/{i}"})
        assert started.status_code == 200, started.text
    high = {**make_spec("high", budget=budget), "priority": 5, "preempt": True}
    assert api.post("/studies", json=high).status_code == 201
    # the pool is full: high's trial is made at the ask, and one of low's is asked
    wait(lambda: len(_open(api, "high")) == 1)

    def answers() -> dict[int, dict[str, Any]]:
        return {t: api.post(f"/trials/{t}/heartbeat", json={"attempt": 1}).json() for t in low}

    wait(lambda: sum(a["hand_back"] for a in answers().values()) == 1)
    got = answers()
    (asked,) = [t for t, a in got.items() if a["hand_back"]]
    assert all(a["decision"] == "continue" for a in got.values())
    assert "high" in got[asked]["reason"]
    released = api.post(f"/trials/{asked}/release", json={"attempt": 1}).json()
    assert released["status"] == "queued"
    assert released["handbacks"] == 1 and released["failures"] == 0
    assert "handed back at a checkpoint" in released["error"]
    assert api.get(f"/trials/{asked}").json()["handbacks"] == 1
    _shows_the_handback(api, "low", released["number"])
    # high holds its share (1 of 2): nobody else is asked
    (other,) = [t for t in low if t != asked]
    assert api.post(f"/trials/{other}/heartbeat", json={"attempt": 1}).json()["hand_back"] is False
    assert len(_open(api, "high")) == 1


def _shows_the_handback(api: httpx.Client, name: str, number: int) -> None:
    """The trial's dashboard page and `hpo study show`'s table say it handed back."""
    from rich.console import Console

    from hpo.cli.output import trials_table
    from hpo.schemas import StudyPublic, TrialPublic

    root = str(api.base_url).rstrip("/").removesuffix("/api/v1")
    html = {"accept": "text/html,application/xhtml+xml"}
    page = httpx.get(f"{root}/studies/{name}/trials/{number}", headers=html, timeout=30)
    assert page.status_code == 200 and 'id="trial-handbacks"' in page.text
    assert "handbacks: 1," in page.text
    study = StudyPublic.model_validate(api.get(f"/studies/{name}").json())
    trials = [TrialPublic.model_validate(t) for t in api.get(f"/studies/{name}/trials").json()]
    console = Console(record=True, width=240)
    console.print(trials_table(study, trials))
    rows = [line for line in console.export_text().splitlines() if "handbacks: 1" in line]
    assert len(rows) == 1 and f" {number} " in rows[0], rows
