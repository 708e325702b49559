"""Sweeps: grids of runs over named axes, batched by cost, sharded over devices, resumable.

A sweep is the product of its axes, in this order:
    [sweep.grid axes, in the order declared] + [data_seed (if sweep.data_seeds)] + [scale] + [seed]
Every run ("lane") is one point of that grid. How lanes are computed:
- **Compile groups.** Lanes that share the shapes (data.n, data.d, data.n_test, model.width) form
  a group; each group compiles `_solve_batch` once. Within a group, every other swept value (α, c,
  η, rtol, the init key) is a traced array, so nothing recompiles across chunks or sweeps.
- **Buckets.** Within a group, lanes that share a dataset (data seed, κ, σ) form a bucket; the
  dataset is passed to the batch unbatched (one copy, shared by all lanes).
- **Cost-aware chunks.** A vmapped adaptive solve runs every lane until the slowest finishes, and
  small effective scale α·√c costs far more steps than large. Each bucket is sorted by expected
  cost (rtol, η, α·√c) and cut into chunks of `chunk_size` consecutive lanes; the automatic size is
  the number of lanes that differ only by seed, capped by `memory_budget_mb`. The last chunk is
  padded with copies of its last lane, so all chunks of a group have one shape.
- **Devices.** Each chunk's lane axis is sharded over all local devices (`jax.sharding`), the
  dataset replicated; the chunk size is rounded up to a multiple of the device count.
- **Resume.** With an output directory every finished chunk is written atomically
  (`gflow.runner.ChunkedRun`); a rerun skips finished chunks. Process p of P (multi-host) takes
  chunks i with i % P == p.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import model
from .compile_log import track_compiles
from .config import SHAPE_KEYS, Config
from .data import Dataset, make_dataset, separability_constant
from .flow import STATUS_NAMES, Lane, check_dtype, solve_lane, static_flow
from .observables import OBSERVABLES
from .progress import Progress
from .runner import ChunkedRun
from .theory import bayes_error

RUN_FIELDS = ("status", "t_stop", "n_steps", "n_accepted", "n_rejected", "newton_iters", "rtol", "t_err_est", "n_solves")
_SOLVER_STAGES = {"bosh3": 4, "tsit5": 7, "dopri5": 7, "dopri8": 13, "heun": 2, "ralston": 2, "midpoint": 2}


@partial(jax.jit, static_argnames=("width", "second_layer", "flow"))
def _solve_batch(lanes: Lane, data: Dataset, *, width, second_layer, flow):
    solve = partial(solve_lane, width=width, second_layer=second_layer, flow=flow, keep_params=False)
    return jax.vmap(solve, in_axes=(0, None))(lanes, data)


@dataclasses.dataclass
class SweepResult:
    """Named arrays with their dims, plus run metadata.

    `arrays[name]` has dims `dims[name]`, e.g. ["scale", "seed"] or ["data.n", "scale", "seed", "time"].
    Coordinates are arrays too: `arrays["init_scale"]` (dims ["scale"]), `arrays["seed"]`, `arrays["time"]`,
    and one per grid axis (e.g. `arrays["data.n"]`).
    """

    arrays: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    meta: dict

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUS_NAMES)[self.arrays["status"]]


@dataclasses.dataclass
class Plan:
    """The deterministic layout of a sweep: its axes and how lanes are grouped and chunked."""

    axes: list[tuple[str, tuple]]  # (axis name, coordinate values), in array order
    groups: list[dict]  # each: shapes, buckets [{dataset overrides, chunks: [lane index arrays]}]
    chunk_sizes: list[int]
    n_devices: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for _, v in self.axes)

    @property
    def n_lanes(self) -> int:
        return math.prod(self.shape)

    def chunks(self) -> list[tuple[int, int, np.ndarray]]:
        """(group index, bucket index, lane indices) of every chunk, in chunk-id order."""
        return [(g, b, lanes) for g, grp in enumerate(self.groups) for b, bkt in enumerate(grp["buckets"]) for lanes in bkt["chunks"]]

    def summary(self) -> dict:
        return {
            "axes": {name: list(values) for name, values in self.axes},
            "chunk_sizes": self.chunk_sizes,
            "n_lanes": self.n_lanes,
            "n_devices": self.n_devices,
        }


def _axes(cfg: Config) -> list[tuple[str, tuple]]:
    sw = cfg.sweep
    axes = [(key, tuple(values)) for key, values in sw.grid.items()]
    if sw.data_seeds:
        axes.append(("data_seed", tuple(sw.data_seeds)))
    axes += [("scale", sw.init_scales), ("seed", tuple(range(sw.n_seeds)))]
    return axes


def lane_config(cfg: Config, axes, index) -> tuple[Config, float, int]:
    """The config of one lane (grid overrides applied), its init scale and its init seed."""
    values = {name: axis[i] for (name, axis), i in zip(axes, index)}
    sections = {s: {} for s in ("data", "model", "flow")}
    for key, v in values.items():
        if "." in key:
            section, field = key.split(".")
            sections[section][field] = v
    if "data_seed" in values:
        sections["data"]["seed"] = values["data_seed"]
    c = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, **sections["data"]),
        model=dataclasses.replace(cfg.model, **sections["model"]),
        flow=dataclasses.replace(cfg.flow, **sections["flow"]),
    )
    return c, float(values["scale"]), int(values["seed"])


def bytes_per_lane(cfg: Config) -> int:
    """Estimated working memory of one lane: solver state copies, forward passes, saves."""
    d, m = cfg.data, cfg.model
    b = np.dtype(cfg.flow.dtype).itemsize
    state = m.width * (d.d + 1) + d.n
    copies = _SOLVER_STAGES[cfg.flow.solver] + 10  # y, error, stages, controller, step start, refinement
    forward = 3 * (d.n + max(d.n_test, cfg.flow.n_test_grid)) * m.width
    saves = cfg.flow.n_save * (len(OBSERVABLES) + 1)
    return b * (copies * state + forward + saves)


def make_plan(cfg: Config, n_devices: int = 1) -> Plan:
    """Group, bucket, sort and chunk the lanes of a sweep (deterministic for a config)."""
    axes = _axes(cfg)
    shape = tuple(len(v) for _, v in axes)
    groups: dict[tuple, dict] = {}
    for flat in range(math.prod(shape)):
        index = np.unravel_index(flat, shape)
        c, alpha, seed = lane_config(cfg, axes, index)
        gkey = (c.data.n, c.data.d, c.data.n_test, c.model.width)
        bkey = (c.data.seed, c.data.kappa, c.data.sigma)
        cost = (c.flow.rtol, c.flow.target_loss, alpha * math.sqrt(c.model.multiplier), seed)
        grp = groups.setdefault(gkey, {"shapes": dict(zip(SHAPE_KEYS, gkey)), "buckets": {}})
        grp["buckets"].setdefault(bkey, []).append((cost, flat))
    plan_groups, sizes = [], []
    for gkey, grp in groups.items():
        c, _, _ = lane_config(cfg, axes, np.unravel_index(grp["buckets"][next(iter(grp["buckets"]))][0][1], shape))
        if cfg.sweep.chunk_size:
            size = cfg.sweep.chunk_size
        else:
            # lanes that differ only by seed have similar cost: one such set per chunk
            cap = max(1, int(cfg.sweep.memory_budget_mb * 2**20 // bytes_per_lane(c)))
            size = min(cfg.sweep.n_seeds, cap)
        size = min(size, max(len(v) for v in grp["buckets"].values()))
        size = n_devices * math.ceil(size / n_devices)
        buckets = []
        for bkey, lanes in grp["buckets"].items():
            order = np.asarray([flat for _, flat in sorted(lanes)])
            buckets.append({"data": dict(zip(("seed", "kappa", "sigma"), bkey)), "chunks": [order[i : i + size] for i in range(0, len(order), size)]})
        plan_groups.append({"shapes": grp["shapes"], "buckets": buckets})
        sizes.append(size)
    return Plan(axes=axes, groups=plan_groups, chunk_sizes=sizes, n_devices=n_devices)


def _lane_batch(cfg: Config, plan: Plan, lanes: np.ndarray, size: int, dtype) -> Lane:
    padded = np.concatenate([lanes, np.full(size - len(lanes), lanes[-1])])
    rows = [lane_config(cfg, plan.axes, np.unravel_index(i, plan.shape)) for i in padded]
    col = lambda f: jnp.asarray(np.asarray([f(c, a) for c, a, _ in rows]), dtype)  # noqa: E731
    keys = jax.vmap(model.init_key)(jnp.asarray([s for _, _, s in rows], jnp.uint32))
    return Lane(
        init_scale=col(lambda c, a: a),
        multiplier=col(lambda c, a: c.model.multiplier),
        target_loss=col(lambda c, a: c.flow.target_loss),
        rtol=col(lambda c, a: c.flow.rtol),
        init_key=keys,
        accuracy=None if cfg.flow.accuracy is None else col(lambda c, a: c.flow.accuracy),
    )


def _shardings(shard: bool):
    devices = jax.local_devices()
    if not shard or len(devices) == 1:
        return None, None, 1
    mesh = Mesh(np.asarray(devices), ("lanes",))
    return NamedSharding(mesh, PartitionSpec("lanes")), NamedSharding(mesh, PartitionSpec()), len(devices)


def _flatten(res) -> dict[str, np.ndarray]:
    out = {name: np.asarray(getattr(res, name)) for name in RUN_FIELDS}
    out["time"] = np.asarray(res.ts[0])
    out.update({f"final_{k}": np.asarray(v) for k, v in res.final.items()})
    out.update({f"traj_{k}": np.asarray(v) for k, v in res.traj.items()})
    return out


def run_sweep(
    cfg: Config,
    *,
    data: Dataset | None = None,
    out=None,
    force: bool = False,
    progress: bool = True,
    process_index: int = 0,
    process_count: int = 1,
) -> SweepResult | None:
    """Run the sweep grid of `cfg` and return labeled arrays.

    With `out`, every finished chunk is saved there and a rerun resumes; the assembled result is also
    written (`arrays.npz`, `manifest.json`). With several processes, each computes its share of the
    chunks; the call returns None while other processes' chunks are still missing, and the process
    that completes the last chunk assembles the result. `data` replaces the Gaussian mixture (then
    the sweep may not have data axes).
    """
    check_dtype(cfg.flow.dtype)
    dtype = jnp.dtype(cfg.flow.dtype)
    if data is not None and (cfg.sweep.data_seeds or any(k.startswith("data.") for k in cfg.sweep.grid)):
        raise ValueError("sweep.grid: data axes cannot be swept when the dataset is given")
    lane_sharding, data_sharding, n_dev = _shardings(cfg.sweep.shard)
    plan = make_plan(cfg, n_dev)
    chunks = plan.chunks()
    store = None
    if out is not None:
        store = ChunkedRun(out, config=cfg.to_dict(), plan=plan.summary(), n_chunks=len(chunks), force=force,
                           process_index=process_index, process_count=process_count)
        todo = store.pending()
        mine = store.mine()
    else:
        todo = mine = list(range(len(chunks)))
    done_lanes = sum(len(chunks[i][2]) for i in mine if i not in todo)
    bar = Progress(sum(len(chunks[i][2]) for i in mine), "sweep", enabled=progress, already_done=done_lanes)
    results: dict[int, dict[str, np.ndarray]] = {}
    datasets: dict[tuple, Dataset] = {}
    t_start = time.perf_counter()
    with track_compiles() as compiles:
        for i in todo:
            g, b, lanes = chunks[i]
            group, bucket = plan.groups[g], plan.groups[g]["buckets"][b]
            c, _, _ = lane_config(cfg, plan.axes, np.unravel_index(lanes[0], plan.shape))
            if data is None:
                key = (g, b)
                if key not in datasets:
                    datasets[key] = make_dataset(c.data, dtype)
                ds = datasets[key]
            else:
                ds = jax.tree.map(lambda v: jnp.asarray(v, dtype), data)
            batch = _lane_batch(cfg, plan, lanes, plan.chunk_sizes[g], dtype)
            if lane_sharding is not None:
                batch, ds = jax.device_put(batch, lane_sharding), jax.device_put(ds, data_sharding)
            res = _solve_batch(batch, ds, width=group["shapes"]["model.width"], second_layer=c.model.second_layer, flow=static_flow(c.flow))
            arrays = {k: v[: len(lanes)] for k, v in _flatten(jax.block_until_ready(res)).items()}
            arrays["time"] = np.asarray(res.ts[0])
            arrays["lane"] = lanes
            if store is not None:
                store.save_chunk(i, arrays)
            else:
                results[i] = arrays
            bar.update(len(lanes))
    bar.close()
    wall = time.perf_counter() - t_start
    if store is not None:
        if not store.all_done():
            return None
        results = {i: store.load_chunk(i) for i in range(len(chunks))}
    result = _assemble(cfg, plan, results, data)
    result.meta.update(
        wall_s=wall,
        compile_s=compiles.seconds,
        n_compiles=compiles.count,
        chunks_computed=len(todo),
        n_chunks=len(chunks),
        process_count=process_count,
    )
    if store is not None:
        store.finish(result.arrays, {**result.meta, "dims": result.dims, **_describe()})
    return result


def _describe() -> dict:
    from .flow import STATUSES

    return {
        "statuses": {name: {"code": i, "meaning": m} for i, (name, m) in enumerate(STATUSES.items())},
        "observables": OBSERVABLES,
    }


def _assemble(cfg: Config, plan: Plan, results: dict[int, dict], data: Dataset | None) -> SweepResult:
    shape = plan.shape
    names = [name for name, _ in plan.axes]
    first = results[min(results)]
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    for key, v in first.items():
        if key in ("time", "lane"):
            continue
        arrays[key] = np.full(shape + v.shape[1:], np.nan if v.dtype.kind == "f" else -1, v.dtype)
        dims[key] = names + (["time"] if key.startswith("traj_") else [])
    for res in results.values():
        idx = np.unravel_index(res["lane"], shape)
        for key in arrays:
            arrays[key][idx] = res[key]
    for name, values in plan.axes:
        coord = "init_scale" if name == "scale" else name
        arrays[coord] = np.asarray(values)
        dims[coord] = [name]
    arrays["time"] = first["time"]
    dims["time"] = ["time"]

    # Per-dataset constants, broadcast over the axes that do not change the data.
    data_axes = [n for n in names if n not in ("scale", "seed") and not n.startswith(("model.", "flow."))]
    dshape = tuple(len(v) for n, v in plan.axes if n in data_axes)
    bayes, sep = np.full(dshape, np.nan), np.full(dshape, np.nan)
    for index in itertools.product(*(range(s) for s in dshape)):
        full = [0] * len(shape)
        for n, i in zip(data_axes, index):
            full[names.index(n)] = i
        c, _, _ = lane_config(cfg, plan.axes, tuple(full))
        ds = data if data is not None else make_dataset(c.data, jnp.dtype(cfg.flow.dtype))
        bayes[index] = float(bayes_error(ds.kappa, ds.sigma))
        sep[index] = separability_constant(ds.x, ds.y)
    arrays["bayes_error"], dims["bayes_error"] = bayes, data_axes
    arrays["separability"], dims["separability"] = sep, data_axes

    status = arrays["status"]
    counts = {n: int(np.sum(status == i)) for i, n in enumerate(STATUS_NAMES) if np.any(status == i)}
    by_axis = {}
    for a, (name, values) in enumerate(plan.axes):
        if name == "seed":
            continue
        per = {}
        for i, v in enumerate(values):
            s = np.take(status, i, axis=a)
            per[repr(v)] = {n: int(np.sum(s == k)) for k, n in enumerate(STATUS_NAMES) if np.any(s == k)}
        by_axis[name] = per
    dev = jax.devices()[0]
    meta = {
        "n_runs": plan.n_lanes,
        "chunk_sizes": plan.chunk_sizes,
        "n_devices": plan.n_devices,
        "status_counts": counts,
        "status_by_axis": by_axis,
        "backend": jax.default_backend(),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "dtype": cfg.flow.dtype,
        "bayes_error": float(bayes.flat[0]) if bayes.size == 1 else None,
        "separability": float(sep.flat[0]) if sep.size == 1 else None,
    }
    return SweepResult(arrays=arrays, dims=dims, meta=meta)
