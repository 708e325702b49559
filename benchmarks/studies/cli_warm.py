"""Issue 11's CLI target: a second `gflow sweep` process (compile cache warm) of the default config
against a numpy GD loop over the same runs at the same accuracy, end to end.

The default config (`gflow.Config()`: n = 40, d = 100, h = 100, 13 α × 8 seeds = 104 runs, η = 0.01,
float32). For accuracy level L (relative error of t_η):
1. references t_η: float64 `run_sweep` of the same 104 runs at `flow.accuracy = L/10` (not charged);
2. numpy GD (float64, one BLAS thread, `benchmarks.gd.numpy_gd`): per α, the largest lr of the ladder
   4·2^−k whose t_η is within L of the reference for every seed of that α (searched with the vmapped
   JAX GD, not charged: an oracle); then the 104 runs one after another, timed in this process
   (data built beforehand: it is not charged the Python start-up, imports or data generation that
   the CLI pays);
3. gflow: `python -m gflow.cli sweep --out DIR --set flow.accuracy=L --quiet --no-plot` as a
   subprocess with a fresh compile cache (`GFLOW_COMPILE_CACHE`): one cold call, then `repeats` warm
   calls, each into a fresh DIR; wall of the whole process (start-up, import, data, compile-cache
   loads, the sweep, writing the run directory). Also the default config as shipped (flow.rtol = 1e-3,
   no flow.accuracy), with its measured error against the same references, and the accuracy run
   without the semi-analytic test error at the stop (`flow.sa_draws=1`; the numpy loop computes only
   the Monte-Carlo test error), to show what that observable costs.
Walls are medians of `repeats`, the contenders alternating. CPU times (user + system, all threads;
the CLI's from `getrusage(RUSAGE_CHILDREN)`) are recorded too: on a shared machine whose load
average exceeds its cores, they are the steadier measure of the work each contender does.

    python -m benchmarks.studies.cli_warm [--level 1e-2] [--repeats 3] [--json benchmarks/results/cli_warm.json]
    python -m benchmarks.studies.cli_warm --quick --json ''    # 2 α × 2 seeds: the smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.common import blas_threads, loadavg, machine  # noqa: E402
from benchmarks.gd import LR0, MAX_HALVINGS, dataset_numpy, init, jax_gd_sweep, numpy_gd  # noqa: E402
from benchmarks.studies.cli_contract import gflow_cli as cli_sweep  # noqa: E402  (one `gflow sweep` process, timed)
from gflow.twolayer.config import Config, FlowConfig, with_overrides  # noqa: E402


def references(cfg, data, level):
    c = Config(
        data=cfg.data,
        model=cfg.model,
        sweep=cfg.sweep,
        flow=FlowConfig(dtype="float64", target_loss=cfg.flow.target_loss, accuracy=level / 10, max_steps=10**6),
    )
    a = gflow.run_sweep(c, data=data, progress=False).arrays
    return np.asarray(a["t_stop"], np.float64), np.asarray(a["t_err_est"], np.float64)  # [α, seed]


def oracle_lrs(cfg, data, t_ref, level):
    """Per α, the largest lr 4·2^−k with every seed's t_η within `level` of the reference."""
    alphas, n_seeds = cfg.sweep.init_scales, cfg.sweep.n_seeds
    flat_a = np.repeat(alphas, n_seeds)
    flat_s = np.tile(np.arange(n_seeds), len(alphas))
    best = [None] * len(alphas)
    lr = np.full(len(alphas), LR0)  # per α; a settled α re-runs at its own lr (cheap)
    for _ in range(MAX_HALVINGS):
        # an lr that neither converges nor overflows would hold every lane of the vmapped loop: cap the
        # iterations at 4 × the slowest reference's t_η/lr (such an lr cannot be within the level anyway)
        cap = int(4 * np.max(t_ref) / lr.min()) + 10
        r = jax_gd_sweep(
            flat_a,
            flat_s,
            data,
            width=cfg.model.width,
            lr=np.repeat(lr, n_seeds),
            eta=cfg.flow.target_loss,
            max_iters=cap,
        )
        err = np.where(r.reached, np.abs(r.t_stop / t_ref.ravel() - 1), np.inf).reshape(len(alphas), n_seeds)
        for i in range(len(alphas)):
            if best[i] is None and np.all(err[i] <= level):
                best[i] = float(lr[i])
        if all(b is not None for b in best):
            break
        lr = np.where([b is None for b in best], lr / 2, lr)
    return best


def numpy_loop(cfg, data_np, lrs):
    x, y, xt, yt = data_np
    out = []
    for a, lr in zip(cfg.sweep.init_scales, lrs):
        for s in range(cfg.sweep.n_seeds):
            W, av = init(a, s, cfg.data.d, cfg.model.width)
            out.append(numpy_gd(W, av, x, y, xt, yt, lr=lr, eta=cfg.flow.target_loss))
    return out


