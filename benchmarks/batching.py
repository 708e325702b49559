"""Cost-aware batching against naive full vmap, on the 16-α × 4-seed sweep (issue 3/4).

A vmapped adaptive solve runs every lane until the slowest lane finishes. Naive full vmap puts all
64 runs in one batch, so every lane pays for the α = 1e-5 runs; gflow's default chunks hold the 4
seeds of one α (similar cost). Both give identical results (tests/twolayer/test_sweep_engine.py).

    python -m benchmarks.batching [--problem small] [--repeats 3] [--quick] [--json PATH]
"""

from __future__ import annotations

import numpy as np

import gflow
from benchmarks.cli import parser
from benchmarks.common import problem_config, report, timed


def measure(problem="small", repeats=3, target_loss=1e-2, n_seeds=4) -> dict:
    n_runs = 16 * n_seeds
    out = {"problem": problem, "target_loss": target_loss, "n_runs": n_runs, "variants": {}}
    ref = None
    for label, chunk in (("full_vmap", n_runs), ("cost_aware", 0), ("chunks_of_16", 16)):
        # each chunk is one compiled batch (batch_lanes = chunk), as these variants were defined
        cfg = problem_config(
            problem, chunk_size=chunk, batch_lanes=chunk or n_seeds, target_loss=target_loss, n_seeds=n_seeds
        )
        gflow.run_sweep(cfg, progress=False)  # compile
        wall, res = timed(gflow.run_sweep, cfg, progress=False, repeats=repeats)
        if ref is None:
            ref = res
        # float32: a different batch shape changes rounding, hence step decisions; the differences
        # stay at the solver's accuracy (the float64 test suite checks exact agreement)
        assert np.array_equal(res.arrays["status"] <= 1, ref.arrays["status"] <= 1)
        rel = np.abs(res.arrays["t_stop"] / ref.arrays["t_stop"] - 1)
        steps = res.arrays["n_steps"]
        out["variants"][label] = {
            "chunk_size": res.meta["chunk_sizes"][0],
            "wall_s": wall,
            "runs_per_s": n_runs / wall,
            "steps_min": int(steps.min()),
            "steps_max": int(steps.max()),
            "t_stop_rel_diff_vs_full_vmap_median": float(np.median(rel)),
            "t_stop_rel_diff_vs_full_vmap_max": float(rel.max()),
        }
        print(label, out["variants"][label], flush=True)
    v = out["variants"]
    out["speedup_cost_aware_vs_full_vmap"] = v["full_vmap"]["wall_s"] / v["cost_aware"]["wall_s"]
    return out


def main(argv=None):
    ap = parser(__doc__, quick="the tiny problem, 2 seeds, 1 repeat", json="batching.json", problem="small", repeats=3)
    args = ap.parse_args(argv)
    if args.quick:
        res = measure("tiny", 1, n_seeds=2)
    else:
        res = measure(args.problem, args.repeats)
    report(res, args.json)
    return res


if __name__ == "__main__":
    main()
