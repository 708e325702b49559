import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import np_velocity

from gflow.twolayer import model


def _net(key=0, n=7, d=5, h=6, scale=0.7, second_layer="balanced"):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(key), 3)
    x = jax.random.normal(k1, (n, d), jnp.float64)
    y = jnp.where(jax.random.bernoulli(k2, 0.5, (n,)), 1.0, -1.0)
    p = model.init_params(key=k3, d=d, width=h, init_scale=scale, second_layer=second_layer, dtype=jnp.float64)
    return p, x, y


@pytest.mark.parametrize("c", [1.0, 0.3, 17.0])
def test_hand_written_gradient_matches_autodiff(c):
    p, x, y = _net()
    L, g = model.loss_and_grad(p, x, y, c)
    L_ref, g_ref = jax.value_and_grad(model.loss)(p, x, y, c)
    np.testing.assert_allclose(L, L_ref, rtol=1e-13)
    np.testing.assert_allclose(g.W, g_ref.W, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(g.a, g_ref.a, rtol=1e-11, atol=1e-14)


def test_loss_is_stable_for_huge_margins():
    m = jnp.asarray([1e4, -1e4, 0.0])
    val = model.logistic_loss(m)
    assert np.isfinite(val)
    np.testing.assert_allclose(val, (0.0 + 1e4 + np.log(2.0)) / 3, rtol=1e-12)


def test_balanced_init_has_zero_invariant_and_scales_linearly():
    p1, _, _ = _net(scale=1.0)
    p3, _, _ = _net(scale=3.0)
    np.testing.assert_allclose(model.balance_invariant(p1), 0.0, atol=1e-13)
    np.testing.assert_allclose(p3.W, 3.0 * p1.W, rtol=1e-13)
    np.testing.assert_allclose(p3.a, 3.0 * p1.a, rtol=1e-13)


def test_balanced_init_signs_are_random():
    """a_j(0) = ±‖w_j(0)‖ with a fair random sign: both signs occur, about half each."""
    p = model.init_params(key=model.init_key(0), d=3, width=2000, init_scale=1.0, dtype=jnp.float64)
    a, norms = np.asarray(p.a), np.linalg.norm(np.asarray(p.W), axis=1)
    np.testing.assert_allclose(np.abs(a), norms, rtol=1e-12)
    assert abs(np.mean(a > 0) - 0.5) < 4 * 0.5 / np.sqrt(2000)


def test_init_row_variance_is_one_over_d():
    key = jax.random.PRNGKey(3)
    p = model.init_params(key=key, d=400, width=500, init_scale=1.0, dtype=jnp.float64)
    # rows ~ N(0, I/d): ‖w_j‖² has mean 1 and sd sqrt(2/d)
    sq = np.sum(np.asarray(p.W) ** 2, axis=1)
    assert abs(sq.mean() - 1.0) < 4 * np.sqrt(2 / 400) / np.sqrt(500)
    g = model.init_params(key=key, d=400, width=500, init_scale=2.0, second_layer="gaussian", dtype=jnp.float64)
    assert abs(np.var(np.asarray(g.a)) - 4.0 / 500) < 0.2 * 4.0 / 500


def test_homogeneity_scale_equals_multiplier():
    p, x, y = _net(scale=1.0)
    alpha = 0.37
    scaled = jax.tree.map(lambda v: alpha * v, p)
    np.testing.assert_allclose(model.apply(scaled, x), model.apply(p, x, alpha**2), rtol=1e-13)


def test_effective_predictor_uses_positive_neurons_only():
    W = jnp.asarray([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    a = jnp.asarray([2.0, 3.0, -1.0])
    np.testing.assert_allclose(model.effective_predictor(model.Params(W, a)), [2.0, 6.0])


def test_unknown_second_layer_is_rejected():
    with pytest.raises(ValueError, match="second_layer"):
        model.init_params(key=jax.random.PRNGKey(0), d=2, width=2, init_scale=1.0, second_layer="uniform")


@pytest.mark.parametrize("use_gram", [False, True])
def test_flow_velocity_matches_gradient_and_margin_jvp(use_gram):
    """v = −∇L (against the independent numpy velocity of tests/reference.py, and the hand-written gradient),
    and the margin rate equals the directional derivative of y·c·f(x) along v."""
    p, x, y = _net(n=6, d=9, h=7)
    c = 1.7
    gram = x @ x.T if use_gram else None
    v, dm = model.flow_velocity(p, x, y, c, gram)
    v_ref = np_velocity(np.asarray(p.W), np.asarray(p.a), np.asarray(x), np.asarray(y), c)
    np.testing.assert_allclose(v.W, v_ref[0], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(v.a, v_ref[1], rtol=1e-11, atol=1e-15)
    _, g = model.loss_and_grad(p, x, y, c)
    np.testing.assert_allclose(v.W, -g.W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v.a, -g.a, rtol=1e-12, atol=1e-15)
    _, dm_ref = jax.jvp(lambda q: y * model.apply(q, x, c), (p,), (v,))
    np.testing.assert_allclose(dm, dm_ref, rtol=1e-11, atol=1e-14)


def test_loss_slope_is_the_logistic_derivative():
    """ℓ′ from forward-mode differentiation of the one loss definition equals the closed form
    −sigmoid(−m) = −1/(1 + e^m) (numpy float64), including large |m| where a naive form overflows."""
    m = np.array([-800.0, -40.0, -3.0, -1e-3, 0.0, 2e-3, 1.5, 35.0, 800.0])
    value, slope = model.loss_slope(jnp.asarray(m, jnp.float64))
    ref_value = np.logaddexp(0.0, -m)
    ref_slope = -np.exp(-np.logaddexp(0.0, m))  # −1/(1 + e^m), stable
    np.testing.assert_allclose(np.asarray(value), ref_value, rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.asarray(slope), ref_slope, rtol=1e-12, atol=1e-300)
