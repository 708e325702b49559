"""Sweeps: grids of runs over named axes, batched by cost, sharded over devices, resumable.

A sweep is the product of its axes, in this order:
    [sweep.grid axes, in the order declared] + [data_seed (if sweep.data_seeds)] + [scale] + [seed]
Every run ("lane") is one point of that grid. How lanes are computed:
- **Compile groups.** Lanes that share the shapes (data.n, data.d, data.n_test, model.width) form
  a group; each group compiles `solve_batch` once. Within a group, every other swept value (α, c,
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
- **Seed invariance.** Every compiled call has the same lane count, `sweep.batch_lanes` per device:
  a chunk is padded to a multiple of it and computed as consecutive batches of that size. XLA's
  float summation order depends on the batch size (a vmapped matmul over 8 lanes rounds
  differently from one over 16), and in the float32 lazy corner that rounding moves t_η by up to
  12.6% (α = 10, default problem, seed 0: batches of 8 vs 16). At a fixed batch size a lane's
  result does not depend on its neighbours or its position (tested bitwise), so seed i is the same
  run whatever the number of seeds, the chunk size, the number of workers or devices.
- **Resume and workers.** With an output directory, chunks are claimed, computed and written
  atomically with a checksum and the input fingerprint (`gflow.runs.runner.ChunkedRun`); a rerun skips
  verified chunks, and any number of workers on one directory share the chunks dynamically.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..numerics import check_dtype
from ..runs import status
from ..runs.loop import device_meta, run_chunks
from ..runs.result import SweepResult
from ..runs.runner import DEFAULT_LEASE_S
from ..runs.store import check_out_dir, data_fingerprint, fingerprint
from . import model
from .config import SHAPE_KEYS, Config, ConfigError
from .data import Dataset, check_arrays, dataset_report, make_dataset, separability_constant
from .flow import Lane, solve_lane
from .observables import OBSERVABLES
from .solvers import SOLVERS
from .theory import bayes_error

RUN_FIELDS = (
    "status",
    "t_stop",
    "n_steps",
    "n_accepted",
    "n_rejected",
    "newton_iters",
    "rtol",
    "t_err_est",
    "theta_err_est",
    "n_solves",
)


@partial(jax.jit, static_argnames=("width", "second_layer", "flow"))
def solve_batch(lanes: Lane, data: Dataset, *, width, second_layer, flow):
    """Integrate a batch of B runs on one dataset: the vmapped, jitted `flow.solve_lane`.

    Takes `lanes`, a `flow.Lane` whose fields are arrays with a leading lane axis of length B (α, c,
    η, rtol, the init key from `model.init_key`; `accuracy` too in flow.accuracy mode, else None);
    `data`, one `Dataset` shared by every lane (not batched); and the compiled-in settings: `width`
    (h), `second_layer` ("balanced" or "gaussian") and `flow`, the compiled settings `FlowConfig.compiled()`
    (per-run η, rtol and accuracy come from `lanes`, so new values never recompile).
    Returns a `flow.RunResult` whose fields gain the leading B axis (`ts` too), with `params` None.
    The status codes index `STATUS_NAMES`; nothing is raised for a failed lane.

    One compilation per (B, data shapes, dtype, width, second_layer, flow, input types): give the
    lane fields an explicit dtype, as `run_sweep` does (`jnp.full(B, 0.05, dtype)`; a weakly typed
    `jnp.full(B, 0.05)` is another input type and compiles its own program). A lane's result depends
    on B through XLA's summation order (module docstring: seed invariance), never on its neighbours.
    """
    solve = partial(solve_lane, width=width, second_layer=second_layer, flow=flow, keep_params=False)
    return jax.vmap(solve, in_axes=(0, None))(lanes, data)


@partial(jax.jit, static_argnames=("width", "second_layer"))
def _init_losses(scales, multiplier, keys, x, y, *, width, second_layer):
    """L(θ(0)) for every (α, init key): shape (len(scales), len(keys))."""

    def one(alpha, key):
        p = model.init_params(
            key=key, d=x.shape[1], width=width, init_scale=alpha, second_layer=second_layer, dtype=x.dtype
        )
        return model.loss(p, x, y, multiplier)

    return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(scales, keys)


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
        return [
            (g, b, lanes)
            for g, grp in enumerate(self.groups)
            for b, bkt in enumerate(grp["buckets"])
            for lanes in bkt["chunks"]
        ]

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
    sections: dict[str, dict] = {s: {} for s in ("data", "model", "flow")}
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
    copies = SOLVERS[cfg.flow.solver].stages + 10  # y, error, stages, controller, step start, refinement
    forward = 3 * (d.n + max(d.n_test, cfg.flow.n_test_grid)) * m.width
    saves = cfg.flow.n_save * (len(OBSERVABLES) + 1)
    return b * (copies * state + forward + saves)


def make_plan(cfg: Config, n_devices: int = 1) -> Plan:
    """Group, bucket, sort and chunk the lanes of a sweep (deterministic for a config).

    The size was bounded when the config was built (`sweep.max_runs`). Lane configs are built once
    per combination of the outer axes (all but scale and seed); the lanes themselves are numpy
    index arrays, about 40 bytes per run while planning and 8 in the plan."""
    axes = _axes(cfg)
    shape = tuple(len(v) for _, v in axes)
    n_inner = len(cfg.sweep.init_scales) * cfg.sweep.n_seeds
    scales = np.repeat(np.asarray(cfg.sweep.init_scales, np.float64), cfg.sweep.n_seeds)
    seeds = np.tile(np.arange(cfg.sweep.n_seeds, dtype=np.int64), len(cfg.sweep.init_scales))
    groups: dict[tuple, dict] = {}
    for outer in range(math.prod(shape[:-2])):
        c, _, _ = lane_config(cfg, axes, (*np.unravel_index(outer, shape[:-2]), 0, 0))
        gkey = (c.data.n, c.data.d, c.data.n_test, c.model.width)
        bkey = (c.data.seed, c.data.kappa, c.data.sigma, c.data.mode, c.data.separable)
        grp = groups.setdefault(gkey, {"shapes": dict(zip(SHAPE_KEYS, gkey)), "buckets": {}, "config": c})
        grp["buckets"].setdefault(bkey, []).append((outer, c))
    plan_groups, sizes = [], []
    for grp in groups.values():
        batch = n_devices * cfg.sweep.batch_lanes  # chunks are whole batches (module docstring)
        largest = max(len(v) * n_inner for v in grp["buckets"].values())
        if cfg.sweep.chunk_size:
            size = batch * math.ceil(min(cfg.sweep.chunk_size, largest) / batch)
        else:
            # lanes that differ only by seed have similar cost: one such set per chunk, within the budget
            cap = int(cfg.sweep.memory_budget_mb * 2**20 // bytes_per_lane(grp["config"]))
            size = max(batch, min(batch * math.ceil(min(cfg.sweep.n_seeds, largest) / batch), batch * (cap // batch)))
        buckets = []
        for bkey, outers in grp["buckets"].items():
            flat = np.concatenate([outer * n_inner + np.arange(n_inner, dtype=np.int64) for outer, _ in outers])
            rtol = np.concatenate([np.full(n_inner, c.flow.rtol) for _, c in outers])
            eta = np.concatenate([np.full(n_inner, c.flow.target_loss) for _, c in outers])
            eff = np.concatenate([scales * math.sqrt(c.model.multiplier) for _, c in outers])
            seed = np.tile(seeds, len(outers))
            order = flat[np.lexsort((flat, seed, eff, eta, rtol))]  # cost (rtol, η, α·√c), then seed
            buckets.append(
                {
                    "data": dict(zip(("seed", "kappa", "sigma", "mode", "separable"), bkey)),
                    "chunks": [order[i : i + size] for i in range(0, len(order), size)],
                }
            )
        plan_groups.append({"shapes": grp["shapes"], "buckets": buckets})
        sizes.append(size)
    return Plan(axes=axes, groups=plan_groups, chunk_sizes=sizes, n_devices=n_devices)


def _lane_batch(cfg: Config, plan: Plan, lanes: np.ndarray, dtype) -> Lane:
    rows = [lane_config(cfg, plan.axes, np.unravel_index(i, plan.shape)) for i in lanes]
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
    lease_s: float = DEFAULT_LEASE_S,
    time_limit_s: float | None = None,
    warn=None,
) -> SweepResult | None:
    """Run the sweep grid of `cfg` and return labeled arrays.

    With `out`, every finished chunk is saved there with a checksum and the input fingerprint, and a
    rerun resumes; the assembled result is also written (`results.nc`, `manifest.json`). Any number
    of workers may run the same call on one directory: they claim chunks (`gflow.runs.runner`), each
    chunk is computed once, and all return when every chunk is done; the worker that wins the
    assembly returns the result, the others None. `lease_s`: how long a silent worker's claim lasts.
    With `time_limit_s`, no chunk is started once that many seconds have passed since the call:
    `gflow.runs.loop.TimeLimit` is raised with the finished chunks saved (a rerun resumes).

    `data` replaces the Gaussian mixture (then the sweep may not have data axes); it is checked as
    `simulate` checks it, and the effective config records its shapes. `warn` receives one-line
    notices (default: stderr): warnings, e.g. when η is at or above the loss at init for some α, and
    with `progress` the size of the sweep.
    """
    t_start = time.perf_counter()
    check_dtype(cfg.flow.dtype)
    dtype = jnp.dtype(cfg.flow.dtype)
    if data is not None:
        if cfg.sweep.data_seeds or any(k.startswith("data.") for k in cfg.sweep.grid):
            raise ConfigError("sweep.grid: data axes cannot be swept when the dataset is given")
        check_arrays(data.x, data.y, data.x_test, data.y_test)
        n, d = np.shape(data.x)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n=n, d=d, n_test=np.shape(data.x_test)[0]))
    if out is not None:
        check_out_dir(out)
    lane_sharding, data_sharding, n_dev = _shardings(cfg.sweep.shard)
    plan = make_plan(cfg, n_dev)
    chunks = plan.chunks()
    datasets: dict[tuple, Dataset] = {}

    def dataset(g: int, b: int) -> Dataset:
        if (g, b) not in datasets:
            c, _, _ = lane_config(
                cfg, plan.axes, np.unravel_index(plan.groups[g]["buckets"][b]["chunks"][0][0], plan.shape)
            )
            ds = make_dataset(c.data, dtype) if data is None else jax.tree.map(lambda v: jnp.asarray(v, dtype), data)
            datasets[g, b] = ds
        return datasets[g, b]

    check_target_vs_init(cfg, plan, dataset, warn)
    if progress:
        (warn or _stderr)(
            f"gflow sweep: {plan.n_lanes} runs over {' × '.join(f'{n}[{len(v)}]' for n, v in plan.axes)}"
            + (f" → {out}" if out is not None else "")
        )
    result = run_chunks(
        len(chunks),
        lambda i, report: _compute_chunk(cfg, plan, chunks[i], dataset, dtype, lane_sharding, data_sharding),
        lambda results, meta: _assemble(cfg, plan, results, data, meta),
        runs_in=lambda i: len(chunks[i][2]),
        label="sweep",
        out=out,
        config=cfg.to_dict(),
        plan=plan.summary(),
        fingerprint=_fingerprint(cfg, data, dtype),
        extra_manifest={"data": _describe_data(cfg, data)},
        force=force,
        lease_s=lease_s,
        progress=progress,
        identity=lambda i: chunk_identity(cfg, plan, chunks[i][2]),
        time_limit_s=time_limit_s,
        t_start=t_start,
    )
    return (
        None
        if result is None
        else SweepResult(result.arrays, result.dims, result.meta, dir=None if out is None else Path(out))
    )


def chunk_identity(cfg: Config, plan: Plan, lanes: np.ndarray) -> dict[str, np.ndarray]:
    """What says which runs a chunk holds (stored in it and checked on every read): its plan indices
    (`lane`) and each run's α, init seed and data seed."""
    index = np.unravel_index(np.asarray(lanes, np.int64), plan.shape)
    at = {name: np.asarray(values)[i] for (name, values), i in zip(plan.axes, index)}
    data_seed = at["data_seed"] if "data_seed" in at else np.full(len(lanes), cfg.data.seed)
    return {
        "lane": np.asarray(lanes, np.int64),
        "init_scale": at["scale"].astype(np.float64),
        "seed": at["seed"].astype(np.int64),
        "data_seed": np.asarray(data_seed, np.int64),
    }


