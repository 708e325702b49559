"""Deep-net training options: coupled L2 and decoupled weight decay against a hand-computed SGD step, the
per-c step budget, and BatchNorm with the centered model c·(f_θ − f_θ₀) refused."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gflow.deep import train
from gflow.deep.config import DeepModelConfig, TrainConfig
from gflow.deep.data import from_arrays
from gflow.deep.models import build_model
from gflow.runs import status
from gflow.twolayer.config import ConfigError

MLP = DeepModelConfig(arch="mlp", width=8, depth=1)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 5)), rng.integers(0, 3, 24)
    return from_arrays(x, y, x[:8] + 0.1, y[:8], n_classes=3, dtype=jnp.float64)


def _one_step(data, tcfg, c, eta, mcfg=MLP):
    """The parameters after one round (check_every SGD steps) of a single lane."""
    lanes = train.make_lanes([c], [eta], [0], jnp.float64)
    state = train.advance(train.init_lanes(mcfg, tcfg, data, lanes), lanes, data, mcfg, tcfg, n_rounds=1)
    return jax.tree.map(lambda v: np.asarray(v[0]), state.params)


def _by_hand(data, c, eta, steps, *, l2=0.0, decay=0.0, momentum=0.0):
    """`steps` full-batch steps written out: m ← μ·m + ∇L(θ) + l2·θ;  θ ← θ − (η/c)·m − decay·θ, with ∇L
    the gradient of the mean cross-entropy of c·f_θ (jax.grad of a loss written out here)."""
    key = jax.random.fold_in(jax.random.PRNGKey(train.INIT_ROOT), 0)
    model = build_model(MLP, data.x.shape[1:], data.n_classes, key=key, dtype=jnp.float64)
    p, static = eqx.partition(model, eqx.is_array)

    def loss(p):
        out = c * jax.vmap(eqx.combine(p, static))(data.x)
        return jnp.mean(jax.nn.logsumexp(out, axis=1) - out[jnp.arange(out.shape[0]), data.y])

    p = jax.tree.map(np.asarray, p)
    m = jax.tree.map(np.zeros_like, p)
    for _ in range(steps):
        g = jax.tree.map(np.asarray, jax.grad(loss)(p))
        m = jax.tree.map(lambda mt, gt, t: momentum * mt + gt + l2 * t, m, g, p)
        p = jax.tree.map(lambda t, mt: t - eta / c * mt - decay * t, p, m)
    return p


@pytest.mark.parametrize("l2, decay", [(0.0, 0.0), (0.05, 0.0), (0.0, 0.02), (0.05, 0.02)])
def test_weight_decay_step_by_hand(small, l2, decay):
    """θ₁ = θ₀ − (η/c)·(∇L(θ₀) + l2·θ₀) − decoupled_decay·θ₀."""
    c, eta = 0.25, 0.3
    tcfg = TrainConfig(check_every=1, max_steps=10, target_acc=1.0, l2=l2, decoupled_decay=decay, dtype="float64")
    got = _one_step(small, tcfg, c, eta)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(_by_hand(small, c, eta, 1, l2=l2, decay=decay))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_coupled_l2_goes_through_momentum_and_decoupled_does_not(small):
    """Three steps with momentum μ: the coupled l2·θ enters the momentum buffer, the decoupled decay does not."""
    c, eta, mu, lam = 0.5, 0.1, 0.9, 0.03
    for l2, decay in ((lam, 0.0), (0.0, lam)):
        tcfg = TrainConfig(
            check_every=3, max_steps=9, target_acc=1.0, momentum=mu, l2=l2, decoupled_decay=decay, dtype="float64"
        )
        got = _one_step(small, tcfg, c, eta)
        want = _by_hand(small, c, eta, 3, l2=l2, decay=decay, momentum=mu)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    with pytest.raises(ConfigError, match="train.decoupled_decay"):
        TrainConfig(decoupled_decay=0.9)


def test_step_budget_scales_with_c(small):
    tcfg = TrainConfig(check_every=10, max_steps=100, budget_power=0.5, budget_c=1.0)
    assert [tcfg.budget(c) for c in (4.0, 1.0, 0.25, 0.01, 2.0**-10)] == [100, 100, 200, 1000, 3200]
    assert TrainConfig(check_every=10, max_steps=100).budget(1e-3) == 100  # budget_power 0: one budget
    assert TrainConfig(check_every=10, max_steps=100, budget_power=1.0).budget(0.3) == 340  # rounded up
    # every lane stops at its own budget (target 100% train accuracy at a tiny η is out of reach)
    tcfg = TrainConfig(check_every=2, max_steps=4, budget_power=1.0, target_acc=1.0, dtype="float64")
    out = train.train_lanes(MLP, tcfg, small, train.make_lanes([1.0, 0.5, 0.25], [1e-6] * 3, [0] * 3, jnp.float64))
    assert out["budget"].tolist() == [4, 8, 16] and out["steps"].tolist() == [4, 8, 16]
    assert status.names_of(out["status"]).tolist() == ["max_steps"] * 3
    one = train.train_run(MLP, tcfg, small, multiplier=0.25, lr=1e-6, seed=0)
    assert one["budget"] == 16 and one["steps"] == 16


def test_batchnorm_centered_model_is_refused():
    """With batch statistics in training and running averages in evaluation, f_θ₀ has no single value per
    example, so c·(f_θ − f_θ₀) is not defined: a one-line config error naming the field."""
    with pytest.raises(ConfigError, match=r"^model.centered: not defined with norm 'batch'"):
        DeepModelConfig(arch="cnn", width=4, depth=3, norm="batch", centered=True)
    DeepModelConfig(arch="cnn", width=4, depth=3, norm="group", centered=True)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_batchnorm_lanes_equal_single_runs():
    """A BatchNorm net trained as vmapped lanes (minibatches, batch statistics inside each lane) gives the
    single runs' records: the example axis of BatchNorm and the lane axis do not mix."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(24, 1, 6, 6)), rng.integers(0, 3, 24)
    data = from_arrays(x, y, x[:8] * 0.9, y[:8], n_classes=3, dtype=jnp.float64)
    mcfg = DeepModelConfig(arch="cnn", width=4, depth=3, norm="batch")
    tcfg = TrainConfig(batch_size=8, check_every=3, max_steps=6, target_acc=1.0, dtype="float64")
    out = train.train_lanes(mcfg, tcfg, data, train.make_lanes([0.5, 2.0], [0.1, 0.1], [0, 1], jnp.float64))
    for k, (c, seed) in enumerate(((0.5, 0), (2.0, 1))):
        one = train.train_run(mcfg, tcfg, data, multiplier=c, lr=0.1, seed=seed)
        for name, v in one.items():
            np.testing.assert_allclose(out[name][k], v, rtol=1e-9, atol=1e-12, err_msg=name)
    assert out["final_train_loss"][0] != out["final_train_loss"][1]


