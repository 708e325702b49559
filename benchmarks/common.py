"""Shared helpers for the benchmarks: problems, timing with block_until_ready, machine info, RSS."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import threading
import time

import jax

import gflow
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig, SweepConfig

PROBLEMS = {
    "tiny": dict(n=20, d=50, width=20),  # --quick only
    "small": dict(n=40, d=200, width=100),
    "medium": dict(n=200, d=500, width=500),
    # held out: nothing (tolerances, safety factors, ladders) was calibrated on it; its own κ, σ and η
    "heldout": dict(n=80, d=60, width=40, kappa=1.5, sigma=0.8, eta=0.02),
}
# the target loss η of each problem's fair comparison (`benchmarks.fair`) when none is given
DEFAULT_ETA = {name: p.get("eta", 1e-2) for name, p in PROBLEMS.items()}
SWEEP_SCALES = tuple(float(v) for v in __import__("numpy").logspace(-5, 1, 16))


def problem_config(
    name: str,
    *,
    target_loss=1e-2,
    rtol=1e-3,
    solver="bosh3",
    dtype="float32",
    n_seeds=4,
    init_scales=SWEEP_SCALES,
    chunk_size=0,
    batch_lanes=2,
    kappa=None,
    sigma=None,
    n_test=2000,
) -> Config:
    """A benchmark problem's config. `batch_lanes` is the compiled batch (runs per call; see
    gflow.twolayer.sweep's seed invariance): a chunk of `chunk_size` runs is computed in batches of that many.
    `kappa` and `sigma` default to the problem's own (1 and 0.5 unless it names others)."""
    p = PROBLEMS[name]
    kappa = p.get("kappa", 1.0) if kappa is None else kappa
    sigma = p.get("sigma", 0.5) if sigma is None else sigma
    return Config(
        data=DataConfig(n=p["n"], d=p["d"], n_test=n_test, kappa=kappa, sigma=sigma),
        model=ModelConfig(width=p["width"]),
        flow=FlowConfig(target_loss=target_loss, rtol=rtol, solver=solver, dtype=dtype),
        sweep=SweepConfig(init_scales=init_scales, n_seeds=n_seeds, chunk_size=chunk_size, batch_lanes=batch_lanes),
    )


def timed(fn, *args, repeats=3, **kwargs):
    """(median seconds, last result) over `repeats` calls, each blocked until ready."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args, **kwargs))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = jax.devices()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "device": str(dev),
        "python": platform.python_version(),
        **gflow.runs.store.versions(),
    }


def rss_mb() -> float:
    """Current resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """Samples RSS every `interval` s in a thread: `with RssSampler() as s: ...; s.samples`."""

    def __init__(self, interval=0.05):
        self.interval, self.samples, self._stop = interval, [], threading.Event()

    def __enter__(self):
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.time(), rss_mb()))  # wall-clock epoch, comparable to file mtimes
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def peak(self) -> float:
        return max(r for _, r in self.samples)


def loadavg() -> float:
    """The 1-minute load average (other processes compete for the cores during a timing)."""
    return os.getloadavg()[0]


def wait_for_quiet(max_load=1.3, timeout_s=900.0, poll_s=15.0, log=print) -> float:
    """Sleep until the 1-minute load average is below `max_load` (or `timeout_s` passes); returns it."""
    t0 = time.time()
    load = loadavg()
    while load >= max_load and time.time() - t0 < timeout_s:
        log(f"  load average {load:.2f} ≥ {max_load}: waiting {poll_s:.0f} s for a quieter machine")
        time.sleep(poll_s)
        load = loadavg()
    return load


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit numpy/scipy's BLAS to `n` threads (threadpoolctl, if installed); None leaves it alone."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    if n is None:
        yield
    else:
        with threadpool_limits(limits=n, user_api="blas"):
            yield


def write_json(res: dict, json_path: str | None) -> None:
    """Write a benchmark's result to `json_path` (nothing when it is empty or None)."""
    import json

    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=2)


def report(res: dict, json_path: str | None) -> None:
    """Add the machine and load average to a benchmark's result, print it, and write it to `json_path`."""
    import json

    res["machine"] = machine()
    res["load_average_1min_at_end"] = os.getloadavg()[0]
    print(json.dumps(res, indent=2))
    write_json(res, json_path)
