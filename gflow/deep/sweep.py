"""Deep-net FLS sweeps: the grid multiplier c × base learning rate η × init seed, as vmapped chunks of lanes
in a resumable run directory (`gflow.runs.runner.ChunkedRun`).

Lanes are ordered c-major (then η, then seed), so lanes of a chunk have similar cost. The number of lanes
per chunk comes from an estimate of each lane's working memory (`lane_bytes`) and
`sweep.memory_budget_mb`; the last chunk is padded with copies of its last lane, so every chunk has the
same shape and a sweep compiles one program, whatever its c and η values.

Arrays of the run directory (dims in the manifest): coordinates `multiplier` [c], `lr` [η], `seed` [seed],
`step_size` [c, η] = η/c; per run [c, η, seed] the records of `gflow.deep.train.RECORDS`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..runs.compile_log import track_compiles
from ..runs.progress import Progress
from ..runs.runner import ChunkedRun
from .config import DeepConfig, DeepModelConfig, TrainConfig
from .data import DeepDataset, load_dataset
from .models import build_model, n_params
from .train import RECORDS, STATUS_NAMES, STATUSES, make_lanes, train_lanes

DIMS = ("multiplier", "lr", "seed")


class SweepTimeLimit(RuntimeError):
    """`run_deep_sweep` stopped between chunks at its time limit; the run directory holds the finished
    chunks and a rerun resumes from there."""

    def __init__(self, done: int, total: int, elapsed_s: float):
        super().__init__(f"time limit: {done} of {total} chunks done after {elapsed_s:.0f} s; rerun to resume")
        self.done, self.total, self.elapsed_s = done, total, elapsed_s


@dataclasses.dataclass
class DeepSweepResult:
    """`arrays[name]` has dims `dims[name]`; `meta` is what the manifest adds; `dir` the run directory."""

    arrays: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    meta: dict
    dir: Path

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUS_NAMES)[self.arrays["status"]]


def check_dtype(dtype: str) -> None:
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("train.dtype: float64 needs jax.config.update('jax_enable_x64', True) before any JAX work")


def _model_shapes(mcfg: DeepModelConfig, data: DeepDataset, dtype):
    """The model with jax.ShapeDtypeStruct leaves (nothing is computed or compiled)."""
    return eqx.filter_eval_shape(partial(build_model, mcfg, data.x.shape[1:], data.n_out, dtype=dtype),
                                 key=jax.random.PRNGKey(0))


def activations_per_example(mcfg: DeepModelConfig, data: DeepDataset, dtype) -> int:
    """Number of values the forward pass of one example produces (the outputs of every primitive)."""
    params, static = eqx.partition(_model_shapes(mcfg, data, dtype), lambda v: isinstance(v, jax.ShapeDtypeStruct))
    example = jax.ShapeDtypeStruct(data.x.shape[1:], dtype)
    jaxpr = jax.make_jaxpr(lambda p, x: eqx.combine(p, static)(x))(params, example)
    return sum(math.prod(v.aval.shape) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars)


def lane_bytes(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset) -> int:
    """Estimated working memory of one lane: parameters, gradients and optimizer state; f_θ₀ on the
    train and test sets when centered; forward activations kept for the backward pass of a training
    batch (×3 for the backward's own temporaries); and one evaluation batch."""
    dtype = jnp.dtype(tcfg.dtype)
    p = n_params(_model_shapes(mcfg, data, dtype))
    act = activations_per_example(mcfg, data, dtype)
    n, n_test = data.x.shape[0], data.x_test.shape[0]
    batch = tcfg.batch_size if 0 < tcfg.batch_size < n else n
    # BatchNorm evaluates train + test in one pass (training-set statistics); otherwise eval_batch_size at a time
    evals = n + n_test if mcfg.resolved_norm == "batch" else min(tcfg.eval_batch_size, max(n, n_test))
    values = p * (3 + (tcfg.momentum > 0)) + mcfg.centered * (n + n_test) * data.n_out + 3 * batch * act + evals * act
    return int(values * dtype.itemsize)


def lanes_per_chunk(cfg: DeepConfig, data: DeepDataset, n_lanes: int) -> tuple[int, int]:
    """(lanes per chunk, estimated bytes per lane) under `sweep.memory_budget_mb` and `sweep.max_lanes`."""
    per_lane = lane_bytes(cfg.model, cfg.train, data)
    k = max(1, min(n_lanes, int(cfg.sweep.memory_budget_mb * 2**20 // per_lane)))
    if cfg.sweep.max_lanes:
        k = min(k, cfg.sweep.max_lanes)
    return k, per_lane


def _grid(cfg: DeepConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, lr, seed = np.meshgrid(cfg.sweep.multipliers, cfg.sweep.lrs, np.arange(cfg.sweep.n_seeds), indexing="ij")
    return c.ravel(), lr.ravel(), seed.ravel()


def run_deep_sweep(cfg: DeepConfig, out_dir, *, data: DeepDataset | None = None, progress: bool = True,
                   force: bool = False, time_limit_s: float | None = None) -> DeepSweepResult:
    """Run (or resume) the c × η × seed grid of `cfg` into `out_dir`; returns the assembled arrays.

    A rerun on the same directory skips finished chunks; a different config is refused
    (`gflow.runs.runner.RunMismatchError`) unless `force`. Pass `data` to use a dataset built elsewhere (it
    is described in the manifest, but only `cfg.data` is compared on resume). With `time_limit_s`, no
    chunk is started once that many seconds have passed since the call: `SweepTimeLimit` is raised with
    the finished chunks saved (a chunk under way is finished, not cut)."""
    check_dtype(cfg.train.dtype)
    dtype = jnp.dtype(cfg.train.dtype)
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, dtype) if data is None else data
    data_s = time.perf_counter() - t0
    c, lr, seed = _grid(cfg)
    n_lanes = len(c)
    per_chunk, per_lane = lanes_per_chunk(cfg, data, n_lanes)
    n_chunks = math.ceil(n_lanes / per_chunk)
    run = ChunkedRun(out_dir, config=cfg.to_dict(), plan={"lanes_per_chunk": per_chunk, "lane_order": list(DIMS)},
                     n_chunks=n_chunks, force=force, extra_manifest={"kind": "deep_fls_sweep", "data": data.describe()})

    done_before = sum(min(per_chunk, n_lanes - i * per_chunk) for i in range(n_chunks) if run.is_done(i))
    bar = Progress(n_lanes, "deep sweep", enabled=progress, already_done=done_before)
    with track_compiles() as compiles:
        for i in run.pending():
            elapsed = time.perf_counter() - t0
            if time_limit_s is not None and elapsed > time_limit_s:
                bar.close()
                raise SweepTimeLimit(sum(run.is_done(k) for k in range(n_chunks)), n_chunks, elapsed)
            start = i * per_chunk
            take = min(per_chunk, n_lanes - start)
            idx = np.minimum(np.arange(start, start + per_chunk), n_lanes - 1)  # pad with the last lane
            lanes = make_lanes(c[idx], lr[idx], seed[idx], dtype)
            t_chunk = time.perf_counter()
            real = {"left": take}

            def on_stop(k, real=real):  # count padded copies of the last lane once
                k = min(k, real["left"])
                real["left"] -= k
                bar.update(k)

            out = train_lanes(cfg.model, cfg.train, data, lanes, sync_every=cfg.sweep.sync_every, on_stop=on_stop,
                              loop=cfg.sweep.loop)
            if real["left"]:
                bar.update(real["left"])
            chunk = {k: v[:take] for k, v in out.items()}
            chunk["chunk_wall_s"] = np.asarray(time.perf_counter() - t_chunk)
            run.save_chunk(i, chunk)
    bar.close()

    chunks = [run.load_chunk(i) for i in range(n_chunks)]
    shape = (len(cfg.sweep.multipliers), len(cfg.sweep.lrs), cfg.sweep.n_seeds)
    arrays = {
        "multiplier": np.asarray(cfg.sweep.multipliers), "lr": np.asarray(cfg.sweep.lrs),
        "seed": np.arange(cfg.sweep.n_seeds),
        "step_size": np.asarray(cfg.sweep.lrs)[None, :] / np.asarray(cfg.sweep.multipliers)[:, None],
    }
    dims = {"multiplier": ["multiplier"], "lr": ["lr"], "seed": ["seed"], "step_size": ["multiplier", "lr"]}
    for name in RECORDS:
        arrays[name] = np.concatenate([ch[name] for ch in chunks]).reshape(shape)
        dims[name] = list(DIMS)
    counts = {s: int(np.sum(arrays["status"] == k)) for k, s in enumerate(STATUS_NAMES)}
    dev = jax.devices()[0]
    shapes = _model_shapes(cfg.model, data, dtype)
    meta = {
        "n_runs": n_lanes, "n_chunks": n_chunks, "lanes_per_chunk": per_chunk,
        "lane_bytes_estimate": per_lane, "n_params": n_params(shapes),
        "wall_s": float(sum(float(ch["chunk_wall_s"]) for ch in chunks)), "data_s": data_s,
        "compile_s": compiles.seconds, "n_compiles": compiles.count,
        "status_counts": {k: v for k, v in counts.items() if v},
        "backend": jax.default_backend(), "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "dtype": cfg.train.dtype, "dims": dims,
        "statuses": {name: {"code": k, "meaning": m} for k, (name, m) in enumerate(STATUSES.items())},
        "records": RECORDS,
    }
    run.finish(arrays, meta)
    return DeepSweepResult(arrays=arrays, dims=dims, meta=meta, dir=Path(out_dir))