def test_augmentation_crops_and_flips_against_numpy():
    """train.augment: every image of the batch is one of the 9 × 9 crops (4-pixel zero padding) of the
    original, flipped or not (checked against numpy by search); offsets and flips vary over the batch and
    the steps; off by default, so a run's records do not change unless asked."""
    x = np.random.default_rng(3).normal(size=(64, 2, 6, 5))
    out = np.asarray(train.augment(jnp.asarray(x), jax.random.PRNGKey(7)))
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    found = []
    for i in range(len(x)):
        hits = [
            (dy, dx, f)
            for dy in range(9)
            for dx in range(9)
            for f in (False, True)
            if np.array_equal(
                out[i],
                (padded[i, :, dy : dy + 6, dx : dx + 5])[..., ::-1] if f else padded[i, :, dy : dy + 6, dx : dx + 5],
            )
        ]
        assert hits, i
        found.append(hits[0])
    assert len({h[:2] for h in found}) > 20 and 10 < sum(h[2] for h in found) < 54
    again = np.asarray(train.augment(jnp.asarray(x), jax.random.PRNGKey(8)))
    assert not np.array_equal(again, out)
    assert not TrainConfig().augment
    with pytest.raises(ValueError, match="train.augment: needs images"):
        train.augment(jnp.zeros((4, 10)), jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="train.augment"):
        TrainConfig(augment="yes")


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_augmented_lanes_equal_single_runs_and_differ_from_plain():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(24, 1, 6, 6)), rng.integers(0, 3, 24)
    data = from_arrays(x, y, x[:8] * 0.9, y[:8], n_classes=3, dtype=jnp.float64)
    mcfg = DeepModelConfig(arch="cnn", width=4, depth=3)
    tcfg = TrainConfig(batch_size=8, check_every=3, max_steps=6, target_acc=1.0, dtype="float64", augment=True)
    out = train.train_lanes(mcfg, tcfg, data, train.make_lanes([0.5, 2.0], [0.1, 0.1], [0, 1], jnp.float64))
    one = train.train_run(mcfg, tcfg, data, multiplier=2.0, lr=0.1, seed=1)
    np.testing.assert_allclose(out["final_train_loss"][1], one["final_train_loss"], rtol=1e-9)
    plain = train.train_run(
        mcfg,
        TrainConfig(batch_size=8, check_every=3, max_steps=6, target_acc=1.0, dtype="float64"),
        data,
        multiplier=2.0,
        lr=0.1,
        seed=1,
    )
    assert plain["final_train_loss"] != one["final_train_loss"]
