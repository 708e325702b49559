"""Numerical helpers shared by both wings (JAX only: importing this loads neither engine)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Root of the init keys in both wings: init seed i uses fold_in(PRNGKey(INIT_ROOT), i), so seed i is the
# same whatever the number of seeds.
INIT_ROOT = 0x1417


def check_dtype(dtype: str, field: str = "flow.dtype") -> None:
    """float64 needs JAX's 64-bit mode; say how to turn it on (naming the config `field`) instead of
    silently computing in float32."""
    if dtype == "float64" and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]  # a JAX flag, set at run time
        raise ValueError(
            f"{field}: float64 requested but JAX runs in 32-bit mode; call gflow.enable_float64() "
            "(or set JAX_ENABLE_X64=1) before any JAX computation"
        )


def all_finite(tree) -> jax.Array:
    """True when every leaf of `tree` holds only finite values (a traced boolean scalar)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(tree)]))


def enable_float64() -> None:
    """Switch JAX to 64-bit mode (needed for dtype = 'float64' in either wing). Call before any JAX work."""
    jax.config.update("jax_enable_x64", True)
