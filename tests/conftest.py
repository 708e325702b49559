"""Tests run in float64-capable JAX; library code never flips this switch itself.

A persistent compilation cache (shared with the subprocesses some tests start) saves recompiling the
same programs; it lives in a temporary directory of this test session.
"""

import ctypes
import gc
import os
import tempfile

import jax
import pytest

jax.config.update("jax_enable_x64", True)

_cache = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="gflow-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
jax.config.update("jax_compilation_cache_dir", _cache)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module():
    """JAX keeps every compiled executable for the life of the process; across the whole suite they added up
    to a peak of about 5 GB. Dropping them after each test module bounds the peak by the largest module; a
    program a later module needs again comes back from the persistent compilation cache above."""
    yield
    jax.clear_caches()
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)  # hand the freed memory back to the system, so the process's resident size shows it


try:
    _libc = ctypes.CDLL("libc.so.6")  # glibc; elsewhere the freed memory is only reused, not handed back
except OSError:
    _libc = None


def pytest_runtest_logreport(report):
    """With GFLOW_TEST_RSS_LOG=<file>: one line per test (its id, seconds, resident and peak memory in MB), to
    find what makes the suite's memory peak."""
    log = os.environ.get("GFLOW_TEST_RSS_LOG")
    if log and report.when == "call":
        with open("/proc/self/status") as f:
            fields = (line.split(":", 1) for line in f)
            mem = {k: int(v.split()[0]) // 1024 for k, v in fields if k in ("VmRSS", "VmHWM")}
        with open(log, "a") as f:
            f.write(f"{report.nodeid}\t{report.duration:.1f}\t{mem['VmRSS']}\t{mem['VmHWM']}\n")
