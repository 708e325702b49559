"""Tests run in float64-capable JAX; library code never flips this switch itself."""

import jax

jax.config.update("jax_enable_x64", True)
