import jax.numpy as jnp
import numpy as np
from scipy import stats

from gflow import theory


def test_bayes_error_matches_scipy():
    for k, s in [(1.0, 1.0), (2.0, 0.5), (0.1, 3.0)]:
        np.testing.assert_allclose(theory.bayes_error(k, s), stats.norm.cdf(-k / s), rtol=1e-12)


def test_linear_test_error_matches_monte_carlo():
    """E(v) against the error rate of sign⟨v, x⟩ on 400k samples of the mixture."""
    rng = np.random.default_rng(0)
    d, kappa, sigma, m = 6, 1.0, 0.8, 400_000
    s = rng.normal(size=d)
    s /= np.linalg.norm(s)
    v = s + 0.9 * rng.normal(size=d)
    y = rng.choice([-1.0, 1.0], size=m)
    x = kappa * y[:, None] * s + sigma * rng.normal(size=(m, d))
    mc = np.mean(y * (x @ v) <= 0)
    exact = float(theory.linear_test_error(jnp.asarray(v), jnp.asarray(s), kappa, sigma))
    assert abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / m)
    assert float(theory.linear_test_error(jnp.asarray(s), jnp.asarray(s), kappa, sigma)) == float(theory.bayes_error(kappa, sigma))


def test_cosine_and_zero_vector():
    np.testing.assert_allclose(theory.cosine(jnp.asarray([1.0, 0.0]), jnp.asarray([1.0, 1.0])), 1 / np.sqrt(2))
    assert float(theory.cosine(jnp.zeros(2), jnp.ones(2))) == 0.0
    assert float(theory.linear_test_error(jnp.zeros(2), jnp.ones(2) / np.sqrt(2), 1.0, 1.0)) == 0.5
