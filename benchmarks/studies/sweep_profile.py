"""Where the CPU time of the default-config sweep goes (issue 11, target 5c): A/B switches, lane waste.

The default config (`gflow.Config()`: n = 40, d = 100, h = 100, n_test = 4000, n_save = 48,
n_test_grid = 512, 13 α × 8 seeds, float32, batches of `sweep.batch_lanes` = 2 lanes) is run in this
process, batch by batch, exactly as `run_sweep` computes a chunk (`solve_batch` on the plan's
batches), after one compiling call per variant. Each variant changes one thing (`--set` overrides on a
base, e.g. `flow.sa_draws=1` drops the semi-analytic error at the stop, `flow.n_save=2` the save grid,
`sweep.batch_lanes=1` the vmap); the variants alternate, `repeats` times, and the medians of CPU time
(`time.process_time()`, all threads: the steadier measure on a shared machine) and wall are reported.

Lane waste. A vmapped adaptive solve runs every lane of a batch until its slowest lane ends. Per batch
the lanes' own steps (`n_steps`, summed over the solves of flow.accuracy mode) are known; the batch
ran at least max(lane steps) iterations for all of its B lanes. Reported: the lanes' step sum, the
lower bound Σ_batches B·max(lane steps) of the lane-steps computed, and their ratio. (In accuracy mode
the bound is loose: a lane that is done still runs its solve loop until its batch's last lane is.)

    python -m benchmarks.studies.sweep_profile [--base flow.accuracy=0.01] [--variants base sa1 nsave2 ...] [--repeats 3]
    python -m benchmarks.studies.sweep_profile --quick     # 2 α × 2 seeds, small shapes, 1 repeat: the smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

import gflow  # sets up the compile cache
from benchmarks.common import loadavg, machine, write_json
from gflow.twolayer.config import Config, with_overrides
from gflow.twolayer.data import make_dataset
from gflow.twolayer.sweep import _lane_batch, make_plan, solve_batch

VARIANTS = {  # name: the one change against the base
    "base": [],
    "sa1": ["flow.sa_draws=1"],  # the semi-analytic test error at the stop from 1 draw instead of 4000
    "nsave2": ["flow.n_save=2"],  # save grid: t = 0 and t_max only
    "grid1": ["flow.n_test_grid=1"],  # save grid kept, its test error on 1 point instead of 512
    "ntest512": ["data.n_test=512"],  # final observables on 512 test points (also the SA draws)
    "b1": ["sweep.batch_lanes=1"],
    "b4": ["sweep.batch_lanes=4"],
    "b8": ["sweep.batch_lanes=8"],
    "f64": ["flow.dtype=float64"],
}


QUICK = [
    "sweep.init_scales=[0.01, 1.0]",
    "sweep.n_seeds=2",
    "data.n_test=100",
    "data.d=20",
    "model.width=10",
    "flow.n_save=8",
    "flow.n_test_grid=50",
]


def prepare(sets):
    cfg = with_overrides(Config(), sets)
    if cfg.flow.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dtype = np.dtype(cfg.flow.dtype)
    data = make_dataset(cfg.data, dtype)
    plan = make_plan(cfg)
    B = cfg.sweep.batch_lanes
    flow = cfg.flow.compiled()
    batches = []
    for _, _, lanes in plan.chunks():
        padded = np.concatenate([lanes, np.full(plan.chunk_sizes[0] - len(lanes), lanes[-1])])
        for start in range(0, len(padded), B):
            idx = padded[start : start + B]
            batches.append((_lane_batch(cfg, plan, idx, dtype), idx[: np.unique(idx).size]))
    return cfg, data, flow, batches


def sweep_once(cfg, data, flow, batches):
    """Run every batch; (cpu s, wall s, per-batch [lane n_steps], n_solves, t_stop, status, lane index), padding dropped."""
    c0, w0 = time.process_time(), time.perf_counter()
    steps, solves, t_stop, st = [], [], [], []
    for lanes, idx in batches:
        n_real = len(idx)
        r = jax.block_until_ready(
            solve_batch(lanes, data, width=cfg.model.width, second_layer=cfg.model.second_layer, flow=flow)
        )
        steps.append(np.asarray(r.n_steps)[:n_real])
        solves.append(np.asarray(r.n_solves)[:n_real])
        t_stop.append(np.asarray(r.t_stop)[:n_real])
        st.append(np.asarray(r.status)[:n_real])
    lane = np.concatenate([idx for _, idx in batches])
    return (
        time.process_time() - c0,
        time.perf_counter() - w0,
        steps,
        solves,
        np.concatenate(t_stop),
        np.concatenate(st),
        lane,
    )


def measure(base, names, repeats=3, log=print):
    prepared = {}
    for name in names:
        t = time.perf_counter()
        prepared[name] = prepare(base + VARIANTS[name])
        cfg, data, flow, batches = prepared[name]
        lanes, _ = batches[0]
        jax.block_until_ready(
            solve_batch(lanes, data, width=cfg.model.width, second_layer=cfg.model.second_layer, flow=flow)
        )
        log(f"{name}: prepared and compiled in {time.perf_counter() - t:.1f} s")
    cpus, walls, info = {n: [] for n in names}, {n: [] for n in names}, {}
    for rep in range(repeats):
        for name in names:
            cpu, wall, steps, solves, t_stop, st, lane = sweep_once(*prepared[name])
            cpus[name].append(cpu)
            walls[name].append(wall)
            B = prepared[name][0].sweep.batch_lanes
            lane_sum = int(sum(s.sum() for s in steps))
            computed = int(sum(B * s.max() for s in steps))
            info[name] = {
                "sets": base + VARIANTS[name],
                "batch_lanes": B,
                "batches": len(steps),
                "lane_steps": lane_sum,
                "batch_iterations_min": int(sum(s.max() for s in steps)),
                "lane_steps_computed_min": computed,
                "lane_waste_min": 1 - lane_sum / computed,
                "solves": int(sum(s.sum() for s in solves)),
                "batch_solve_iterations": int(sum(s.max() for s in solves)),
                "lane": lane.tolist(),
                "t_stop": t_stop.tolist(),
                "status": st.tolist(),
            }
            log(
                f"rep {rep} {name:9s} cpu {cpu:7.2f} s wall {wall:7.2f} s lane steps {lane_sum} "
                f"(≥{computed} computed, waste ≥{info[name]['lane_waste_min']:.0%}) load {loadavg():.1f}"
            )

    def by_lane(i):
        return np.asarray(i["t_stop"])[np.argsort(i["lane"])]

    ref = by_lane(info[names[0]])
    out = {"base": base, "repeats": repeats, "load_at_end": loadavg(), "machine": machine(), "variants": {}}
    for name in names:
        i = info[name]
        cpu = statistics.median(cpus[name])
        t = by_lane(i)
        out["variants"][name] = {
            **i,
            "cpu_s": cpu,
            "cpus": cpus[name],
            "wall_s": statistics.median(walls[name]),
            "walls": walls[name],
            "cpu_ms_per_lane_step": 1e3 * cpu / i["lane_steps"],
            "cpu_ms_per_batch_iteration_max": 1e3 * cpu / i["batch_iterations_min"],
            "t_stop_rel_diff_vs_first_max": float(np.max(np.abs(t / ref - 1))),
        }
        out["variants"][name]["status"] = {
            gflow.STATUS_NAMES[k]: int(v) for k, v in zip(*np.unique(i["status"], return_counts=True))
        }
    return out


def pieces(sets=(), calls=20, log=print) -> dict:
    """CPU ms per call of the pieces of a step and of a run, vmapped over one batch (`sweep.batch_lanes` lanes),
    jitted, medians of 5 × `calls`; and the one-off cost of a process: tracing, lowering and loading (or
    compiling) `solve_batch` from the persistent cache."""
    from functools import partial

    import jax.numpy as jnp

    from gflow.twolayer import model
    from gflow.twolayer.data import class_mean_direction, positive_class_mean
    from gflow.twolayer.gm_error import tie_weight
    from gflow.twolayer.observables import ObsArgs, observe

    out = {"startup_and_imports_cpu_s": time.process_time()}  # the process's CPU so far: Python, jax, gflow
    cfg, data, flow, batches = prepare(list(sets))
    out.update({"sets": list(sets), "batch_lanes": cfg.sweep.batch_lanes})
    lanes, _ = batches[0]
    kw = dict(width=cfg.model.width, second_layer=cfg.model.second_layer, flow=flow)
    obj = solve_batch
    for stage, step in (
        ("trace", lambda f: f.trace(lanes, data, **kw)),
        ("lower", lambda t: t.lower()),
        ("compile_or_cache_load", lambda lo: lo.compile()),
    ):
        c = time.process_time()
        obj = step(obj)
        out[f"{stage}_cpu_s"] = time.process_time() - c
    x, y, dtype = data.x, data.y, data.x.dtype
    ps = jax.vmap(
        lambda k, a: model.init_params(
            key=k, d=x.shape[1], width=cfg.model.width, init_scale=a, second_layer=cfg.model.second_layer, dtype=dtype
        )
    )(lanes.init_key, lanes.init_scale)
    k = min(cfg.flow.n_test_grid, data.x_test.shape[0])

    def args(d):
        return ObsArgs(
            data=d,
            multiplier=jnp.asarray(cfg.model.multiplier, dtype),
            xplus=class_mean_direction(x, y),
            mu_plus=positive_class_mean(x, y),
            inv0=jnp.zeros(cfg.model.width, dtype),
            tie_weight=jnp.asarray(tie_weight(cfg.flow.ties), dtype),
            sa_draws=cfg.flow.sa_draws,
        )

    grid = data._replace(x_test=data.x_test[:k], y_test=data.y_test[:k])
    gram = x @ x.T if x.shape[0] < x.shape[1] else None
    tau = jax.random.normal(jax.random.key(0), (min(cfg.flow.sa_draws, data.x_test.shape[0]), cfg.model.width), dtype)
    fns = {
        "velocity (one vector field)": (
            jax.vmap(lambda p: model.flow_velocity(p, x, y, cfg.model.multiplier, gram)),
            ps,
        ),
        f"save-point observables ({k} test points, no SA)": (
            jax.vmap(lambda p: observe(p, args(grid), semi_analytic=False)),
            ps,
        ),
        f"final observables without SA ({data.x_test.shape[0]} test points)": (
            jax.vmap(partial(observe, args=args(data), semi_analytic=False)),
            ps,
        ),
        "final observables with SA (as a run ends)": (jax.vmap(partial(observe, args=args(data))), ps),
        "the SA's sort alone (4 operands, per lane)": (
            lambda t: jax.lax.sort((t, 2 * t, 3 * t, 4 * t), dimension=1, num_keys=1),
            tau,
        ),
    }
    out["ms_per_call"] = {}
    for name, (fn, arg) in fns.items():
        fn = jax.jit(fn)
        jax.block_until_ready(fn(arg))
        ts = []
        for _ in range(5):
            c = time.process_time()
            for _ in range(calls):
                jax.block_until_ready(fn(arg))
            ts.append((time.process_time() - c) / calls)
        out["ms_per_call"][name] = 1e3 * statistics.median(ts)
        log(f"{name:60s} {out['ms_per_call'][name]:8.3f} ms CPU a call")
    log(
        f"start-up and imports {out['startup_and_imports_cpu_s']:.2f} s; solve_batch: trace {out['trace_cpu_s']:.2f} s, lower "
        f"{out['lower_cpu_s']:.2f} s, "
        f"compile or cache load {out['compile_or_cache_load_cpu_s']:.2f} s (CPU)"
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--base", nargs="*", default=[], help="--set overrides every variant shares, e.g. flow.accuracy=0.01"
    )
    ap.add_argument("--variants", nargs="+", default=["base", "sa1", "nsave2"], choices=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument("--quick", action="store_true", help=f"smoke test: the base plus {QUICK}, 1 repeat")
    ap.add_argument("--pieces", action="store_true", help="time the pieces of a step and of a run instead (pieces())")
    args = ap.parse_args(argv)
    if args.pieces:
        res = pieces(args.base + (QUICK if args.quick else []), calls=2 if args.quick else 20)
    else:
        res = measure(args.base + (QUICK if args.quick else []), args.variants, 1 if args.quick else args.repeats)
        for name, v in res["variants"].items():
            print(
                f"{name:9s} cpu {v['cpu_s']:7.2f} s  {v['cpu_ms_per_lane_step']:.2f} ms/lane-step  "
                f"{v['cpu_ms_per_batch_iteration_max']:.2f} ms/batch-iteration(≤)  lane steps {v['lane_steps']}  "
                f"waste ≥{v['lane_waste_min']:.0%}  solves {v['solves']} (batch {v['batch_solve_iterations']})  "
                f"Δt_stop ≤{v['t_stop_rel_diff_vs_first_max']:.1e}  {v['status']}"
            )
    write_json(res, args.json)
    return res


if __name__ == "__main__":
    main()
