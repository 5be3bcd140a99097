"""Claims on room for waiting bigger trials: which daemons of a pool drain for them.

A job whose size fits no machine's free devices now would wait for ever while smaller
trials share the pool: they take each device as it frees. So a daemon that sees such a
job *claims* it: while it holds the claim it takes no smaller job and its runners lease
no next trial with a finish, and its devices free up until the job fits (then it pops
the job like any other).

Each waiting job of a queue can be claimed by one daemon: the claims are Redis keys
``hpo:reserve:<queue>#<k>`` for ``k`` below the number of jobs waiting, each with a
time to live, so that as many machines drain as there are jobs waiting, never more, and
a daemon that died gives its claim up within :data:`TTL` seconds. A machine drains
faster the more it has free already, so a daemon with more free than a holder takes
that holder's claim over; the holder finds its claim gone at its next look and goes
back to taking smaller jobs.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

__all__ = ["MOST", "PREFIX", "TTL", "Claim"]

#: Seconds a claim lasts unless renewed.
TTL = 30
#: At most this many claims per queue (more jobs waiting wait for a claim to end).
MOST = 64
PREFIX = "hpo:reserve:"

# Take claim KEYS[1] for ARGV[1] (owner) with ARGV[2] (its free room, a number) when
# it is free, already ours, or held by an owner with less room than ours; 1 if ours.
_TAKE = """
local now = redis.call('GET', KEYS[1])
if now then
  local sep = string.find(now, ' ', 1, true)
  local owner, room = string.sub(now, 1, sep - 1), tonumber(string.sub(now, sep + 1))
  if owner ~= ARGV[1] and room >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""
# Delete claim KEYS[1] when ARGV[1] holds it.
_DROP = """
local now = redis.call('GET', KEYS[1])
if now and string.sub(now, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def claim_key(queue: str, index: int) -> str:
    """The Redis key of claim ``index`` on ``queue``'s waiting jobs."""
    return f"{PREFIX}{queue}#{index}"


class Claim:
    """One daemon's claim (at most one at a time) on room for a waiting job.

    ``redis``: a synchronous redis-py client; ``owner``: the daemon's name (no spaces).
    """

    def __init__(self, redis: Any, owner: str, *, ttl: int = TTL) -> None:
        if " " in owner:
            raise ValueError(f"a claim's owner has no spaces: {owner!r}")
        self.redis, self.owner, self.ttl = redis, owner, ttl
        #: (queue, index) of the claim held, None when none
        self.held: tuple[str, int] | None = None
        self._take = redis.register_script(_TAKE)
        self._drop = redis.register_script(_DROP)

    @property
    def queue(self) -> str | None:
        """The queue whose waiting job this daemon holds room for."""
        return None if self.held is None else self.held[0]

    def hold(self, queue: str, waiting: int, room: float | Fraction) -> bool:
        """Hold (take or renew) a claim on one of ``waiting`` jobs of ``queue``, with
        ``room`` free for it now; whether one is held. A claim held on another queue, or
        past the jobs still waiting, is given up first."""
        count = min(waiting, MOST)
        if self.held is not None and (self.held[0] != queue or self.held[1] >= count):
            self.release()
        order = list(range(count))
        if self.held is not None:  # ours first: renewed unless another took it over
            order.remove(self.held[1])
            order.insert(0, self.held[1])
        self.held = None
        for index in order:
            args = [self.owner, repr(float(room)), self.ttl]
            if self._take(keys=[claim_key(queue, index)], args=args):
                self.held = (queue, index)
                return True
        return False

    def release(self) -> None:
        """Give the claim up (if another daemon took it over, that one keeps it)."""
        if self.held is not None:
            self._drop(keys=[claim_key(*self.held)], args=[self.owner])
            self.held = None
