"""gflow's written-out Bosh3 step (`gflow.twolayer.solvers.FusedBosh3`, the default) against `diffrax.Bosh3`.

Same method, tableau, controller and tolerances; only the way the step is written differs, so step
counts should match and t_η agree to float32 rounding. Timed after compilation, side by side in one
process: two blocks per variant, alternating, each compiled first; medians over both blocks.

- loop: a Python loop of `gflow.simulate` over the 16 α (seed 0);
- sweep: one `gflow.run_sweep` over 16 α × 4 seeds (cost-aware chunks).

    python -m benchmarks.studies.solver_step [--problem small] [--repeats 3]
"""

from __future__ import annotations

import contextlib
import statistics
import time

import diffrax
import jax
import numpy as np

import gflow
from benchmarks.cli import parser
from benchmarks.common import SWEEP_SCALES, problem_config, report
from gflow.twolayer import solvers

VARIANTS = {"diffrax.Bosh3": diffrax.Bosh3, "FusedBosh3": solvers.FusedBosh3}


@contextlib.contextmanager
def bosh3_as(cls):
    """Make flow.solver = 'bosh3' mean `cls` (and drop compiled programs, which cache the old one)."""
    old = solvers.SOLVERS["bosh3"]
    solvers.SOLVERS["bosh3"] = old._replace(cls=cls)
    jax.clear_caches()
    try:
        yield
    finally:
        solvers.SOLVERS["bosh3"] = old
        jax.clear_caches()


def measure(problem="small", repeats=3, target_loss=1e-2, n_seeds=4) -> dict:
    cfg = problem_config(problem, target_loss=target_loss, n_seeds=n_seeds)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float32)

    def loop():
        return [gflow.simulate(init_scale=a, seed=0, config=cfg, data=data) for a in SWEEP_SCALES]

    def sweep():
        return gflow.run_sweep(cfg, data=data, progress=False)

    times = {v: {"loop": [], "sweep": []} for v in VARIANTS}
    results = {}
    # Switching variants drops the compiled programs, so each block compiles first (untimed); two
    # blocks per variant, alternating, spread the machine's drifts over both.
    for block in range(2):
        for name, cls in VARIANTS.items():
            with bosh3_as(cls):
                for label, fn in (("loop", loop), ("sweep", sweep)):
                    results[name, label] = jax.block_until_ready(fn())  # compile
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        jax.block_until_ready(fn())
                        times[name][label].append(time.perf_counter() - t0)
            print(f"block {block} {name}: {times[name]}", flush=True)

    out = {
        "problem": problem,
        "target_loss": target_loss,
        "n_alpha": len(SWEEP_SCALES),
        "n_seeds": n_seeds,
        "repeats_per_block": repeats,
        "blocks": 2,
        "variants": {},
    }
    for name in VARIANTS:
        sw = results[name, "sweep"].arrays
        lp = results[name, "loop"]
        out["variants"][name] = {
            "loop_wall_s": statistics.median(times[name]["loop"]),
            "sweep_wall_s": statistics.median(times[name]["sweep"]),
            "loop_steps": int(sum(int(r.n_steps) for r in lp)),
            "sweep_steps": int(np.sum(sw["n_steps"])),
        }
    a, b = (out["variants"][v] for v in VARIANTS)
    t_a, t_b = results["diffrax.Bosh3", "sweep"].arrays["t_stop"], results["FusedBosh3", "sweep"].arrays["t_stop"]
    rel = np.abs(t_b / t_a - 1)
    out["speedup_loop"] = a["loop_wall_s"] / b["loop_wall_s"]
    out["speedup_sweep"] = a["sweep_wall_s"] / b["sweep_wall_s"]
    out["t_stop_rel_diff_median"] = float(np.median(rel))
    out["t_stop_rel_diff_max"] = float(rel.max())
    out["status_equal_fraction"] = float(
        np.mean(results["diffrax.Bosh3", "sweep"].arrays["status"] == results["FusedBosh3", "sweep"].arrays["status"])
    )
    return out


def main():
    ap = parser(__doc__, quick=None, json="solver_step.json", problem="small", repeats=3)
    args = ap.parse_args()
    report(measure(args.problem, args.repeats), args.json)


if __name__ == "__main__":
    main()
