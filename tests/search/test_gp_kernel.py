"""The GP kernel and its MAP fit (``search.gp_kernel``): exact gradients, sensible fits,
determinism, robustness on degenerate data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from search.gp import Posterior
from search.gp_kernel import MIN_NOISE, _neg_log_posterior, fit_map


def _data(n: int = 40, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, d))
    y = np.sin(6 * x[:, 0]) + 0.3 * x[:, 1]  # x3 is irrelevant
    return x, (y - y.mean()) / y.std()


def test_the_fit_objective_has_the_exact_gradient() -> None:
    x, y = _data()
    theta = np.random.default_rng(1).normal(0, 0.7, x.shape[1] + 2)
    _, grad = _neg_log_posterior(theta, x, y)
    numeric = approx_fprime(theta, lambda t: _neg_log_posterior(t, x, y)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_the_fit_finds_the_relevant_dimension_and_is_deterministic() -> None:
    x, y = _data()
    kernel, noise = fit_map(x, y, maxiter=200)
    scales = kernel.lam**-0.5
    assert scales[0] < scales[1] < scales[2]  # wiggly < linear < irrelevant
    assert MIN_NOISE <= noise < 0.05
    again, noise2 = fit_map(x, y, maxiter=200)
    assert np.array_equal(again.lam, kernel.lam) and noise2 == noise
    restarted, _ = fit_map(x, y, maxiter=200, restarts=3, seed=5)
    assert np.all(np.isfinite(restarted.lam))


@pytest.mark.parametrize("case", ["constant", "duplicates", "one point"])
def test_degenerate_data_gives_a_usable_kernel(case: str) -> None:
    x, y = _data(10)
    if case == "constant":
        y = np.zeros(10)
    elif case == "duplicates":
        x = np.repeat(x[:2], 5, axis=0)
        y = np.repeat(np.array([1.0, -1.0]), 5)
    else:
        x, y = x[:1], y[:1]
    kernel, noise = fit_map(x, y, maxiter=50)
    post = Posterior(kernel, noise, x, y, np.random.default_rng(0).random((5, x.shape[1])))
    assert np.all(np.isfinite(post.mean)) and np.all(post.var > 0)
