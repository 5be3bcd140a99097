"""Acquisition values of ``search.bayes`` over its candidates, and which candidate a
suggestion takes.

Points in flight are counted by *fantasies* (``search.gp.Fantasies``): EI and PI are
averaged over joint posterior draws of their results, under each of which the
incumbent is the best of the observations and the draw, and the candidate's posterior
is the one conditioned on the draw. That average is at most the plain acquisition (the
incumbent only falls, and the conditioned mean is the plain one on average), which
makes the plain value a bound: an ask computes the average, ``S`` draws per candidate,
only down the bound's order until nothing left can beat what it found (``top``,
``Picker.best_bounded``), instead of for thousands of candidates.

Heavy on purpose (scipy): imported where a suggestion is computed, never at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

import numpy as np
from scipy.special import ndtr

from search.gp import Fantasies, Posterior

__all__ = ["CHUNK", "Picker", "Scorer", "scorer", "top"]

#: Candidates whose fantasy average is computed at a time, best bounds first.
CHUNK = 128
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Scorer(NamedTuple):
    """An acquisition over candidates (higher is better): ``bound`` for every one, and
    ``exact(rows)`` the values of the candidates ``rows`` (indices), never above their
    bound; ``exact`` None when the bound is the value."""

    bound: np.ndarray
    exact: Callable[[np.ndarray], np.ndarray] | None


def scorer(
    name: str,
    post: Posterior,
    y_best: float,
    fant: Fantasies | None,
    skip: int,
    xi: float,
    kappa: float,
) -> Scorer:
    """Acquisition ``name`` ("EI", "PI" or "LCB"; minimizing) over the posterior's
    candidates after its first ``skip`` columns (the points in flight), with margin
    ``xi`` for EI and PI and weight ``kappa`` of the standard deviation for LCB. With
    ``fant`` EI and PI are fantasy averages (module docstring) and LCB takes the
    conditioned standard deviation."""
    var = post.var[skip:]
    if name == "LCB":
        sd = np.sqrt(var if fant is None else fant.var[skip:])
        return Scorer(-(post.mean[skip:] - kappa * sd), None)
    plain = _improvement(name, y_best - post.mean[skip:] - xi, np.sqrt(var))
    if fant is None:
        return Scorer(plain, None)
    best = np.minimum(y_best, fant.draws.min(axis=0)) - xi  # the incumbent under each draw
    sd = np.sqrt(fant.var)

    def exact(rows: np.ndarray) -> np.ndarray:
        at = rows + skip
        return _improvement(name, best - fant.mean(at), sd[at, None]).mean(axis=1)

    return Scorer(plain, exact)


def _improvement(name: str, gap: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """EI or PI (``name``) of candidates whose incumbent lies ``gap`` below their mean,
    for a posterior standard deviation ``sd``."""
    z = gap / sd
    if name == "PI":
        return ndtr(z)
    return gap * ndtr(z) + sd * np.exp(-0.5 * z * z) * _INV_SQRT_2PI


def top(score: Scorer, k: int) -> np.ndarray:
    """Indices of the ``k`` best candidates by ``score``, the exact values computed
    down the bound's order only until the k-th best found is not below any bound left."""
    if score.exact is None:
        return np.argsort(-score.bound)[:k]
    for values, _, left in _down_the_bound(score):
        best = np.argsort(-values, kind="stable")[:k]
        if left is None or values[best[-1]] >= left:
            return best
    raise AssertionError("unreachable: the last chunk has nothing left")


def _down_the_bound(score: Scorer) -> Iterator[tuple[np.ndarray, np.ndarray, float | None]]:
    """Exact values computed in growing chunks down the bound's order: after each,
    ``(values, head, left)``: every value so far (-inf where not computed), the
    candidates computed, best bound first, and the highest bound of those not yet
    computed (None once every candidate is)."""
    bound, exact = score
    assert exact is not None
    order = np.argsort(-bound, kind="stable")
    done, values = 0, np.full(len(bound), -np.inf)
    while done < len(bound):
        upto = min(len(bound), max(2 * done, CHUNK))
        values[order[done:upto]] = exact(order[done:upto])
        done = upto
        yield values, order[:done], float(bound[order[done]]) if done < len(bound) else None


class Picker:
    """Which candidates an ask may still suggest, found lazily: a candidate's point and
    key (``point(i)``) are built only when it tops an acquisition, so an ask over
    thousands of candidates builds a handful of points instead of all of them.

    :meth:`best` is the argmax over candidates whose point is neither in ``hard`` (in
    flight or already suggested) nor in ``seen`` (the history), when any such candidate
    exists; else over those merely not in ``hard`` (a tiny discrete space); None if
    none is left. :meth:`take` suggests one, blocking every candidate with its point."""

    def __init__(
        self,
        point: Callable[[int], tuple[dict[str, Any], Hashable]],
        size: int,
        hard: set[Any],
        seen: set[Any],
    ) -> None:
        self._make = point
        self._hard = hard
        self._seen = seen
        self._points: dict[int, tuple[dict[str, Any], Hashable]] = {}
        self._spent = np.zeros(size, dtype=bool)  # known to be in ``hard``
        self._stale = np.zeros(size, dtype=bool)  # known to be in the history
        self._fresh_left = True

    def _point(self, i: int) -> tuple[dict[str, Any], Hashable]:
        if i not in self._points:
            self._points[i] = self._make(i)
        return self._points[i]

    def best_bounded(self, score: Scorer) -> int | None:
        """:meth:`best` by ``score``: its exact values are computed down the bound's
        order only until a fresh candidate's value is not below any bound left, so the
        answer is that of :meth:`best` over every exact value."""
        if score.exact is None:
            return self.best(score.bound)
        if self._fresh_left:
            for values, head, left in _down_the_bound(score):
                j = self._first_fresh(head[np.argsort(-values[head], kind="stable")])
                if j is not None and (left is None or values[j] >= left):
                    return j
        # No fresh candidate (a tiny space): the best of every exact value.
        return self.best(score.exact(np.arange(len(score.bound))))

    def best(self, values: np.ndarray) -> int | None:
        """The allowed candidate (class docstring) with the highest ``values``."""
        order = np.argsort(-values, kind="stable")  # np.argmax's tie-break: first index
        if self._fresh_left:
            j = self._first_fresh(order)
            if j is not None:
                return j
            self._fresh_left = False
        for i in order[~self._spent[order]]:
            if self._point(int(i))[1] in self._hard:
                self._spent[i] = True
            else:
                return int(i)
        return None

    def _first_fresh(self, order: np.ndarray) -> int | None:
        """The first of the candidates ``order`` whose point is in neither ``hard``
        nor ``seen``."""
        for i in order[~(self._spent | self._stale)[order]]:
            key = self._point(int(i))[1]
            if key in self._hard:
                self._spent[i] = True
            elif key in self._seen:
                self._stale[i] = True
            else:
                return int(i)
        return None

    def take(self, j: int) -> dict[str, Any]:
        """Suggest candidate ``j``: its point, now in ``hard``."""
        params, key = self._point(j)
        self._hard.add(key)
        self._spent[j] = True
        return params
