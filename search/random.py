"""Random search: every parameter sampled independently from its own distribution."""

from __future__ import annotations

import numpy as np

from search.base import Strategy, Suggestion

__all__ = ["RandomStrategy"]


class RandomStrategy(Strategy):
    """Independent sampling per parameter (uniform, log-uniform, lattice, choice).

    The generator is seeded with ``[seed, len(history)]``: a strategy rebuilt from
    a history that grew by the trials it suggested draws fresh values, while the
    same seed and history length always give the same draws. Successive ``ask``
    calls on one instance continue the same stream, so they do not repeat either.
    Takes no options; the history's contents are not used, only its length.
    """

    name = "random"

    def _setup(self) -> None:
        self._rng = np.random.default_rng([self.seed, len(self.history)])

    def ask(self, n: int) -> list[Suggestion]:
        """``n`` independent draws from the space."""
        self._check_n(n)
        return [Suggestion(params=self.space.sample(self._rng)) for _ in range(n)]