def _compute_chunk(cfg, plan, chunk, dataset, dtype, lane_sharding, data_sharding) -> dict[str, np.ndarray]:
    g, b, lanes = chunk
    c, _, _ = lane_config(cfg, plan.axes, np.unravel_index(lanes[0], plan.shape))
    ds = dataset(g, b)
    if lane_sharding is not None:
        ds = jax.device_put(ds, data_sharding)
    size = plan.n_devices * cfg.sweep.batch_lanes  # the one batch shape (module docstring: seed invariance)
    padded = np.concatenate([lanes, np.full(plan.chunk_sizes[g] - len(lanes), lanes[-1])])
    parts = []
    for start in range(0, len(padded), size):
        batch = _lane_batch(cfg, plan, padded[start : start + size], dtype)
        if lane_sharding is not None:
            batch = jax.device_put(batch, lane_sharding)
        parts.append(
            solve_batch(
                batch,
                ds,
                width=plan.groups[g]["shapes"]["model.width"],
                second_layer=c.model.second_layer,
                flow=c.flow.compiled(),
            )
        )
    flat = [_flatten(jax.block_until_ready(res)) for res in parts]
    arrays = {k: np.concatenate([f[k] for f in flat])[: len(lanes)] for k in flat[0] if k != "time"}
    arrays["time"] = flat[0]["time"]
    arrays["lane"] = lanes
    return arrays


