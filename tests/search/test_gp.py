"""The GP posterior of ``search.gp``: covariances and the fantasies of points in flight
against a dense Gaussian computation."""

from __future__ import annotations

import numpy as np

from search.gp import Fantasies, Posterior
from search.gp_kernel import fit_map


def _fitted(seed: int = 0) -> tuple[Posterior, np.ndarray, np.ndarray, np.ndarray]:
    """A posterior over 12 candidates after 15 observations, and the dense prior and
    posterior pieces to check it against."""
    rng = np.random.default_rng(seed)
    x = rng.random((15, 2))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2
    y = (y - y.mean()) / y.std()
    kernel, noise = fit_map(x, y, maxiter=80)
    candidates = rng.random((12, 2))
    post = Posterior(kernel, noise, x, y, candidates)
    gram = kernel(x) + (noise + 1e-10) * np.eye(len(x))
    cross = kernel(candidates, x)
    dense_cov = kernel(candidates) - cross @ np.linalg.solve(gram, cross.T)
    dense_mean = cross @ np.linalg.solve(gram, y)
    return post, dense_mean, dense_cov, candidates


def test_posterior_covariance_is_the_dense_one() -> None:
    post, mean, cov, _ = _fitted()
    assert np.allclose(post.mean, mean, atol=1e-8)
    assert np.allclose(post.covariance([3, 7]), cov[:, [3, 7]], atol=1e-8)
    assert np.allclose(post.var, np.diag(cov), atol=1e-8)


def test_fantasies_condition_every_candidate_on_each_draw() -> None:
    post, mean, cov, _ = _fitted(1)
    flying = [2, 5]
    z = np.random.default_rng(3).standard_normal((2, 4))
    fant = Fantasies(post, flying, z)
    rest = [i for i in range(len(mean)) if i not in flying]
    means = fant.mean(np.arange(len(mean)))
    # Dense Gaussian conditioning on the latent values drawn at the points in flight.
    gain = cov[np.ix_(rest, flying)] @ np.linalg.inv(cov[np.ix_(flying, flying)])
    for s in range(z.shape[1]):
        expected = mean[rest] + gain @ (fant.draws[:, s] - mean[flying])
        assert np.allclose(means[rest, s], expected, atol=1e-6)
    expected_var = np.diag(cov)[rest] - np.einsum("ij,ji->i", gain, cov[np.ix_(flying, rest)])
    assert np.allclose(fant.var[rest], expected_var, atol=1e-6)
    # At a point in flight the draw is the value: conditioned on it, nothing is left.
    assert np.allclose(means[flying], fant.draws, atol=1e-5)
    assert np.all(fant.var[flying] < 1e-6)


def test_fantasy_draws_follow_the_joint_posterior_and_the_given_normals() -> None:
    post, mean, cov, _ = _fitted(2)
    flying = [0, 4, 9]
    z = np.random.default_rng(0).standard_normal((3, 20_000))
    draws = Fantasies(post, flying, z).draws
    assert np.allclose(draws.mean(axis=1), mean[flying], atol=0.03)
    assert np.allclose(np.cov(draws), cov[np.ix_(flying, flying)], atol=0.03)
    # The same normals give the same fantasies, and the first columns' draws do not
    # depend on columns added after them (a batch grows by appending).
    again = Fantasies(post, flying[:2], z[:2]).draws
    assert np.allclose(again, draws[:2])
