"""Deep-net models: shapes for every architecture, O(1) outputs at init, per-example normalization,
config errors, and the output multiplier / centering against a hand-written SGD on the plain net."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gflow.config import ConfigError
from gflow.deep import train
from gflow.deep.config import DeepModelConfig, TrainConfig
from gflow.deep.data import from_arrays
from gflow.deep.models import build_model, n_params

KEY = jax.random.PRNGKey(3)


@pytest.mark.parametrize(
    "cfg, shape",
    [
        (DeepModelConfig(arch="mlp", width=16, depth=3), (30,)),
        (DeepModelConfig(arch="cnn", width=4), (1, 8, 8)),  # the 5-layer CNN on images
        (DeepModelConfig(arch="vgg", width=4, depth=11), (3, 8, 8)),
        (DeepModelConfig(arch="resnet", width=4, depth=18), (3, 8, 8)),  # GroupNorm by default
        (DeepModelConfig(arch="resnet", width=4, depth=10, norm="none"), (1, 40)),  # 1-D signals
    ],
)
def test_models_shapes_init_scale_and_per_example_outputs(cfg, shape):
    model = eqx.filter_jit(build_model)(cfg, shape, 10, key=KEY, dtype=jnp.float32)
    x = jax.random.normal(jax.random.PRNGKey(1), (64,) + shape, jnp.float32)
    f = jax.jit(jax.vmap(model))
    out = f(x)
    assert out.shape == (64, 10) and out.dtype == jnp.float32
    assert 0.1 < float(jnp.std(out)) < 10.0  # outputs O(1) at init
    weights = [v for v in jax.tree.leaves(model) if v.ndim >= 2]
    assert len(weights) == {"mlp": 4, "cnn": 5, "vgg": 9, "resnet": cfg.resolved_depth + 3}[cfg.arch]
    # f(x_i) does not depend on the other examples of the batch (GroupNorm is per example)
    other = f(x.at[2:].set(3.0 * x[:-2]))
    np.testing.assert_allclose(other[:2], out[:2], rtol=1e-5, atol=1e-6)


def test_resnet18_has_the_standard_parameter_count():
    # CIFAR ResNet-18 at width 64 without conv biases and with 2 affine parameters per normalized
    # channel has 11,173,962 parameters (the BatchNorm count; GroupNorm has as many).
    shapes = eqx.filter_eval_shape(build_model, DeepModelConfig(arch="resnet", width=64), (3, 32, 32), 10, key=KEY)
    assert n_params(shapes) == 11_173_962


def test_model_config_errors():
    with pytest.raises(ConfigError, match="model.norm"):
        DeepModelConfig(arch="mlp", norm="group")
    with pytest.raises(ConfigError, match="model.depth"):
        DeepModelConfig(arch="resnet", depth=20)
    with pytest.raises(ConfigError, match="model.arch"):
        DeepModelConfig(arch="transformer")
    with pytest.raises(ValueError, match="model.arch"):
        build_model(DeepModelConfig(arch="cnn"), (30,), 2, key=KEY)


def _tiny_data(n_classes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 6))
    y = rng.integers(0, n_classes, 24)
    return from_arrays(x, y, x[:10] + 0.1, y[:10], n_classes=n_classes, dtype=jnp.float64)


def _manual_sgd(mcfg, data, c, eta, steps):
    """Reference: optax SGD with step size η/c on mean loss of c·f (or c·(f − f_θ₀)), written out here."""
    model = eqx.filter_jit(build_model)(mcfg, data.x.shape[1:], data.n_out, key=train._keys(jnp.uint32(0))[0], dtype=jnp.float64)
    params, static = eqx.partition(model, eqx.is_array)
    f0 = jax.vmap(model)(data.x)

    def loss(p):
        f = jax.vmap(eqx.combine(p, static))(data.x)
        out = c * (f - f0) if mcfg.centered else c * f
        if data.n_out == 1:
            return jnp.mean(jax.nn.softplus(-(2.0 * data.y - 1.0) * out[:, 0]))
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, data.y))

    opt = optax.sgd(eta / c)

    @jax.jit
    def run(params):
        state = opt.init(params)
        for _ in range(steps):
            updates, state = opt.update(jax.grad(loss)(params), state)
            params = optax.apply_updates(params, updates)
        return params, loss(params)

    params, final_loss = run(params)
    return params, float(final_loss)


@pytest.mark.parametrize("centered, c, n_classes", [(False, 1.0, 3), (True, 0.5, 2)])
def test_multiplier_and_centering_match_plain_sgd(centered, c, n_classes):
    """At c = 1 without centering the lane trains the plain net; otherwise c·(f_θ − f_θ₀) with step η/c."""
    data = _tiny_data(n_classes)
    mcfg = DeepModelConfig(arch="mlp", width=8, depth=1, centered=centered)
    tcfg = TrainConfig(check_every=5, max_steps=50, target_acc=1.0, dtype="float64")
    lanes = train.make_lanes([c], [0.3], [0], jnp.float64)
    state = train.init_lanes(mcfg, tcfg, data, lanes)
    if centered:  # output exactly 0 at init: loss log K (log 2 for the logistic loss)
        assert float(state.init_train_loss[0]) == pytest.approx(np.log(n_classes), rel=1e-12)
    state = train.advance(state, lanes, data, mcfg, tcfg, n_rounds=1)
    ref_params, ref_loss = _manual_sgd(mcfg, data, c, 0.3, steps=5)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(a[0], b, rtol=1e-10, atol=1e-12)
    assert float(state.train_loss[0]) == pytest.approx(ref_loss, rel=1e-10)
