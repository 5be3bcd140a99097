"""Trial logs over real HTTP, on both databases: chunks are stored once per position,
each attempt's log keeps its head and tail within the cap with the cut marked, a reader
follows it from a position, and the log goes with its study."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from server.tables import LogChunk

CAP = 8192


@pytest.fixture
def small_cap(settings: Settings) -> Iterator[httpx.Client]:
    capped = settings.model_copy(update={"log_max_bytes": CAP})
    with (
        EmbeddedService(capped, workers=0) as service,
        httpx.Client(base_url=f"{service.url}/api/v1", timeout=30) as api,
    ):
        yield api


def _leased(api: httpx.Client, make_spec, name: str = "logs") -> int:
    spec = make_spec(name, runner="external")
    assert api.post("/studies", json=spec).status_code == 201
    return int(api.post(f"/studies/{name}/suggest").json()[0]["trial_id"])


def _ship(api: httpx.Client, trial_id: int, position: int, text: str, attempt: int = 1) -> int:
    body = {"attempt": attempt, "position": position, "nbytes": len(text.encode()), "text": text}
    answer = api.post(f"/trials/{trial_id}/logs", json=body)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["size"])


def test_a_log_is_read_whole_or_followed_from_a_position(small_cap, make_spec) -> None:
    api = small_cap
    trial_id = _leased(api, make_spec)
    assert _ship(api, trial_id, 0, "epoch 1\n") == 8
    assert _ship(api, trial_id, 8, "épøch 2\n") == 18  # bytes, not characters
    # Sent again (its answer was lost): stored once.
    assert _ship(api, trial_id, 8, "épøch 2\n") == 18
    whole = api.get("/studies/logs/trials/0/logs").json()
    assert whole["text"] == "epoch 1\népøch 2\n"
    assert (whole["size"], whole["cut_bytes"], whole["attempts"]) == (18, 0, [1])
    assert whole["running"] is True
    _ship(api, trial_id, 18, "epoch 3\n")
    follow = api.get("/studies/logs/trials/0/logs", params={"after": whole["next_position"]})
    assert follow.json()["text"] == "epoch 3\n"
    by_id = api.get(f"/trials/{trial_id}/logs").json()
    assert by_id["text"].endswith("epoch 3\n") and by_id["number"] == 0


def test_a_flood_keeps_the_head_and_tail_within_the_cap(small_cap, make_spec, settings) -> None:
    api = small_cap
    trial_id = _leased(api, make_spec)
    line = "x" * 63 + "\n"
    position = 0
    for i in range(400):  # 400 x 64 B = 25.6 KB through an 8 KB cap
        text = f"{i:06d}" + line[6:]
        position = _ship(api, trial_id, position, text)
    log = api.get("/studies/logs/trials/0/logs").json()
    assert log["size"] == 400 * 64
    stored = log["size"] - log["cut_bytes"]
    assert CAP - 64 <= stored <= CAP + 64
    assert log["text"].startswith("000000") and log["text"].endswith("\n")
    assert "000399" in log["text"] and "000200" not in log["text"]
    assert f"{log['cut_bytes']:,} bytes of output cut" in log["text"]
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(LogChunk)).scalar()
    engine.dispose()
    assert rows is not None and rows <= CAP // 64 + 2


def test_attempts_have_their_own_logs_and_unknown_ones_are_refused(small_cap, make_spec) -> None:
    api = small_cap
    trial_id = _leased(api, make_spec)
    _ship(api, trial_id, 0, "first attempt\n")
    unknown = api.post(
        f"/trials/{trial_id}/logs",
        json={"attempt": 2, "position": 0, "nbytes": 1, "text": "x"},
    )
    assert unknown.status_code == 409
    released = api.post(f"/trials/{trial_id}/release", json={"attempt": 1})
    assert released.status_code == 200
    again = api.post("/studies/logs/suggest").json()[0]
    assert again["attempt"] == 2
    _ship(api, trial_id, 0, "second attempt\n", attempt=2)
    _ship(api, trial_id, 14, "late words\n", attempt=1)  # an ended attempt's last lines
    latest = api.get("/studies/logs/trials/0/logs").json()
    assert (latest["attempt"], latest["attempts"], latest["text"]) == (
        2,
        [1, 2],
        "second attempt\n",
    )
    first = api.get("/studies/logs/trials/0/logs", params={"attempt": 1}).json()
    assert first["text"] == "first attempt\nlate words\n" and first["running"] is False


def test_bad_chunks_are_422_naming_the_field(small_cap, make_spec) -> None:
    api = small_cap
    trial_id = _leased(api, make_spec)
    for body, field in (
        ({"attempt": 1, "position": 0, "nbytes": 1, "text": "a\x00b"}, "text"),
        ({"attempt": 1, "position": -1, "nbytes": 1, "text": "a"}, "position"),
        ({"attempt": 1, "position": 0, "nbytes": 0, "text": ""}, "nbytes"),
        ({"attempt": 1, "position": 0, "nbytes": 1, "text": "a", "extra": 1}, "extra"),
    ):
        answer = api.post(f"/trials/{trial_id}/logs", json=body)
        assert answer.status_code == 422, body
        assert field in {d["field"].split(".")[0] for d in answer.json()["detail"]}, answer.text
    assert api.get("/studies/logs/trials/0/logs", params={"after": -1}).status_code == 422
    assert (
        api.post(
            "/trials/999/logs", json={"attempt": 1, "position": 0, "nbytes": 1, "text": "a"}
        ).status_code
        == 404
    )


def test_the_log_goes_with_its_study(small_cap, make_spec, settings) -> None:
    api = small_cap
    trial_id = _leased(api, make_spec)
    _ship(api, trial_id, 0, "bye\n")
    assert api.delete("/studies/logs").status_code == 204
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LogChunk)).scalar() == 0
    engine.dispose()
    assert api.get("/studies/logs/trials/0/logs").status_code == 404
