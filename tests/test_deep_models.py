"""Deep-net models: shapes for every architecture, O(1) outputs at init, per-example normalization,
parameter counts, config errors. (The multiplier and centering are tested in test_deep_train.py.)"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gflow.config import ConfigError
from gflow.deep.config import DeepModelConfig
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
