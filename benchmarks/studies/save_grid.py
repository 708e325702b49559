"""What the save grid costs: a loop of `gflow.simulate` over the 16 α (seed 0) with the default grid
(flow.n_save = 48 points, observables on flow.n_test_grid = 512 test points) against n_save = 2 (t = 0
and t_max: no save inside a run). Saving does not change the steps (diffrax interpolates to the save
times), so the step counts must match. Both compiled first, then timed in alternating blocks in one
process; medians. Wall and process CPU time (all threads) are both recorded: under a load average
above the core count, the CPU time is the steadier measure.

    python -m benchmarks.studies.save_grid [--problem small] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax

import gflow
from benchmarks.common import SWEEP_SCALES, loadavg, problem_config, report


def loop(cfg):
    steps = 0
    for a in SWEEP_SCALES:
        r = jax.block_until_ready(gflow.simulate(init_scale=a, config=cfg))
        steps += int(r.n_steps)
    return steps


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="small")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    base = problem_config(args.problem)
    cfgs = {
        "n_save=48 (default)": base,
        "n_save=2": dataclasses.replace(base, flow=dataclasses.replace(base.flow, n_save=2)),
    }
    steps = {k: loop(c) for k, c in cfgs.items()}  # compile
    walls, cpus = {k: [] for k in cfgs}, {k: [] for k in cfgs}
    for _ in range(args.repeats):
        for k, c in cfgs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            loop(c)
            walls[k].append(time.perf_counter() - t0)
            cpus[k].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
    a, b = med["n_save=48 (default)"], med["n_save=2"]
    res = {
        "problem": args.problem,
        "steps": steps,
        "walls_s": walls,
        "median_s": med,
        "cpu_s": cpus,
        "median_cpu_s": med_cpu,
        "save_grid_share_of_run": 1 - b / a,
        "save_grid_share_of_cpu": 1 - med_cpu["n_save=2"] / med_cpu["n_save=48 (default)"],
        "load": loadavg(),
    }
    report(res, args.json)
    return res


if __name__ == "__main__":
    main()
