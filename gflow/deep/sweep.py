"""Deep-net FLS sweeps: the grid multiplier c × base learning rate η × init seed, as vmapped chunks of lanes
in a resumable run directory (`gflow.runs.runner.ChunkedRun`).

Lanes are ordered c-major (then η, then seed), so lanes of a chunk have similar cost. The number of lanes
per chunk comes from an estimate of each lane's working memory (`lane_bytes`) and
`sweep.memory_budget_mb`; the last chunk is padded with copies of its last lane, so every chunk has the
same shape and a sweep compiles one program, whatever its c and η values.

Arrays of the run directory (`gflow.load_run` gives them as an xarray.Dataset): coordinates `multiplier` [c],
`lr` [η], `seed` [seed], `step_size` [c, η] = η/c, `step` [step] = 0, check_every, 2·check_every, … (the
checks); per run [c, η, seed] the records of `gflow.deep.train.RECORDS`; and per run and check
[c, η, seed, step] its learning curves `curve_<name>` for each name of `gflow.deep.stop.CURVES` (train,
validation and test loss and accuracy, float32; NaN after the run stopped, and for validation without a
validation set).
The chunk loop, resume and assembly are the run layer's (`gflow.runs.loop.run_chunks`).
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

from ..config import check_memory
from ..numerics import check_dtype
from ..runs import status
from ..runs.loop import TimeLimit, device_meta, run_chunks
from ..runs.result import SweepResult
from ..runs.runner import DEFAULT_LEASE_S
from ..runs.store import data_fingerprint, fingerprint
from .config import DeepConfig, DeepModelConfig, TrainConfig
from .data import DeepDataset, load_dataset
from .loss import forward_all
from .models import build_model, n_params, split
from .train import CURVES, RECORDS, make_lanes, train_lanes

DIMS = ("multiplier", "lr", "seed")


SweepTimeLimit = TimeLimit  # `run_deep_sweep` stopped between chunks at its time limit (chunks saved; a rerun resumes)


def _model_shapes(mcfg: DeepModelConfig, data: DeepDataset, dtype):
    """The model with jax.ShapeDtypeStruct leaves (nothing is computed or compiled)."""
    return eqx.filter_eval_shape(
        partial(build_model, mcfg, data.x.shape[1:], data.n_out, dtype=dtype), key=jax.random.PRNGKey(0)
    )


def activations_per_example(mcfg: DeepModelConfig, data: DeepDataset, dtype) -> int:
    """Number of values the forward pass of one example produces (the outputs of every primitive), traced
    in evaluation mode (BatchNorm with its running averages: a per-example function; a training pass has
    the same activations plus per-channel statistics)."""
    arrays, static = eqx.partition(_model_shapes(mcfg, data, dtype), lambda v: isinstance(v, jax.ShapeDtypeStruct))
    example = jax.ShapeDtypeStruct((1,) + tuple(data.x.shape[1:]), dtype)
    jaxpr = jax.make_jaxpr(lambda p, x: forward_all(eqx.combine(p, static), x, 1))(arrays, example)
    return sum(math.prod(v.aval.shape) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars)


def _n_trained(mcfg: DeepModelConfig, data: DeepDataset, dtype) -> int:
    """Number of trained parameters (BatchNorm's running averages are buffers, not counted)."""
    return n_params(split(_model_shapes(mcfg, data, dtype), lambda v: isinstance(v, jax.ShapeDtypeStruct))[0])


def lane_bytes(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset) -> int:
    """Estimated working memory of one lane: parameters, gradients and optimizer state; f_θ₀ on the
    train, validation and test sets when centered; forward activations kept for the backward pass of a
    training batch (×3 for the backward's own temporaries); and one evaluation batch (every net, BatchNorm
    included, is evaluated eval_batch_size examples at a time)."""
    dtype = jnp.dtype(tcfg.dtype)
    p = n_params(_model_shapes(mcfg, data, dtype))
    act = activations_per_example(mcfg, data, dtype)
    n, n_all = data.x.shape[0], data.x.shape[0] + data.x_val.shape[0] + data.x_test.shape[0]
    batch = tcfg.batch_size if 0 < tcfg.batch_size < n else n
    evals = min(tcfg.eval_batch_size, n_all)
    values = p * (3 + (tcfg.momentum > 0)) + mcfg.centered * n_all * data.n_out + 3 * batch * act + evals * act
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


def _assemble_arrays(cfg: DeepConfig, chunks: list[dict], shape: tuple) -> tuple[dict, dict]:
    """The sweep's arrays and dims from its chunks, in lane order: the records on (multiplier, lr, seed), the
    coordinates, and the training curves on (…, step) where the chunks have them."""
    arrays = {
        "multiplier": np.asarray(cfg.sweep.multipliers),
        "lr": np.asarray(cfg.sweep.lrs),
        "seed": np.arange(cfg.sweep.n_seeds),
        "step_size": np.asarray(cfg.sweep.lrs)[None, :] / np.asarray(cfg.sweep.multipliers)[:, None],
    }
    dims = {"multiplier": ["multiplier"], "lr": ["lr"], "seed": ["seed"], "step_size": ["multiplier", "lr"]}
    for name in RECORDS:
        arrays[name] = np.concatenate([ch[name] for ch in chunks]).reshape(shape)
        dims[name] = list(DIMS)
    if all("curves" in ch for ch in chunks):  # chunks written before the curves have none
        n_checks = max(ch["curves"].shape[1] for ch in chunks)
        padded = [
            np.pad(
                ch["curves"].astype(np.float32),
                ((0, 0), (0, n_checks - ch["curves"].shape[1]), (0, 0)),
                constant_values=np.nan,
            )
            for ch in chunks
        ]
        curves = np.concatenate(padded).reshape(shape + (n_checks, len(CURVES)))
        arrays["step"] = cfg.train.check_every * np.arange(n_checks)
        dims["step"] = ["step"]
        for k, name in enumerate(CURVES):
            arrays[f"curve_{name}"] = curves[..., k]
            dims[f"curve_{name}"] = [*DIMS, "step"]
    return arrays, dims


def run_deep_sweep(
    cfg: DeepConfig,
    *,
    data: DeepDataset | None = None,
    out=None,
    force: bool = False,
    progress: bool = True,
    lease_s: float = DEFAULT_LEASE_S,
    time_limit_s: float | None = None,
) -> SweepResult | None:
    """Run (or resume) the c × η × seed grid of `cfg`, into the run directory `out` if given; returns the
    assembled arrays (None to a worker that finished its chunks while another one sharing `out` assembles them).
    The same keywords as `gflow.run_sweep`; `lease_s`: how long a silent worker's claim on a chunk lasts.

    A rerun on the same directory skips finished chunks; a different config is refused
    (`gflow.runs.runner.RunMismatchError`) unless `force`. Pass `data` to use a dataset built elsewhere (it
    is described in the manifest, but only `cfg.data` is compared on resume). With `time_limit_s`, no
    chunk is started once that many seconds have passed since the call: `SweepTimeLimit` is raised with
    the finished chunks saved (a chunk under way is finished, not cut)."""
    check_dtype(cfg.train.dtype, "train.dtype")
    dtype = jnp.dtype(cfg.train.dtype)
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, dtype) if data is None else data
    data_s = time.perf_counter() - t0
    c, lr, seed = _grid(cfg)
    n_lanes = len(c)
    per_chunk, per_lane = lanes_per_chunk(cfg, data, n_lanes)
    check_memory({"one run": (per_lane, "model.width")}, cfg.sweep.max_memory_gb, "sweep.max_memory_gb")
    n_chunks = math.ceil(n_lanes / per_chunk)
    shape = (len(cfg.sweep.multipliers), len(cfg.sweep.lrs), cfg.sweep.n_seeds)

    def compute(i: int, report) -> dict[str, np.ndarray]:
        start = i * per_chunk
        take = min(per_chunk, n_lanes - start)
        idx = np.minimum(np.arange(start, start + per_chunk), n_lanes - 1)  # pad with the last lane
        t_chunk = time.perf_counter()
        out = train_lanes(
            cfg.model,
            cfg.train,
            data,
            make_lanes(c[idx], lr[idx], seed[idx], dtype),
            sync_every=cfg.sweep.sync_every,
            on_stop=report,
            loop=cfg.sweep.loop,
            curves=True,
        )
        chunk = {k: v[:take] for k, v in out.items()}
        chunk["chunk_wall_s"] = np.asarray(time.perf_counter() - t_chunk)
        return chunk

    def assemble(chunks: list[dict], meta: dict):
        arrays, dims = _assemble_arrays(cfg, chunks, shape)
        axes = [(d, arrays[d].tolist()) for d in DIMS]
        meta = {
            "n_runs": n_lanes,
            **meta,
            "lanes_per_chunk": per_chunk,
            "lane_bytes_estimate": per_lane,
            "n_params": _n_trained(cfg.model, data, dtype),
            "wall_s": float(sum(float(ch["chunk_wall_s"]) for ch in chunks)),
            "data_s": data_s,
            "status_counts": status.counts(arrays["status"]),
            "status_by_axis": status.counts_by_axis(arrays["status"], axes),
            **device_meta(),
            "dtype": cfg.train.dtype,
            "statuses": status.table("deep"),
            "records": RECORDS,
            "curves": list(CURVES),
            "selection": "validation" if data.x_val.shape[0] else "test (no validation set: data.n_val = -1)",
        }
        return arrays, dims, meta

    res = run_chunks(
        n_chunks,
        compute,
        assemble,
        runs_in=lambda i: min(per_chunk, n_lanes - i * per_chunk),
        label="deep sweep",
        out=out,
        lease_s=lease_s,
        config=cfg.to_dict(),
        force=force,
        progress=progress,
        plan={"lanes_per_chunk": per_chunk, "lane_order": list(DIMS), "status_codes": status.CODE},
        extra_manifest={"kind": "deep_fls_sweep", "data": data.describe()},
        fingerprint=deep_fingerprint(cfg),
        identity=lambda i: chunk_identity(cfg, i, per_chunk),
        time_limit_s=time_limit_s,
        t_start=t0,
    )
    if res is None:
        return None
    return SweepResult(
        arrays=res.arrays, dims=res.dims, meta={**res.meta, "dims": res.dims}, dir=None if out is None else Path(out)
    )


def deep_fingerprint(cfg: DeepConfig) -> dict[str, str]:
    """The inputs that decide a deep sweep's results, as in the two-layer wing (`gflow.runs.store.fingerprint`):
    the config, the data (its config: dataset, sizes, seed), the dtype and the numerics versions."""
    return fingerprint(
        config=cfg.to_dict(),
        data=data_fingerprint(config={"data": dataclasses.asdict(cfg.data)}),
        dtype=cfg.train.dtype,
    )


def chunk_identity(cfg: DeepConfig, i: int, per_chunk: int) -> dict[str, np.ndarray]:
    """What says which runs chunk i holds (stored in it and checked on every read): its lane indices and
    each lane's multiplier c, base learning rate η, init seed and data seed."""
    c, lr, seed = _grid(cfg)
    lanes = np.arange(i * per_chunk, min((i + 1) * per_chunk, len(c)))
    return {
        "lane": lanes,
        "multiplier": c[lanes],
        "lr": lr[lanes],
        "seed": seed[lanes].astype(np.int64),
        "data_seed": np.full(len(lanes), cfg.data.seed, np.int64),
    }
