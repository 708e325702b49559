"""gflow/numerics.py: the helpers both wings share (one definition each)."""

import jax
import jax.numpy as jnp
import pytest

from gflow import numerics


def test_check_dtype_names_the_field_of_either_wing():
    jax.config.update("jax_enable_x64", False)
    try:
        for field in ("flow.dtype", "train.dtype"):
            with pytest.raises(ValueError, match=f"^{field}: float64 requested.*enable_float64"):
                numerics.check_dtype("float64", field)
        numerics.check_dtype("float32", "train.dtype")
    finally:
        jax.config.update("jax_enable_x64", True)


def test_all_finite_and_the_shared_init_root():
    assert bool(numerics.all_finite({"a": jnp.ones(3), "b": (jnp.zeros((2, 2)),)}))
    assert not bool(numerics.all_finite({"a": jnp.ones(3), "b": jnp.asarray([0.0, jnp.inf])}))
    assert not bool(numerics.all_finite([jnp.asarray(jnp.nan)]))
    from gflow.deep import train
    from gflow.twolayer import model

    assert train.INIT_ROOT is model.INIT_ROOT is numerics.INIT_ROOT
    assert jnp.array_equal(model.init_key(3), train._keys(3)[0])  # seed i has one init key in both wings
