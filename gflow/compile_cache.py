"""Compile once per machine: JAX's persistent compilation cache, on by default (set up on `import gflow`).

- **Where.** `$GFLOW_COMPILE_CACHE` if set; else `$XDG_CACHE_HOME/gflow/jax` (default
  `~/.cache/gflow/jax`). A cache directory you set yourself (`JAX_COMPILATION_CACHE_DIR`, or
  `jax.config.update("jax_compilation_cache_dir", …)` before importing gflow) is left alone.
- **Off.** `GFLOW_COMPILE_CACHE=off` (or `0`, `false`, `no`, empty).
- **Every program is cached** (`jax_persistent_cache_min_compile_time_secs = 0` unless you set it), so a
  second process compiles nothing new, not just the slow programs.
- **No host callbacks.** JAX cannot cache a program that embeds a host callback, and equinox's
  runtime error checks (`eqx.error_if`, used inside diffrax/optimistix) are host callbacks unless
  `EQX_ON_ERROR=nan`. gflow sets that default before equinox is imported (your own setting wins).
  gflow's solves run with `throw=False` and decode every failure from diffrax's result code into a
  status (`gflow.STATUSES`), so no failure goes unreported: with `nan`, a check that fails inside a
  solve turns its outputs into NaN, which the status reports as `nonfinite`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_OFF = ("", "0", "off", "false", "no")


def cache_dir() -> Path | None:
    """The directory gflow would use for JAX's compilation cache, or None when switched off."""
    value = os.environ.get("GFLOW_COMPILE_CACHE")
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gflow" / "jax"


def configure() -> Path | None:
    """Set the defaults above (environment first, so that JAX and equinox read them on import;
    JAX's config too when JAX is already imported). Returns the cache directory in use, or None."""
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    path = cache_dir()
    if "jax" in sys.modules:
        import jax

        configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]  # a JAX flag, set at run time
        if configured:
            return Path(configured)
    elif os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    if path is None:
        return None
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update(
            "jax_persistent_cache_min_compile_time_secs",
            float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
        )
    return path
