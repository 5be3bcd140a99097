"""Claims on room for waiting bigger trials (``worker.claims``), on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from worker.claims import Claim, claim_key

QUEUE = "hpo-trials:a100:gpus=4"


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def _owner(redis: Redis, index: int) -> str | None:
    value = redis.get(claim_key(QUEUE, index))
    return None if value is None else value.decode().split(" ")[0]


def test_one_claim_per_waiting_job(redis: Redis) -> None:
    a, b, c = (Claim(redis, name) for name in "abc")
    assert a.hold(QUEUE, 2, 1) and b.hold(QUEUE, 2, 1)
    assert not c.hold(QUEUE, 2, 1), "two jobs wait: a third daemon drains for nothing"
    assert {a.held, b.held} == {(QUEUE, 0), (QUEUE, 1)}
    assert [_owner(redis, 0), _owner(redis, 1)] == [a.owner, b.owner]
    assert 0 < redis.ttl(claim_key(QUEUE, 0)) <= 30, "a dead daemon's claim must lapse"


def test_a_holder_renews_its_own_claim(redis: Redis) -> None:
    a, b = Claim(redis, "a"), Claim(redis, "b")
    assert a.hold(QUEUE, 1, 2)
    redis.expire(claim_key(QUEUE, 0), 5)
    assert a.hold(QUEUE, 1, 3) and a.held == (QUEUE, 0)
    assert redis.ttl(claim_key(QUEUE, 0)) > 5, "renewing resets the time to live"
    assert not b.hold(QUEUE, 1, 3), "as much room as the holder: no takeover"


def test_more_room_takes_a_claim_over(redis: Redis) -> None:
    a, b = Claim(redis, "a"), Claim(redis, "b")
    assert a.hold(QUEUE, 1, 1)
    assert b.hold(QUEUE, 1, 3), "b drains sooner: it has three of four free"
    assert _owner(redis, 0) == "b"
    assert not a.hold(QUEUE, 1, 2) and a.held is None, "a finds it taken, takes smaller jobs"
    a.release()
    assert _owner(redis, 0) == "b", "a's release never drops b's claim"


def test_claims_past_the_jobs_waiting_are_given_up(redis: Redis) -> None:
    a, b = Claim(redis, "a"), Claim(redis, "b")
    assert a.hold(QUEUE, 2, 1) and b.hold(QUEUE, 2, 1)
    assert b.held == (QUEUE, 1)
    assert not b.hold(QUEUE, 1, 1), "one job left, and a holds its claim"
    assert redis.get(claim_key(QUEUE, 1)) is None
    b.release()
    a.release()
    assert redis.keys("hpo:reserve:*") == []


def test_a_claim_on_another_queue_is_given_up(redis: Redis) -> None:
    a = Claim(redis, "a")
    assert a.hold(QUEUE, 1, 1)
    assert a.hold("hpo-trials:a100:gpus=2", 1, 1)
    assert redis.get(claim_key(QUEUE, 0)) is None
    assert a.queue == "hpo-trials:a100:gpus=2"


def test_an_owner_name_with_a_space_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="no spaces"):
        Claim(redis, "my host")
