"""GPU check for the two-layer engine: correctness against the CPU, then throughput by batch size.

    python benchmarks/gpu/gpu_check.py                 # on a GPU machine: < 5 minutes on an H200
    python benchmarks/gpu/gpu_check.py --quick         # small sizes; also runs on a CPU-only machine

1. Correctness: one small sweep (6 α × 4 seeds, n=40, d=200, h=100, float32) on the accelerator and
   on the CPU; statuses must agree and t_η / test error must agree to the solver's accuracy.
2. Throughput: for batch sizes 1, 16, 64, 256, 1024 (lanes at α = 1e-2, a rich-regime run), runs/s
   and the achieved FLOP/s of gradient evaluation, counting 4·n·h·d FLOP per evaluation (gflow's
   vector field also tracks the margins, 6·n·h·d in all; both are printed).
3. Fair comparison (`--fair [LEVEL …]`, or `--fair-only`): runs/s at matched accuracy, on the device, of a vmapped
   jitted JAX GD loop with its own learning rate per lane (oracle-tuned: for each lane the largest lr
   of lr₀·2^−k whose t_η is within the level of a tight gflow reference, `flow.accuracy` = level/10;
   the search is not charged) against one `gflow sweep` at `flow.accuracy` = level. Both are timed
   after compilation, once each (the GD call after its search's compile), float32.
4. States the matmul precision: gflow traces its solve at `flow.matmul_precision` ('highest', full
   float32, by default). `--also-default` repeats the correctness check at JAX's 'default' precision,
   under which GPUs run float32 matmuls as TF32 and trajectories change.
Builds nothing, writes nothing; prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import gflow
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig, SweepConfig
from gflow.twolayer.flow import Lane
from gflow.twolayer.sweep import solve_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `benchmarks.gd` when run as a script
from benchmarks.gd import LR0, MAX_HALVINGS, jax_gd_sweep, rel_err  # noqa: E402

STAGES_PER_STEP = {"bosh3": 3}  # new vector-field evaluations per step (FSAL)


def sweep_on(device, cfg):
    with jax.default_device(device):
        return gflow.run_sweep(cfg, progress=False)


def correctness(cfg) -> bool:
    accel = jax.devices()[0]
    cpu = jax.devices("cpu")[0]
    a, c = sweep_on(accel, cfg), sweep_on(cpu, cfg)
    same_status = np.array_equal(a.arrays["status"], c.arrays["status"])
    ok = (a.arrays["status"] <= 1) & (c.arrays["status"] <= 1)
    rel_t = np.abs(a.arrays["t_stop"][ok] / c.arrays["t_stop"][ok] - 1)
    d_err = np.abs(a.arrays["final_test_err"][ok] - c.arrays["final_test_err"][ok])
    print(
        f"correctness: {accel.platform} vs cpu on {ok.size} runs: statuses equal: {same_status}; "
        f"t_η rel. diff median {np.median(rel_t):.1e} max {rel_t.max():.1e}; test error abs. diff max {d_err.max():.4f}"
    )
    return bool(same_status and np.median(rel_t) < 1e-3 and d_err.max() < 0.02)


def throughput(cfg, batch_sizes, alpha=1e-2):
    n, d, h = cfg.data.n, cfg.data.d, cfg.model.width
    data = gflow.twolayer.data.make_dataset(cfg.data)
    flow = cfg.flow.compiled()
    print("\n| batch | runs/s | steps/run | grad evals/s | GFLOP/s (4nhd) | GFLOP/s (6nhd) | wall s |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for b in batch_sizes:
        lanes = Lane(
            init_scale=jnp.full((b,), alpha),
            multiplier=jnp.ones((b,)),
            target_loss=jnp.full((b,), cfg.flow.target_loss),
            rtol=jnp.full((b,), cfg.flow.rtol),
            init_key=jax.vmap(gflow.twolayer.model.init_key)(jnp.arange(b, dtype=jnp.uint32)),
        )
        run = lambda: solve_batch(lanes, data, width=h, second_layer="balanced", flow=flow)  # noqa: E731
        jax.block_until_ready(run())
        t0 = time.perf_counter()
        res = jax.block_until_ready(run())
        wall = time.perf_counter() - t0
        evals = float(np.sum(np.asarray(res.n_steps))) * STAGES_PER_STEP["bosh3"]
        row = (
            b,
            b / wall,
            float(np.mean(np.asarray(res.n_steps))),
            evals / wall,
            evals * 4 * n * h * d / wall / 1e9,
            evals * 6 * n * h * d / wall / 1e9,
            wall,
        )
        rows.append(row)
        print("| {} | {:.1f} | {:.0f} | {:.3g} | {:.1f} | {:.1f} | {:.2f} |".format(*row), flush=True)
    return rows


def fair(cfg, level, alphas, n_seeds):
    """runs/s of oracle-tuned vmapped JAX GD (lr per lane) and of a gflow sweep at flow.accuracy = level."""

    def sweep_at(acc):
        c = dataclasses.replace(
            cfg,
            flow=dataclasses.replace(cfg.flow, accuracy=acc, max_steps=10**6),
            sweep=SweepConfig(init_scales=tuple(alphas), n_seeds=n_seeds),
        )
        return gflow.run_sweep(c, progress=False)

    ref = sweep_at(level / 10).arrays["t_stop"].ravel()
    sweep_at(level)  # compile
    t0 = time.perf_counter()
    res = sweep_at(level)
    g_wall = time.perf_counter() - t0
    g_err = max(rel_err(a, b) for a, b in zip(res.arrays["t_stop"].ravel(), ref))
    data = gflow.twolayer.data.make_dataset(cfg.data)
    lanes_a = np.repeat(np.asarray(alphas), n_seeds)
    lanes_s = np.tile(np.arange(n_seeds), len(alphas))
    lr, active = np.full(lanes_a.size, LR0), np.ones(lanes_a.size, bool)
    for _ in range(MAX_HALVINGS):  # oracle search (not charged): halve each lane's lr until within the level
        r = jax_gd_sweep(lanes_a, lanes_s, data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss)
        active &= ~np.asarray([rel_err(t, tr) <= level if ok else False for t, tr, ok in zip(r.t_stop, ref, r.reached)])
        if not active.any():
            break
        lr = np.where(active, lr / 2, lr)
    t0 = time.perf_counter()
    r = jax_gd_sweep(lanes_a, lanes_s, data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss)
    gd_wall = time.perf_counter() - t0
    gd_err = max(rel_err(t, tr) for t, tr in zip(r.t_stop, ref))
    n = lanes_a.size
    print(f"\nfair comparison at level {level:g} ({n} runs, float32, reference: gflow at accuracy {level / 10:g}):")
    print("| contender | runs/s | max rel. error of t_η | wall s |\n|---|---|---|---|")
    print(f"| gflow sweep, flow.accuracy = {level:g} | {n / g_wall:.2f} | {g_err:.1e} | {g_wall:.2f} |")
    print(
        f"| vmapped JAX GD, oracle lr per lane{'' if not active.any() else ' (some lanes never met the level)'} | "
        f"{n / gd_wall:.2f} | {gd_err:.1e} | {gd_wall:.2f} |"
    )
    print(f"gflow / GD runs/s: {gd_wall / g_wall:.2f}×")
    return {
        "level": level,
        "runs": n,
        "gflow_runs_per_s": n / g_wall,
        "gd_runs_per_s": n / gd_wall,
        "gflow_max_err": g_err,
        "gd_max_err": gd_err,
        "ratio": gd_wall / g_wall,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small batch sizes (CPU smoke test)")
    ap.add_argument(
        "--precision",
        default="highest",
        choices=["default", "high", "highest"],
        help="flow.matmul_precision of the engine (default: highest, gflow's default)",
    )
    ap.add_argument(
        "--fair",
        type=float,
        nargs="*",
        default=None,
        metavar="LEVEL",
        help="also run the fair comparison at these accuracy levels (none given: 1e-2 with --quick, else 1e-2 1e-3)",
    )
    ap.add_argument("--fair-only", action="store_true", help="only the fair comparison (implies --fair)")
    ap.add_argument(
        "--also-default",
        action="store_true",
        help="also run the correctness check at JAX's 'default' matmul precision (TF32 on NVIDIA GPUs)",
    )
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    print(f"device: {dev} ({dev.platform}, {getattr(dev, 'device_kind', '')}); jax {jax.__version__}")
    cfg = Config(
        data=DataConfig(n=40, d=200, n_test=1000),
        model=ModelConfig(width=100),
        flow=FlowConfig(target_loss=1e-2, matmul_precision=args.precision),
        sweep=SweepConfig(init_scales=(1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0), n_seeds=4),
    )
    print(f"matmul precision: {args.precision} (flow.matmul_precision)")
    if args.fair is not None or args.fair_only:
        levels = args.fair if args.fair else ([1e-2] if args.quick else [1e-2, 1e-3])
        if args.quick:  # CPU smoke mode: a tiny problem for the fair comparison
            fcfg = Config(
                data=DataConfig(n=20, d=50, n_test=200),
                model=ModelConfig(width=20),
                flow=FlowConfig(target_loss=1e-2, matmul_precision=args.precision),
            )
            fair_rows = [fair(fcfg, lv, (1e-3, 1.0), 2) for lv in levels]
        else:
            fair_rows = [fair(cfg, lv, tuple(np.logspace(-5, 1, 16)), 16) for lv in levels]
        if args.fair_only:
            return 0 if fair_rows else 1
    ok = correctness(cfg)
    if args.also_default:
        print("matmul precision: default (JAX's; TF32 for float32 matmuls on NVIDIA GPUs), informational")
        correctness(dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, matmul_precision="default")))
    throughput(cfg, (1, 4) if args.quick else (1, 16, 64, 256, 1024))
    print(f"\ncorrectness check {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
