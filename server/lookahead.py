"""Suggestions asked ahead, for a study whose model is slower than its trials.

The scheduler asks a study's strategy for as many suggestions as it has free slots,
under its one lock, on every finish. When trials take minutes that costs nothing; when
they take less time than a model-based ask (a GP at hundreds of trials), the asks
*are* the study's throughput: every finish waits for one. Such a study is better
served by asking once for a few more suggestions than the free slots and handing the
surplus (*spares*) to the next finishes. A spare was chosen with the head of its batch
counted as in flight (``bayes`` fantasizes its results), so it is what a strategy
with that many more workers would have suggested: it misses at most the few results
that arrived since.

When this happens (:meth:`Lookahead.ask_count`): the strategy allows it (its
``lookahead`` flag: its suggestions depend on results through a model, not on
bookkeeping such as rungs, generations or grid order), the study runs trials in
parallel (``max_parallel`` >= 2: with one worker the trial sequence stays the
sequential one), and its recent asks took at least :data:`BUSY_SHARE` of the time
between its finishes. Spares are only for the history they were asked for: any trial
created by anyone else, or ``max_parallel`` results arriving, discards them.

Speed, never correctness: a spare is a suggestion the strategy made, stored like any
other; losing them (a restart, an evicted cache) only costs the next ask. The
:class:`Lookahead` lives in the study's history mirror (``server.history``), the app's
cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from search import Suggestion

__all__ = ["BUSY_SHARE", "Lookahead", "spare_count"]

#: Ask ahead once the strategy's asks take this share of the time between finishes.
BUSY_SHARE = 0.25
_SMOOTHING = 0.2  # weight of the newest sample in the moving averages


@dataclass
class Lookahead:
    """One study's spares and the timings that decide whether to ask ahead."""

    spares: list[Suggestion] = field(default_factory=list)
    #: the study's trial count the spares are for (trials created so far, the spares'
    #: own batch head included), and its finished count when they were asked for
    created: int = -1
    finished: int = 0
    ask_seconds: float = 0.0  # moving average of one ask
    finish_gap: float | None = None  # moving average of the time between fills
    busy_share: float = BUSY_SHARE
    _last_fill: float | None = None

    def take(self, want: int, created: int, finished: int, max_parallel: int) -> list[Suggestion]:
        """Up to ``want`` spares when they are still for this history (``created``
        trials, ``finished`` of them done, fewer than ``max_parallel`` results since
        they were asked for), else none (and the stale ones are dropped). All or
        nothing: a fresh ask would not know about spares handed out beside it."""
        fresh = created == self.created and finished - self.finished < max_parallel
        if not fresh or len(self.spares) < want:
            self.spares.clear()
            return []
        out, self.spares = self.spares[:want], self.spares[want:]
        self.created += len(out)
        return out

    def ask_count(self, want: int, max_parallel: int, allowed: bool) -> int:
        """How many suggestions to ask for when ``want`` are needed now."""
        if not allowed or max_parallel < 2 or self.finish_gap is None:
            return want
        if self.ask_seconds < self.busy_share * self.finish_gap:
            return want
        return want + spare_count(max_parallel)

    def keep(self, extra: list[Suggestion], created: int, finished: int) -> None:
        """Hold ``extra`` for a history of ``created`` trials (the asked-for ones
        included) with ``finished`` done."""
        self.spares = list(extra)
        self.created, self.finished = created, finished

    def timed(self, ask_seconds: float, now: float) -> None:
        """Record one ask's duration and a fill at monotonic time ``now``."""
        self.ask_seconds = _average(self.ask_seconds, ask_seconds)
        self.fill_at(now)

    def fill_at(self, now: float) -> None:
        """Record a fill (whether it asked the strategy or took spares)."""
        if self._last_fill is not None:
            gap = max(0.0, now - self._last_fill)
            self.finish_gap = gap if self.finish_gap is None else _average(self.finish_gap, gap)
        self._last_fill = now


def spare_count(max_parallel: int) -> int:
    """Spares per ask ahead: a quarter of the slots (one at least). Each spare stands
    for one more point in flight when its batch was chosen; with all
    ``max_parallel - 1`` as spares, regret at 100 evaluations of 4 parallel slots
    (5 problems, 10 seeds) grew up to 13x (README), so fewer spares, at the cost of
    more asks."""
    return max(1, max_parallel // 4)


def _average(old: float, new: float) -> float:
    return new if old == 0.0 else (1 - _SMOOTHING) * old + _SMOOTHING * new
