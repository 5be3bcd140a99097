"""The GP kernel of ``search.bayes`` and its hyperparameter fit: a Matern 5/2 kernel with
one length scale per feature, fitted by maximum a posteriori under weak priors.

Why not scikit-learn's (scikit-optimize's) fit: it maximizes the likelihood alone, and
with a few dozen observations in several dimensions the likelihood is flat or peaked at
extremes. Length scales run to their bounds (a dimension "irrelevant", or the function
"white noise"), the posterior collapses onto the data and the acquisition stops
exploring, which is what lost multimodal problems. Priors that favour length scales of
the order of the (unit) feature range, a moderate signal scale and little noise keep the
model sensible at small sizes and let the data override them at large ones; Optuna's
GPSampler uses priors of this kind (stated below), which is where they come from.

Model, on features in the unit cube (one-hot for categoricals) and standardized targets::

    k(a, b) = scale * (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),  r^2 = sum_i lam_i (a_i - b_i)^2
    y = f(x) + eps,  eps ~ N(0, noise)

with ``lam_i`` the inverse squared length scales. Log priors: ``-(0.1 / lam + 0.1 lam)``
per ``lam_i`` (peaked at ``lam = 1``), Gamma(2, 1) on ``scale`` and Gamma(1.1, 30) on
``noise`` (mean 0.037, in units of the target variance), noise at least ``MIN_NOISE``.

Contract: :func:`fit_map` is deterministic in its arguments (L-BFGS from the priors'
modes, and seeded restarts), and never raises on degenerate data: where no
factorization succeeds, the priors' modes are returned.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky
from scipy.optimize import minimize

__all__ = ["MIN_NOISE", "Matern52", "fit_map"]

MIN_NOISE = 1e-6
_SQRT5 = math.sqrt(5.0)
_LOG_LAM_BOUNDS = (-9.0, 9.0)  # length scales from about 1/90 to 90 unit ranges


class Matern52:
    """``scale`` x Matern 5/2 over the ``lam``-weighted distance (module doc). Called as
    scikit-learn kernels are: ``k(a)`` the Gram matrix, ``k(a, b)`` the cross matrix,
    ``k.diag(a)`` the prior variances."""

    def __init__(self, lam: np.ndarray, scale: float) -> None:
        self.lam = np.asarray(lam, dtype=float)
        self.scale = float(scale)

    def sq_dist(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Weighted squared distances ``r^2``, shape (len(a), len(b))."""
        wa, wb = a * np.sqrt(self.lam), b * np.sqrt(self.lam)
        d2 = (wa**2).sum(1)[:, None] + (wb**2).sum(1)[None, :] - 2.0 * wa @ wb.T
        return np.maximum(d2, 0.0)

    def of_sq_dist(self, d2: np.ndarray) -> np.ndarray:
        r = _SQRT5 * np.sqrt(d2)
        return self.scale * (1.0 + r + r * r / 3.0) * np.exp(-r)

    def __call__(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        return self.of_sq_dist(self.sq_dist(a, a if b is None else b))

    def diag(self, a: np.ndarray) -> np.ndarray:
        return np.full(len(a), self.scale)

    def __repr__(self) -> str:
        return f"Matern52(scale={self.scale:.3g}, lengthscales={np.round(self.lam**-0.5, 3)})"


def _neg_log_posterior(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood minus log prior, and its gradient, in the
    unconstrained parameters ``theta = (log lam, log scale, log(noise - MIN_NOISE))``."""
    n, d = x.shape
    lam, scale = np.exp(theta[:d]), math.exp(theta[d])
    raw = math.exp(theta[d + 1])
    noise = MIN_NOISE + raw
    diff2 = (x[:, None, :] - x[None, :, :]) ** 2  # (n, n, d)
    d2 = diff2 @ lam
    r = _SQRT5 * np.sqrt(d2)
    e = np.exp(-r)
    k = scale * (1.0 + r + r * r / 3.0) * e
    gram = k + noise * np.eye(n)
    chol = cholesky(gram, lower=True, check_finite=False)
    alpha = cho_solve((chol, True), y, check_finite=False)
    nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * n * math.log(2 * math.pi)
    w = np.outer(alpha, alpha) - cho_solve((chol, True), np.eye(n), check_finite=False)
    # dK/dlog lam_i = lam_i * dk/d(r^2) * diff2_i, dk/d(r^2) = -5/6 scale (1 + r) e^-r
    dk_dd2 = (-5.0 / 6.0) * scale * (1.0 + r) * e
    grad = np.empty(d + 2)
    grad[:d] = -0.5 * lam * np.einsum("ab,abi->i", w * dk_dd2, diff2)
    grad[d] = -0.5 * float(np.sum(w * k))
    grad[d + 1] = -0.5 * float(np.trace(w)) * raw
    # log prior and its gradient in theta
    log_prior = -float(np.sum(0.1 / lam + 0.1 * lam))
    log_prior += math.log(scale) - scale  # Gamma(2, 1)
    log_prior += 0.1 * math.log(noise) - 30.0 * noise  # Gamma(1.1, 30)
    grad[:d] -= 0.1 / lam - 0.1 * lam
    grad[d] -= 1.0 - scale
    grad[d + 1] -= (0.1 / noise - 30.0) * raw
    return float(nll - log_prior), grad


def fit_map(
    x: np.ndarray, y: np.ndarray, *, maxiter: int, restarts: int = 0, seed: int = 0
) -> tuple[Matern52, float]:
    """The maximum a posteriori kernel and noise for features ``x`` (n, d) in the unit
    cube and standardized targets ``y`` (module doc): L-BFGS from the priors' modes,
    plus ``restarts`` runs from length scales drawn with ``seed``; the best one wins."""
    n, d = x.shape
    theta0 = np.zeros(d + 2)
    theta0[d + 1] = math.log(0.1)
    bounds = [_LOG_LAM_BOUNDS] * d + [(-7.0, 4.0), (-16.0, 1.0)]
    starts = [theta0]
    rng = np.random.default_rng(seed)
    for _ in range(restarts):
        start = theta0.copy()
        start[:d] = rng.normal(0.0, 1.5, d)
        starts.append(start)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            return _neg_log_posterior(theta, x, y)
        except (LinAlgError, FloatingPointError, ValueError):
            return 1e25, np.zeros_like(theta)  # L-BFGS steps back

    theta, best = theta0, math.inf
    if n >= 2:
        for start in starts:
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                result = minimize(
                    objective,
                    start,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": maxiter, "gtol": 1e-3},
                )
            if np.all(np.isfinite(result.x)) and result.fun < min(best, 1e24):
                theta, best = result.x, float(result.fun)
    lam, scale = np.exp(theta[:d]), math.exp(theta[d])
    return Matern52(lam, scale), MIN_NOISE + math.exp(theta[d + 1])