QUICK = ["sweep.init_scales=[0.01, 1.0]", "sweep.n_seeds=2", "data.n_test=200"]


def measure(level=1e-2, repeats=3, quick=False, log=print) -> dict:
    base = QUICK if quick else []
    cfg = with_overrides(Config(), base)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    t0 = time.perf_counter()
    t_ref, ref_est = references(cfg, data, level)
    log(f"references: {time.perf_counter() - t0:.1f} s, max estimate {np.nanmax(ref_est):.1e}")
    lrs = oracle_lrs(cfg, data, t_ref, level)
    log(f"oracle lr per α: {lrs}")
    data_np = dataset_numpy(data)
    # accuracy_no_sa: the same without the semi-analytic test error at the stop (flow.sa_draws = 1), which the numpy
    # loop does not compute either (~110 ms of CPU a run: a sort of h breakpoints per test point; sweep_profile.py)
    variants = {
        "accuracy": base + [f"flow.accuracy={level}"],
        "default": base,
        "accuracy_no_sa": base + [f"flow.accuracy={level}", "flow.sa_draws=1"],
    }
    walls = {"numpy_gd": [], **{f"gflow_cli_{k}_warm": [] for k in variants}}
    cpus = {k: [] for k in walls}
    with tempfile.TemporaryDirectory() as work:
        cache = os.path.join(work, "cache")
        cold, results = {}, {}
        for k, sets in variants.items():
            cold[k], _, results[k] = cli_sweep(sets, cache, work)
        log(f"cold CLI walls: {cold}")
        gd = None
        for _ in range(repeats):
            with blas_threads(1):
                t, c = time.perf_counter(), time.process_time()
                gd = numpy_loop(cfg, data_np, lrs)
                walls["numpy_gd"].append(time.perf_counter() - t)
                cpus["numpy_gd"].append(time.process_time() - c)
            for k, sets in variants.items():
                w, c, results[k] = cli_sweep(sets, cache, work)
                walls[f"gflow_cli_{k}_warm"].append(w)
                cpus[f"gflow_cli_{k}_warm"].append(c)
            log({k: [f"{v:.2f}" for v in w] for k, w in walls.items()} | {"cpu": cpus, "load": loadavg()})
    gd_t = np.array([r.t_stop for r in gd]).reshape(t_ref.shape)
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
    out = {
        "config": "gflow.Config() (default)" + (f" with {base}" if base else ""),
        "runs": int(t_ref.size),
        "level": level,
        "reference_accuracy": level / 10,
        "reference_est_max": float(np.nanmax(ref_est)),
        "numpy_gd": {
            "lr_per_alpha": lrs,
            "iters": int(sum(r.iters for r in gd)),
            "t_rel_err_max": float(np.max(np.abs(gd_t / t_ref - 1))),
            "wall_s": med["numpy_gd"],
            "walls": walls["numpy_gd"],
            "cpu_s": med_cpu["numpy_gd"],
            "cpus": cpus["numpy_gd"],
        },
        "cold_cli_wall_s": cold,
        "load_at_end": loadavg(),
    }
    for k in variants:
        a = results[k]
        err = np.abs(np.asarray(a["t_stop"], np.float64) / t_ref - 1)
        out[f"gflow_cli_{k}"] = {
            "wall_s": med[f"gflow_cli_{k}_warm"],
            "walls": walls[f"gflow_cli_{k}_warm"],
            "cpu_s": med_cpu[f"gflow_cli_{k}_warm"],
            "cpus": cpus[f"gflow_cli_{k}_warm"],
            "ratio_cpu_numpy_over_gflow": med_cpu["numpy_gd"] / med_cpu[f"gflow_cli_{k}_warm"],
            "t_rel_err_max": float(np.nanmax(err)),
            "t_rel_err_median": float(np.nanmedian(err)),
            "steps": int(np.sum(a["n_steps"])),
            "statuses": {
                s: int(np.sum(a["status"] == i)) for i, s in enumerate(gflow.STATUS_NAMES) if np.any(a["status"] == i)
            },
            "ratio_numpy_over_gflow": med["numpy_gd"] / med[f"gflow_cli_{k}_warm"],
        }
    out["machine"] = machine()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--level", type=float, default=1e-2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help=f"smoke test: the default config with {QUICK}, 1 repeat")
    ap.add_argument("--json", default="benchmarks/results/cli_warm.json")
    args = ap.parse_args(argv)
    res = measure(args.level, 1 if args.quick else args.repeats, quick=args.quick)
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
