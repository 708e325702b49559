"""Sweeps over init scale α × init seed: one vmapped, jitted function over a flat batch of runs.

The grid is flattened to lanes (α-major), cut into chunks of `chunk_size` lanes and each chunk is
solved by one call of `_solve_batch`. Chunks are ordered by α, so lanes of similar cost (an adaptive
vmapped solve runs every lane until the slowest finishes) share a batch. The last chunk is padded
with copies of its last lane, so every call has the same shape and nothing recompiles. All swept
values are traced arrays: a new sweep with other α values reuses the compiled program.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import model
from .compile_log import track_compiles
from .config import Config
from .data import Dataset, make_dataset, separability_constant
from .flow import STATUS_NAMES, Lane, check_dtype, solve_lane
from .progress import Progress
from .theory import bayes_error


@partial(jax.jit, static_argnames=("width", "second_layer", "flow"))
def _solve_batch(lanes: Lane, data: Dataset, *, width, second_layer, flow):
    solve = partial(solve_lane, width=width, second_layer=second_layer, flow=flow, keep_params=False)
    return jax.vmap(solve, in_axes=(0, None))(lanes, data)


@dataclasses.dataclass
class SweepResult:
    """Named arrays with their dims, plus run metadata.

    `arrays[name]` has dims `dims[name]`, e.g. ("scale", "seed") or ("scale", "seed", "time").
    Coordinates: `arrays["init_scale"]` (scale,), `arrays["seed"]` (seed,), `arrays["time"]` (time,).
    """

    arrays: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    meta: dict

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUS_NAMES)[self.arrays["status"]]


def _lanes(scales, seeds, cfg: Config, dtype) -> Lane:
    a = np.repeat(np.asarray(scales, np.float64), len(seeds))
    s = np.tile(np.asarray(seeds), len(scales))
    keys = jax.vmap(model.init_key)(jnp.asarray(s, jnp.uint32))
    full = lambda v: jnp.full(a.shape, v, dtype)  # noqa: E731
    return Lane(jnp.asarray(a, dtype), full(cfg.model.multiplier), full(cfg.flow.target_loss), keys)


def run_sweep(cfg: Config, *, data: Dataset | None = None, progress: bool = True) -> SweepResult:
    """Run the α × seed grid of `cfg.sweep` and return labeled arrays [scale, seed(, time)]."""
    check_dtype(cfg.flow.dtype)
    dtype = jnp.dtype(cfg.flow.dtype)
    data = make_dataset(cfg.data, dtype) if data is None else data
    scales = cfg.sweep.init_scales
    seeds = list(range(cfg.sweep.n_seeds))
    lanes = _lanes(scales, seeds, cfg, dtype)
    n_runs = len(scales) * len(seeds)
    chunk = cfg.sweep.chunk_size or len(seeds)
    static = dict(width=cfg.model.width, second_layer=cfg.model.second_layer, flow=cfg.flow)

    outputs = []
    bar = Progress(n_runs, "sweep", enabled=progress)
    t_start = time.perf_counter()
    with track_compiles() as compiles:
        for start in range(0, n_runs, chunk):
            idx = np.minimum(np.arange(start, start + chunk), n_runs - 1)  # pad with the last lane
            out = _solve_batch(jax.tree.map(lambda v: v[idx], lanes), data, **static)
            out = jax.tree.map(np.asarray, jax.block_until_ready(out))
            take = min(chunk, n_runs - start)
            outputs.append(jax.tree.map(lambda v: v[:take], out))
            bar.update(take)
    bar.close()
    wall = time.perf_counter() - t_start
    res = jax.tree.map(lambda *vs: np.concatenate(vs), *outputs)

    shape = (len(scales), len(seeds))
    arrays: dict[str, np.ndarray] = {
        "init_scale": np.asarray(scales, np.float64),
        "seed": np.asarray(seeds),
        "time": np.asarray(res.ts[0]),
    }
    dims: dict[str, list[str]] = {"init_scale": ["scale"], "seed": ["seed"], "time": ["time"]}
    for name in ("status", "t_stop", "n_steps", "n_accepted", "n_rejected", "newton_iters"):
        arrays[name] = getattr(res, name).reshape(shape)
        dims[name] = ["scale", "seed"]
    for name, v in res.final.items():
        arrays[f"final_{name}"] = v.reshape(shape)
        dims[f"final_{name}"] = ["scale", "seed"]
    for name, v in res.traj.items():
        arrays[f"traj_{name}"] = v.reshape(shape + v.shape[1:])
        dims[f"traj_{name}"] = ["scale", "seed", "time"]

    counts = {name: int(np.sum(arrays["status"] == i)) for i, name in enumerate(STATUS_NAMES)}
    dev = jax.devices()[0]
    meta = {
        "n_runs": n_runs,
        "chunk_size": chunk,
        "wall_s": wall,
        "compile_s": compiles.seconds,
        "n_compiles": compiles.count,
        "status_counts": {k: v for k, v in counts.items() if v},
        "backend": jax.default_backend(),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "dtype": cfg.flow.dtype,
        "bayes_error": float(bayes_error(data.kappa, data.sigma)),
        "separability": separability_constant(data.x, data.y),
    }
    return SweepResult(arrays=arrays, dims=dims, meta=meta)
