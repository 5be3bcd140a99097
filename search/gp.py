"""The Gaussian-process surrogate of ``search.bayes``: fit, posterior, lies and fantasies.

The kernel and its hyperparameter fit are ``search.gp_kernel``'s (a Matern 5/2 kernel
with one length scale per feature, fitted by maximum a posteriori; its docstring says
why not scikit-optimize's maximum-likelihood fit). The posterior is computed here from a
Cholesky factor because

* scikit-optimize's ``predict`` forms the full inverse and an ``O(m n^2)`` einsum for
  the standard deviation, seconds for a few thousand candidates at a few hundred trials;
* its ``Optimizer.ask(n, strategy="cl_min")`` refits the model for every lie, while with
  hyperparameters fixed a lie is an exact rank-one update of the posterior (``add_lie``).

Fitted hyperparameters are cached by a digest of everything the fit depends on (data,
seed, settings), so the cache changes speed, never results. The server rebuilds the
strategy for every scheduling pass while the completed set rarely changes between
passes (only the trials in flight do), so most asks skip the fit.

What the fit sees is chosen here too (``fit_subset``, ``refit_size``): a bounded subset
of the observations, and hyperparameters refitted on a schedule of sizes rather than on
every new observation, both functions of the history alone.

Heavy on purpose (scipy): only ``search.bayes`` imports it,
where a suggestion is computed, never at import time.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from skopt.space import Space

__all__ = [
    "CACHE_SIZE",
    "Posterior",
    "clear_cache",
    "fit_kernel",
    "fit_subset",
    "normalized",
    "refit_size",
]

CACHE_SIZE = 64
# Jitter added to the kernel diagonal, as scikit-learn's default ``alpha``.
_JITTER = 1e-10
_cache: OrderedDict[str, tuple[Any, float]] = OrderedDict()
_lock = threading.Lock()  # the server may build strategies from several threads


def clear_cache() -> None:
    """Forget every fitted kernel (benchmarks use it to time cold fits)."""
    with _lock:
        _cache.clear()


def fit_kernel(
    space: Space,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    n_restarts: int,
    maxiter: int,
) -> tuple[Any, float]:
    """Fit GP hyperparameters on features ``x`` and targets ``y`` (already normalized).

    Returns ``(kernel, noise)``: the fitted noise-free kernel and the white-noise level.
    Deterministic in its arguments; cached (see the module docstring).
    """
    digest = hashlib.sha256()
    for part in (x.shape, seed, n_restarts, maxiter, repr(space)):
        digest.update(repr(part).encode())
    digest.update(np.ascontiguousarray(x, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=float).tobytes())
    key = digest.hexdigest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    from search.gp_kernel import fit_map

    result = fit_map(x, y, maxiter=maxiter, restarts=n_restarts, seed=seed)
    with _lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


class Posterior:
    """The GP posterior over a fixed set of candidate points, updatable by lies.

    ``mean`` and ``var`` (latent, noise-free variance) are arrays over the candidates,
    in the order they were given (``extend`` appends).
    ``add_lie(j, value)`` conditions on an observation ``value`` at candidate ``j``
    with the hyperparameters held fixed (exact, ``O(m n)``): this is how a batch of
    suggestions spreads out instead of piling onto one point (constant liar).
    """

    def __init__(
        self, kernel: Any, noise: float, x: np.ndarray, y: np.ndarray, candidates: np.ndarray
    ) -> None:
        self._kernel = kernel
        self._noise = noise + _JITTER
        gram = kernel(x)
        gram[np.diag_indices_from(gram)] += self._noise
        self._x = x
        self._chol = cholesky(gram, lower=True, check_finite=False)
        self._alpha = cho_solve((self._chol, True), y, check_finite=False)
        self._candidates = candidates[:0]
        self.mean = np.zeros(0)
        self.var = np.zeros(0)
        self._v = np.zeros((len(x), 0))
        self._updates: list[np.ndarray] = []  # scaled covariance columns of earlier lies
        self.extend(candidates)

    def extend(self, candidates: np.ndarray) -> None:
        """Add candidates (before any lie): one factorization serves every stage of
        the acquisition search."""
        if self._updates:
            raise RuntimeError("extend() after add_lie()")
        cross = self._kernel(candidates, self._x)  # (m, n)
        v = solve_triangular(self._chol, cross.T, lower=True, check_finite=False)  # (n, m)
        var = self._kernel.diag(candidates) - np.einsum("ij,ij->j", v, v)
        self._candidates = np.vstack([self._candidates, candidates])
        self.mean = np.concatenate([self.mean, cross @ self._alpha])
        self.var = np.concatenate([self.var, np.maximum(var, 1e-12)])
        self._v = np.hstack([self._v, v])

    def covariance(self, columns: list[int]) -> np.ndarray:
        """Posterior covariance (latent) between every candidate and the candidates
        ``columns``: shape (m, len(columns)), lies included."""
        cov = self._kernel(self._candidates, self._candidates[columns])
        cov -= self._v.T @ self._v[:, columns]
        for u in self._updates:
            cov -= np.outer(u, u[columns])
        return cov

    def add_lie(self, j: int, value: float) -> None:
        """Condition on observing ``value`` (normalized target) at candidate ``j``."""
        cov = self._kernel(self._candidates, self._candidates[j : j + 1])[:, 0]
        cov -= self._v.T @ self._v[:, j]
        for u in self._updates:
            cov -= u * u[j]
        denom = self.var[j] + self._noise
        self.mean = self.mean + cov * ((value - self.mean[j]) / denom)
        u = cov / np.sqrt(denom)
        self.var = np.maximum(self.var - u * u, 1e-12)
        self._updates.append(u)


def fit_subset(items: list[Any], limit: int, losses: Any = None) -> list[Any]:
    """At most ``limit`` of ``items`` (observations ``(params, loss)``, or indices into
    ``losses``), in their order: the best half by loss, then the most recent. The best
    points pin down the incumbent's region, the recent ones where the search is now;
    this bounds the model's cubic cost at hundreds of trials."""
    if len(items) <= limit:
        return items
    loss = [losses[i] for i in items] if losses is not None else [it[1] for it in items]
    order = sorted(range(len(items)), key=lambda i: (loss[i], i))
    keep = set(order[: limit // 2])
    for i in range(len(items) - 1, -1, -1):
        if len(keep) == limit:
            break
        keep.add(i)
    return [items[i] for i in sorted(keep)]


def normalized(losses: np.ndarray) -> np.ndarray:
    """Losses shifted to mean 0 and scaled to standard deviation 1 (when not constant)."""
    return (losses - losses.mean()) / (float(losses.std()) or 1.0)


def refit_size(observed: int, first: int, growth: float) -> int:
    """The largest size of the refit schedule not above ``observed``: ``first``, then
    each size grown by the fraction ``growth`` (rounded up, by one at least). Early on
    that is every size (the model changes most there, and fits are cheap); at
    hundreds of observations a fit every tenth more instead of on every trial."""
    if growth <= 0:
        return observed
    size = min(first, observed)
    while True:
        bigger = max(size + 1, math.ceil(size * (1 + growth)))
        if bigger > observed:
            return size
        size = bigger


class Fantasies:
    """What the candidates' posterior becomes given joint draws of the latent values at
    some of them (points in flight): ``draws`` (r, S) at those points, and per candidate
    the conditional variance ``var`` (m,), the same under every draw, and the
    conditional means under each draw (``mean(rows)``, (len(rows), S)). ``z`` (r, S)
    are the standard normal draws, so the same ``z`` gives the same fantasies."""

    def __init__(self, post: Posterior, flying: list[int], z: np.ndarray) -> None:
        cross = post.covariance(flying)  # (m, r)
        chol = _jittered_cholesky(cross[flying])
        self._w = solve_triangular(chol, cross.T, lower=True, check_finite=False).T  # (m, r)
        self._z = z
        self._mean = post.mean
        self.draws = post.mean[flying][:, None] + chol @ z
        self.var = np.maximum(post.var - np.einsum("ij,ij->i", self._w, self._w), 1e-12)

    def mean(self, rows: np.ndarray) -> np.ndarray:
        """Conditional means of the candidates ``rows`` (indices) under each draw."""
        return self._mean[rows, None] + self._w[rows] @ self._z


def _jittered_cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a covariance that may be singular (points in flight
    that coincide, or sit on observations), with the least diagonal jitter that works."""
    scale = 1.0 + float(np.max(np.diag(cov), initial=0.0))
    for jitter in (1e-9, 1e-6, 1e-3):
        try:
            return cholesky(cov + jitter * scale * np.eye(len(cov)), lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            continue
    return np.diag(np.sqrt(np.maximum(np.diag(cov), 0.0) + 1e-3 * scale))
