"""Observables recomputed in numpy from the parameters a run returns (signs included), and the tie
convention of the error counts pinned on a net constructed to output exactly 0 on known points."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import gflow
from gflow.twolayer import model
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig
from gflow.twolayer.data import Dataset, make_dataset
from gflow.twolayer.observables import ObsArgs, observe


def _cos(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_alignment_observables_match_numpy_from_the_parameters():
    """Ψ = cos(ŵ₊, x₊), ψ_j = cos(w_j, x₊) (and their weighted means), cos(ŵ₊, s), cos(ŵ₊, μ₊) and
    E(ŵ₊) at the stop, written out in numpy from θ_stop and the data. A reversed x₊ flips their sign."""
    # the shapes and flow settings of tests/twolayer/test_flow.py's drift test: the compiled program is shared
    data = DataConfig(n=20, d=30, n_test=100, kappa=1.0, sigma=0.5, seed=3)
    cfg = Config(data=data, model=ModelConfig(width=20), flow=FlowConfig(dtype="float64", target_loss=0.05))
    r = gflow.simulate(init_scale=1e-2, seed=1, config=cfg)
    assert gflow.STATUS_NAMES[int(r.status)] == "reached_target"
    ds = make_dataset(data, jnp.float64)
    x, y, s = np.asarray(ds.x), np.asarray(ds.y), np.asarray(ds.s)
    W, a = np.asarray(r.params.W), np.asarray(r.params.a)
    xplus = (y[:, None] * x).mean(axis=0)
    mu = x[y > 0].mean(axis=0)
    w_hat = (a * (a > 0)) @ W
    psi = np.array([_cos(w, xplus) for w in W])
    sq = (W**2).sum(axis=1)
    pos = a > 0
    expected = {
        "Psi": _cos(w_hat, xplus),
        "Psi_mu": _cos(w_hat, mu),
        "cos_s": _cos(w_hat, s),
        "lin_err": norm.cdf(-1.0 * _cos(w_hat, s) / 0.5),
        "psi_pos": (sq[pos] * psi[pos]).sum() / sq[pos].sum(),
        "psi_neg": (sq[~pos] * psi[~pos]).sum() / sq[~pos].sum(),
        "psi_abs": np.abs(psi).mean(),
    }
    for name, v in expected.items():
        np.testing.assert_allclose(float(r.final[name]), v, rtol=1e-9, atol=1e-12, err_msg=name)
    # the physics is the right way round: small-init positive neurons align with +x₊, negative ones with −x₊
    assert expected["Psi"] > 0.5 and expected["psi_pos"] > 0.5 and expected["psi_neg"] < -0.5


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_ties_count_as_errors():
    """f(x) = 0 exactly (all units off, or two units cancelling) counts as an error in test_err and
    as not correct in train_acc: the convention y·f ≤ 0 is an error. Its loss is log 2."""
    W = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])
    a = jnp.asarray([1.0, -1.0])  # f(x) = relu(x₁) − relu(x₂)
    pts = jnp.asarray([[-1.0, -2.0], [1.5, 1.5], [2.0, 0.0], [0.0, 3.0]])  # f = 0, 0, 2, −3
    y = jnp.asarray([1.0, -1.0, 1.0, 1.0])  # tie, tie, correct, wrong
    p = model.Params(W=W, a=a)
    np.testing.assert_array_equal(np.asarray(model.apply(p, pts, 2.0)), [0.0, 0.0, 4.0, -6.0])
    data = Dataset(pts, y, pts, y, jnp.asarray([1.0, 0.0]), jnp.asarray(1.0), jnp.asarray(1.0))
    args = ObsArgs(
        data=data,
        multiplier=jnp.asarray(2.0),
        xplus=jnp.mean(y[:, None] * pts, axis=0),
        mu_plus=jnp.mean(pts[y > 0], axis=0),
        inv0=model.balance_invariant(p),
    )
    obs = observe(p, args)
    assert float(obs["test_err"]) == 0.75  # ties counted as correct would give 0.25
    assert float(obs["train_acc"]) == 0.25
    expected_loss = np.mean(np.logaddexp(0.0, -np.array([0.0, 0.0, 4.0, -6.0]) * [1, -1, 1, 1]))
    np.testing.assert_allclose(float(obs["test_loss"]), expected_loss, rtol=1e-12)
