"""Compile once per machine: gflow turns on JAX's persistent compilation cache (and EQX_ON_ERROR=nan, so
that its programs embed no host callback and can be cached). Counted, not timed: a second process
compiles nothing new, and still reports every status."""

import json
import os
import subprocess
import sys

import pytest

from gflow import compile_cache

CHILD = r"""
import json, os
import gflow
from gflow.runs.compile_log import track_compiles
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig
import equinox._config as eqx_config
base = dict(data=DataConfig(n=12, d=10, n_test=50), model=ModelConfig(width=8))
cfg = Config(**base, flow=FlowConfig(target_loss=0.05, max_steps=200))
with track_compiles() as log:
    runs = [gflow.simulate(init_scale=a, config=cfg) for a in (0.1, 1e-4, 1e30)]  # ok, max_steps, nonfinite
    statuses = [gflow.STATUS_NAMES[int(r.status)] for r in runs]
print(json.dumps(dict(statuses=statuses, compiles=log.count, new=log.new, on_error=eqx_config.EQX_ON_ERROR,
                      cache=os.environ.get("JAX_COMPILATION_CACHE_DIR"))))
"""


def _child(env):
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh processes, ~30 s each on 2 cores
def test_second_process_compiles_nothing_new(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_COMPILATION_CACHE_DIR", "EQX_ON_ERROR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    }
    env["GFLOW_COMPILE_CACHE"] = str(tmp_path / "cache")
    first, second = _child(env), _child(env)
    assert first["cache"] == str(tmp_path / "cache") and first["on_error"] == "nan"
    assert first["statuses"] == ["reached_target", "max_steps", "nonfinite"]
    assert second["statuses"] == first["statuses"]
    assert first["new"] >= 1 and any((tmp_path / "cache").iterdir())
    assert second["compiles"] == first["compiles"] and second["new"] == 0


def test_cache_dir_default_override_and_off(monkeypatch, tmp_path):
    monkeypatch.delenv("GFLOW_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.cache_dir() == tmp_path / "gflow" / "jax"
    monkeypatch.setenv("GFLOW_COMPILE_CACHE", str(tmp_path / "mine"))
    assert compile_cache.cache_dir() == tmp_path / "mine"
    for off in ("off", "0", "false", ""):
        monkeypatch.setenv("GFLOW_COMPILE_CACHE", off)
        assert compile_cache.cache_dir() is None


def test_tests_do_not_write_to_the_home_cache():
    """conftest.py points JAX's cache at a temporary directory; gflow leaves a set cache alone."""
    import jax

    assert jax.config.jax_compilation_cache_dir == os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert compile_cache.configure() == __import__("pathlib").Path(jax.config.jax_compilation_cache_dir)
    assert "gflow-jax-cache-" in jax.config.jax_compilation_cache_dir
