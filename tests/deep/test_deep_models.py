"""Deep-net models: shapes for every architecture, O(1) outputs at init, per-example normalization,
parameter counts, config errors. (The multiplier and centering are tested in test_deep_train.py.)"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gflow.deep.config import DeepModelConfig
from gflow.deep.models import BATCH_AXIS, Conv, Dense, build_model, n_params
from gflow.twolayer.config import ConfigError

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


def test_resnet50_and_vgg19_parameter_counts():
    # CIFAR ResNet-50 (bottleneck blocks, expansion 4) at width 64 has 23,520,842 parameters for 10 classes
    # (23,705,252 for 100): the count of the usual CIFAR ResNet-50 with BatchNorm and bias-free convs.
    for n_out, count in ((10, 23_520_842), (100, 23_705_252)):
        shapes = eqx.filter_eval_shape(
            build_model, DeepModelConfig(arch="resnet", width=64, depth=50), (3, 32, 32), n_out, key=KEY
        )
        assert n_params(shapes) == count
    # VGG-19 without normalization: 16 biased 3×3 convs (64 … 512 channels) + a 512→10 head = 20,029,514
    shapes = eqx.filter_eval_shape(
        build_model, DeepModelConfig(arch="vgg", width=64, depth=19), (3, 32, 32), 10, key=KEY
    )
    assert n_params(shapes) == 20_029_514


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_resnet50_runs_with_batchnorm_and_o1_outputs():
    cfg = DeepModelConfig(arch="resnet", width=2, depth=50, norm="batch")
    model = eqx.filter_jit(build_model)(cfg, (3, 8, 8), 10, key=KEY, dtype=jnp.float32)
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 3, 8, 8), jnp.float32)
    out = jax.jit(lambda x: jax.vmap(model, axis_name=BATCH_AXIS)(x, jnp.ones(16, jnp.float32)))(x)
    assert out.shape == (16, 10) and 0.1 < float(jnp.std(out)) < 10.0


def _layers(model):
    return [
        m
        for m in jax.tree.leaves(model, is_leaf=lambda m: isinstance(m, (Dense, Conv)))
        if isinstance(m, (Dense, Conv))
    ]


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_torch_init_matches_pytorch_default_formulas(arch):
    """init='torch': every weight and bias is U(−1/√fan_in, 1/√fan_in) with torch's fan_in (in_features, or
    in_channels × kernel taps): kaiming_uniform_(a=√5) gives gain √(2/(1+5)) and bound gain·√(3/fan_in)
    = 1/√fan_in. Checked by Kolmogorov–Smirnov against that uniform law, and by the variance b²/3."""
    if arch == "mlp":
        cfg, shape = DeepModelConfig(arch="mlp", width=300, depth=2, init="torch"), (400,)
    else:
        cfg, shape = DeepModelConfig(arch="cnn", width=32, depth=3, init="torch"), (8, 16, 16)
    model = build_model(cfg, shape, 10, key=KEY)
    layers = _layers(model)
    assert len(layers) == 3
    for layer in layers:
        w = np.asarray(layer.weight, np.float64)
        fan_in = int(np.prod(w.shape[1:]))
        gain = np.sqrt(2.0 / (1.0 + np.sqrt(5.0) ** 2))  # torch.nn.init.calculate_gain('leaky_relu', √5)
        bound = gain * np.sqrt(3.0 / fan_in)  # kaiming_uniform_'s bound; torch's bias bound is 1/√fan_in
        assert bound == pytest.approx(1.0 / np.sqrt(fan_in))
        for v in (w.ravel(), np.asarray(layer.bias, np.float64)):
            assert np.abs(v).max() <= bound * (1 + 1e-6)
            if v.size >= 200:
                assert stats.kstest(v / bound, "uniform", args=(-1.0, 2.0)).pvalue > 1e-4
                assert np.var(v) == pytest.approx(bound**2 / 3, rel=6 * 0.9 / np.sqrt(v.size))
    # the default 'he' init: N(0, 2/fan_in) hidden weights, zero biases
    he = build_model(dataclasses.replace(cfg, init="he"), shape, 10, key=KEY)
    first = _layers(he)[0]
    w = np.asarray(first.weight, np.float64).ravel()
    fan_in = int(np.prod(first.weight.shape[1:]))
    assert stats.kstest(w / np.sqrt(2.0 / fan_in), "norm").pvalue > 1e-4 and not np.any(np.asarray(first.bias))


def test_batchnorm_uses_the_weighted_batch_statistics():
    """norm='batch': per channel, (x − mean)/√(var + 1e-5) over space and the examples with weight 1;
    examples with weight 0 are normalized with the others' statistics (how the test set is evaluated)."""
    cfg = DeepModelConfig(arch="cnn", width=4, depth=2, norm="batch")
    model = build_model(cfg, (2, 6, 6), 3, key=KEY)
    x = np.random.default_rng(0).normal(size=(10, 2, 6, 6)) * np.array([1.0, 3.0]).reshape(1, 2, 1, 1) + 0.5
    w = np.array([1.0] * 7 + [0.0] * 3)
    out = jax.vmap(model, axis_name=BATCH_AXIS)(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
    # numpy reference: conv (no bias under a norm) → BatchNorm(train examples) → ReLU → global mean → head
    conv = np.asarray(jax.vmap(model.convs[0])(jnp.asarray(x, jnp.float32)), np.float64)
    mean = conv[:7].mean(axis=(0, 2, 3), keepdims=True)
    var = conv[:7].var(axis=(0, 2, 3), keepdims=True)
    h = np.maximum((conv - mean) / np.sqrt(var + 1e-5), 0.0).mean(axis=(2, 3))
    ref = h @ np.asarray(model.head.weight, np.float64).T + np.asarray(model.head.bias)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-5)
    # the weight-0 examples do not move the statistics; the weight-1 examples do
    moved = np.array(x)
    moved[7:] *= 5.0
    out2 = jax.vmap(model, axis_name=BATCH_AXIS)(jnp.asarray(moved, jnp.float32), jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(np.asarray(out2[:7]), np.asarray(out[:7]), rtol=1e-5, atol=1e-6)
    moved[:2] *= 5.0
    out3 = jax.vmap(model, axis_name=BATCH_AXIS)(jnp.asarray(moved, jnp.float32), jnp.asarray(w, jnp.float32))
    assert np.max(np.abs(np.asarray(out3[2:7]) - np.asarray(out[2:7]))) > 1e-3
