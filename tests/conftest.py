"""Tests run in float64-capable JAX; library code never flips this switch itself.

A persistent compilation cache (shared with the subprocesses some tests start) saves recompiling the
same programs; it lives in a temporary directory of this test session.
"""

import os
import tempfile

import jax

jax.config.update("jax_enable_x64", True)

_cache = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="gflow-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
jax.config.update("jax_compilation_cache_dir", _cache)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
