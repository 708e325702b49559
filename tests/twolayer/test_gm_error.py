"""The semi-analytic Gaussian-mixture test error (gflow.twolayer.gm_error) against independent references:
an angular integral in d = 2 (scipy quad, float64, written without the breakpoint algebra), numpy
Monte-Carlo, the closed form of a linear net; ties; pairing of draws across nets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.special import ndtr

import gflow
from gflow.twolayer import gm_error, model
from gflow.twolayer.observables import ObsArgs, observe


def reference_error_d2(W, a, kappa, sigma):
    """(P(y·f < 0), P(f = 0)) for s = e₁ in d = 2, averaged over y = ±1, by integrating the angular density of
    N(κy·e₁, σ²I) over the arcs where y·f < 0 (f is 1-homogeneous, so only the direction of x matters).
    Sign changes of f(θ) are found on a fine grid and refined with brentq."""
    W, a = np.asarray(W, np.float64), np.asarray(a, np.float64)

    def g(th):
        u = np.stack([np.cos(th), np.sin(th)], -1)
        return np.maximum(u @ W.T, 0.0) @ a

    grid = np.linspace(-np.pi, np.pi, 20001)
    vals = g(grid)
    cuts = [-np.pi]
    for i in np.nonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))[0]:
        lo, hi = grid[i], grid[i + 1]
        cuts.append(
            optimize.brentq(g, lo, hi, xtol=1e-15) if vals[i] * vals[i + 1] < 0 else (hi if vals[i + 1] == 0 else lo)
        )
    # activation boundaries of every neuron (where a tie arc may start or end)
    for w in W:
        phi = np.arctan2(w[1], w[0])
        cuts += [((phi + sgn * np.pi / 2 + np.pi) % (2 * np.pi)) - np.pi for sgn in (1, -1)]
    cuts = np.unique(np.clip(np.asarray(cuts + [np.pi]), -np.pi, np.pi))
    err = tie = 0.0
    for y in (1.0, -1.0):
        k = kappa / sigma

        def dens(th):
            q = y * k * np.cos(th)
            return np.exp(-0.5 * k**2) / (2 * np.pi) * (1 + np.sqrt(2 * np.pi) * q * np.exp(0.5 * q**2) * ndtr(q))

        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if hi - lo < 1e-14:
                continue
            mid = g(0.5 * (lo + hi))
            mass = integrate.quad(dens, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
            if mid == 0:
                tie += 0.5 * mass
            elif y * mid < 0:
                err += 0.5 * mass
    return err, tie


def wedge_net():
    """Neurons near ±s, all tilted towards the same side e ⟂ s: every neuron is off on a wedge around −e, so f = 0 there (a tie)."""
    ang = np.array([0.3, 0.2, 0.1, np.pi - 0.25, np.pi - 0.15])  # all tilted towards +e: all off around −e
    W = np.stack([np.cos(ang), np.sin(ang)], -1) * np.array([1.0, 0.7, 1.3, 0.9, 1.1])[:, None]
    a = np.array([1.0, 0.8, 1.2, -1.0, -0.9])
    return W, a


def random_net(seed, h=7, d=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(h, d)), rng.normal(size=h)


@pytest.mark.parametrize("net", ["wedge", "random0", "random1"])
def test_exact_error_matches_angular_reference_d2(net):
    W, a = wedge_net() if net == "wedge" else random_net(int(net[-1]))
    kappa, sigma = 1.0, 0.4
    ref_err, ref_tie = reference_error_d2(W, a, kappa, sigma)
    s = np.array([1.0, 0.0])
    for name, w in gm_error.TIE_WEIGHTS.items():
        err, tie = gm_error.exact_error(W, a, s, kappa, sigma, tie_weight=w)
        np.testing.assert_allclose(tie, ref_tie, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(err, ref_err + w * ref_tie, rtol=1e-7, atol=1e-12, err_msg=name)
    if net == "wedge":
        assert ref_tie > 1e-3  # the wedge has real mass


def test_semi_analytic_matches_reference_and_resolves_tiny_errors():
    """d = 2, κ/σ = 4 (Bayes error 3.2e-5): the semi-analytic average over 4000 draws of v agrees with the
    reference to within its own spread, where 4000 Monte-Carlo points would see about one error."""
    W, a = wedge_net()
    kappa, sigma = 1.0, 0.25
    ref_err, ref_tie = reference_error_d2(W, a, kappa, sigma)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    s = np.array([1.0, 0.0])
    e, t = gm_error.conditional_error(W, a, s, kappa, sigma, gm_error.orthogonal_draws(sigma * x, s, sigma))
    e, t = np.asarray(e), np.asarray(t)
    for est, ref in ((e, ref_err), (t, ref_tie), (e + 0.5 * t, ref_err + 0.5 * ref_tie)):
        se = est.std() / np.sqrt(len(est))
        assert abs(est.mean() - ref) < 4 * se + 1e-12, (est.mean(), ref, se)
        assert se < 0.1 * ref  # resolved to 10% or better


def test_semi_analytic_matches_monte_carlo_d5():
    """d = 5, κ/σ = 1: the semi-analytic error against 10⁶ numpy Monte-Carlo points (errors ≈ 0.2)."""
    W, a = random_net(3, h=12, d=5)
    rng = np.random.default_rng(1)
    s = rng.normal(size=5)
    s /= np.linalg.norm(s)
    kappa, sigma = 1.0, 1.0
    m = 1_000_000
    y = rng.choice([-1.0, 1.0], size=m)
    x = kappa * y[:, None] * s + sigma * rng.normal(size=(m, 5))
    f = np.maximum(x @ W.T, 0.0) @ a
    mc = np.mean(y * f < 0)
    err, tie = gm_error.semi_analytic_error(W, a, s, kappa, sigma, x[:20000])
    assert float(tie) == 0.0  # a generic net has no wedge where all 12 neurons are off in d = 5
    assert abs(float(err) - mc) < 5 * np.sqrt(mc * (1 - mc) / m) + 3e-3


def test_linear_net_closed_form():
    """relu(⟨w,x⟩) − relu(⟨−w,x⟩) = ⟨w,x⟩: the error is E(w) = Φ(−κ cos(w, s)/σ) (draw-averaged to 2%)."""
    rng = np.random.default_rng(2)
    d = 4
    w = rng.normal(size=d)
    s = rng.normal(size=d)
    s /= np.linalg.norm(s)
    W, a = np.stack([w, -w]), np.array([1.0, -1.0])
    x = rng.normal(size=(20000, d))
    err, tie = gm_error.semi_analytic_error(W, a, s, 1.0, 0.5, 0.5 * x)  # test points' noise is σ·z
    closed = float(gflow.linear_test_error(jnp.asarray(w), jnp.asarray(s), 1.0, 0.5))
    assert float(tie) == 0.0
    np.testing.assert_allclose(float(err), closed, rtol=0.02)


def test_exact_error_refuses_d3():
    with pytest.raises(ValueError, match="d ≤ 2"):
        gm_error.exact_error(np.ones((2, 3)), np.ones(2), np.eye(3)[0], 1.0, 1.0)


def test_tie_weight_names():
    assert gm_error.tie_weight("half") == 0.5
    with pytest.raises(ValueError, match="ties: must be one of"):
        gm_error.tie_weight("maybe")
    with pytest.raises(gflow.ConfigError, match="flow.ties"):
        gflow.FlowConfig(ties="maybe")


def _obs_args(ds, params, tie_weight):
    return ObsArgs(
        data=ds,
        multiplier=jnp.asarray(1.0),
        xplus=ds.s,
        mu_plus=ds.s,
        inv0=model.balance_invariant(params),
        tie_weight=jnp.asarray(tie_weight),
    )


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_paired_draws_identical_nets_differ_by_exactly_zero():
    """Two copies of one net, evaluated on one Dataset (vmapped as in a sweep), differ by exactly 0 in the
    semi-analytic error; the same net on another dataset's test sample differs (the draws are shared
    within a dataset, not across)."""
    cfg = gflow.DataConfig(n=10, d=5, kappa=1.0, sigma=0.5, n_test=500, seed=0)
    ds = gflow.twolayer.data.make_dataset(cfg, jnp.float64)
    p = model.init_params(key=model.init_key(0), d=5, width=8, init_scale=1.0, dtype=jnp.float64)
    both = jax.tree.map(lambda v: jnp.stack([v, v]), p)
    obs = jax.jit(lambda q, d_: observe(q, _obs_args(d_, q, 1.0)))
    out = jax.jit(jax.vmap(obs, in_axes=(0, None)))(both, ds)
    assert float(out["test_err_sa"][0] - out["test_err_sa"][1]) == 0.0
    other = gflow.twolayer.data.make_dataset(
        gflow.DataConfig(n=10, d=5, kappa=1.0, sigma=0.5, n_test=500, seed=1), jnp.float64
    )
    other = other._replace(s=ds.s)  # same mixture, other test sample
    o2 = obs(p, other)
    assert float(o2["test_err_sa"]) != float(out["test_err_sa"][0])


def test_observables_tie_conventions_are_consistent():
    """test_err = strict error + w·tie for the Monte-Carlo and the semi-analytic error, for every convention."""
    W, a = wedge_net()
    rng = np.random.default_rng(3)
    y = rng.choice([-1.0, 1.0], size=3000)
    x = 1.0 * y[:, None] * np.array([1.0, 0.0]) + 0.5 * rng.normal(size=(3000, 2))
    ds = gflow.twolayer.data.from_arrays(x[:4], y[:4], x, y, jnp.float64)
    ds = ds._replace(s=jnp.asarray([1.0, 0.0]), kappa=jnp.asarray(1.0), sigma=jnp.asarray(0.5))
    p = model.Params(W=jnp.asarray(W), a=jnp.asarray(a))
    obs = jax.jit(lambda w: observe(p, _obs_args(ds, p, w)))
    res = {w: obs(w) for w in (1.0, 0.5, 0.0)}
    assert float(res[1.0]["test_tie_sa"]) > 1e-3 and float(res[1.0]["test_tie"]) > 0
    for w in (0.5, 0.0):
        for err, tie in (("test_err", "test_tie"), ("test_err_sa", "test_tie_sa")):
            np.testing.assert_allclose(
                float(res[w][err]), float(res[1.0][err]) - (1 - w) * float(res[1.0][tie]), rtol=1e-9, atol=1e-15
            )
    # and the semi-analytic error agrees with the d = 2 reference within its draw spread
    ref_err, ref_tie = reference_error_d2(W, a, 1.0, 0.5)
    np.testing.assert_allclose(float(res[1.0]["test_tie_sa"]), ref_tie, rtol=0.05)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_sa_draws_caps_the_draws():
    cfg = gflow.DataConfig(n=10, d=5, kappa=1.0, sigma=0.5, n_test=300, seed=0)
    ds = gflow.twolayer.data.make_dataset(cfg, jnp.float64)
    p = model.init_params(key=model.init_key(1), d=5, width=6, init_scale=1.0, dtype=jnp.float64)
    out = jax.jit(lambda q: observe(q, _obs_args(ds, q, 1.0)._replace(sa_draws=100)))(p)
    err, tie = gm_error.semi_analytic_error(p.W, p.a, ds.s, ds.kappa, ds.sigma, ds.x_test[:100])
    assert float(out["test_err_sa"]) == pytest.approx(float(err), rel=1e-12)
    with pytest.raises(gflow.ConfigError, match="flow.sa_draws"):
        gflow.FlowConfig(sa_draws=0)