def _fingerprint(cfg: Config, data: Dataset | None, dtype) -> dict:
    if data is None:
        source = data_fingerprint(
            config={
                "data": dataclasses.asdict(cfg.data),
                "data_seeds": list(cfg.sweep.data_seeds),
                "grid": {k: list(v) for k, v in cfg.sweep.grid.items() if k.startswith("data.")},
            }
        )
    else:
        source = data_fingerprint({k: np.asarray(v, dtype) for k, v in data._asdict().items()})
    return fingerprint(config=cfg.to_dict(), data=source, dtype=str(np.dtype(dtype)))


def _describe_data(cfg: Config, data: Dataset | None) -> dict:
    """The data actually used: its source and array shapes."""
    if data is not None:
        return {
            "source": "arrays given to run_sweep",
            "shapes": {k: list(np.shape(v)) for k, v in data._asdict().items()},
        }
    d = cfg.data
    out = {
        "source": "gaussian mixture (data config)",
        "shapes": {"x": [d.n, d.d], "y": [d.n], "x_test": [d.n_test, d.d], "y_test": [d.n_test]},
    }
    if any(k in cfg.sweep.grid for k in ("data.n", "data.d", "data.n_test")):
        out["shapes_vary_over"] = [k for k in cfg.sweep.grid if k in ("data.n", "data.d", "data.n_test")]
    return out


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_target_vs_init(cfg: Config, plan: Plan, dataset, warn=None, seeds=None) -> None:
    """Refuse a sweep whose target η is at or above the loss at init L(θ(0)) for every α (every run
    would stop at t = 0), and warn, naming the α, where this holds for only some α. Checked on init
    `seeds` (default 0 … min(n_seeds, 8)−1) of every dataset, α and η (an α counts when all do)."""
    warn = warn or _stderr
    scales = np.asarray(cfg.sweep.init_scales)
    seeds = range(min(cfg.sweep.n_seeds, 8)) if seeds is None else seeds
    keys = jax.vmap(model.init_key)(jnp.asarray(list(seeds), dtype=jnp.uint32))
    at_init = np.zeros(len(scales), bool)
    at_init_everywhere, lo, hi = True, np.inf, -np.inf
    for g, grp in enumerate(plan.groups):
        for b, bkt in enumerate(grp["buckets"]):
            ds = dataset(g, b)
            outer = np.unique(np.concatenate(bkt["chunks"]) // (len(scales) * cfg.sweep.n_seeds))
            for o in outer:
                c, _, _ = lane_config(cfg, plan.axes, (*np.unravel_index(o, plan.shape[:-2]), 0, 0))
                dtype = ds.x.dtype
                loss0 = np.asarray(
                    _init_losses(
                        jnp.asarray(scales, dtype),
                        jnp.asarray(c.model.multiplier, dtype),
                        keys,
                        ds.x,
                        ds.y,
                        width=c.model.width,
                        second_layer=c.model.second_layer,
                    )
                )
                stops = np.all(c.flow.target_loss >= loss0, axis=1)
                at_init |= stops
                at_init_everywhere &= bool(stops.all())
                lo, hi = min(lo, float(loss0.min())), max(hi, float(loss0.max()))
    eta = cfg.flow.target_loss if "flow.target_loss" not in cfg.sweep.grid else "(swept)"
    if at_init_everywhere:
        raise ConfigError(
            f"flow.target_loss: η = {eta} is at or above the loss at init for every α "
            f"(L(θ(0)) from {lo:.3g} to {hi:.3g}); every run would stop at t = 0. Choose η below {lo:.3g}"
        )
    if at_init.any():
        shown = ", ".join(f"{a:.3g}" for a in scales[at_init])
        warn(
            f"gflow: warning: flow.target_loss: η = {eta} is at or above the loss at init for α = {shown}; "
            "those runs stop at t = 0 with status target_at_init"
        )


def _assemble(cfg: Config, plan: Plan, results: list[dict], data: Dataset | None, meta: dict):
    """(arrays, dims, meta) of the sweep from its chunks' arrays, in chunk order (`gflow.runs.loop`)."""
    shape = plan.shape
    names = [name for name, _ in plan.axes]
    first = results[0]
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    for key, v in first.items():
        if key in ("time", "lane"):
            continue
        arrays[key] = np.full(shape + v.shape[1:], np.nan if v.dtype.kind == "f" else -1, v.dtype)
        dims[key] = names + (["time"] if key.startswith("traj_") else [])
    for res in results:
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
    bayes, sep, draws = np.full(dshape, np.nan), np.full(dshape, np.nan), np.ones(dshape, np.int64)
    for index in itertools.product(*(range(s) for s in dshape)):
        full = [0] * len(shape)
        for n, i in zip(data_axes, index):
            full[names.index(n)] = i
        c, _, _ = lane_config(cfg, plan.axes, tuple(full))
        if data is None:
            ds, report = dataset_report(c.data, jnp.dtype(cfg.flow.dtype))
            draws[index] = report["draws"]
        else:
            ds = data
        bayes[index] = float(bayes_error(ds.kappa, ds.sigma))
        sep[index] = separability_constant(ds.x, ds.y)
    arrays["bayes_error"], dims["bayes_error"] = bayes, data_axes
    arrays["separability"], dims["separability"] = sep, data_axes
    arrays["data_draws"], dims["data_draws"] = draws, data_axes  # training-set draws used (rejection sampling)

    meta = {
        "n_runs": plan.n_lanes,
        "chunk_sizes": plan.chunk_sizes,
        "n_devices": plan.n_devices,
        "status_counts": status.counts(arrays["status"]),
        "status_by_axis": status.counts_by_axis(arrays["status"], plan.axes),
        **device_meta(),
        "dtype": cfg.flow.dtype,
        "bayes_error": float(bayes.flat[0]) if bayes.size == 1 else None,
        "separability": float(sep.flat[0]) if sep.size == 1 else None,
        **meta,
        "statuses": status.table("twolayer"),
        "observables": OBSERVABLES,
    }
    return arrays, dims, meta
