"""The stop event's loss from the FSAL stage (issue 11, item 3) against an extra forward pass per step.

gflow's stop event needs L(θ) at every step end. Since issue 11 the vector field returns L(θ) in an
extra state leaf (it shares the forward pass x·Wᵀ with the velocity), and `FusedBosh3`'s FSAL stage,
the vector field at the step end, hands it to the event (`gflow.twolayer.solvers.RecordStepStart`). The other
variant is the previous cost: the step wrapper computes L(θ) at the step end with its own forward pass
(`loss_fn`; what every non-FSAL solver still does), emulated here by a `FusedBosh3` subclass that
does not expose its FSAL state. Same steps, same results (checked: t_stop, status, n_steps equal).

Cases, each timed after compilation, interleaved in one process (two blocks per variant, alternating,
`repeats` timings per block; medians over both blocks):
- small-sweep: `run_sweep` of the small problem, 16 α × 4 seeds, float32, rtol 1e-3 (the suite's);
- small-acc: `run_sweep` of the small problem's 6-α accuracy subset, seed 0, float64, accuracy 1e-3;
- medium-acc: `run_sweep` of the medium problem at α = 1.58, 10, seed 0, float64, accuracy 1e-2.

Both the wall and the process CPU time (all threads) are recorded: on a shared machine (load
average well above the core count) the CPU time is the steadier measure of the work done.

    python -m benchmarks.studies.lean_step [--repeats 3] [--cases small-sweep small-acc medium-acc]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks import reference as refmod  # noqa: E402
from benchmarks.common import SWEEP_SCALES, loadavg, problem_config, report  # noqa: E402
from benchmarks.studies.solver_step import bosh3_as  # noqa: E402
from gflow.twolayer import solvers  # noqa: E402


class _Bosh3ForwardPassLoss(solvers.FusedBosh3):
    """FusedBosh3 whose FSAL state gflow does not read: the step end's loss costs a forward pass."""

    state_is_end_vf = False


VARIANTS = {"forward pass": _Bosh3ForwardPassLoss, "FSAL stage": solvers.FusedBosh3}


def case(name):
    """(config, dataset) of a case."""
    if name == "small-sweep":
        cfg = problem_config("small", n_seeds=4)
    elif name == "small-acc":
        cfg = problem_config(
            "small", dtype="float64", n_seeds=1, init_scales=refmod.accuracy_subset(SWEEP_SCALES, "small")
        )
        cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, accuracy=1e-3, max_steps=10**6))
    elif name == "medium-acc":
        alphas = tuple(SWEEP_SCALES[i] for i in (12, 15))  # 1.58, 10
        cfg = problem_config("medium", dtype="float64", n_seeds=1, init_scales=alphas)
        cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, accuracy=1e-2, max_steps=10**6))
    else:
        raise ValueError(f"unknown case {name!r}")
    return cfg, gflow.twolayer.data.make_dataset(cfg.data, np.dtype(cfg.flow.dtype))


def measure(cases=("small-sweep", "small-acc", "medium-acc"), repeats=3) -> dict:
    setups = {c: case(c) for c in cases}
    times = {(v, c): [] for v in VARIANTS for c in cases}
    cpu = {(v, c): [] for v in VARIANTS for c in cases}
    results = {}
    for block in range(2):
        for v, cls in VARIANTS.items():
            with bosh3_as(cls):
                for c, (cfg, data) in setups.items():
                    results[v, c] = gflow.run_sweep(cfg, data=data, progress=False)  # compile
                    for _ in range(repeats):
                        t0, c0 = time.perf_counter(), time.process_time()
                        gflow.run_sweep(cfg, data=data, progress=False)
                        times[v, c].append(time.perf_counter() - t0)
                        cpu[v, c].append(time.process_time() - c0)
                    print(
                        f"block {block} {v} {c}: wall {[f'{t:.3f}' for t in times[v, c]]} "
                        f"cpu {[f'{t:.3f}' for t in cpu[v, c]]} load {loadavg():.1f}",
                        flush=True,
                    )
    out = {"repeats_per_block": repeats, "blocks": 2, "load": loadavg(), "cases": {}}
    a, b = VARIANTS
    for c in cases:
        ra, rb = results[a, c].arrays, results[b, c].arrays
        out["cases"][c] = {
            **{f"{v}_wall_s": statistics.median(times[v, c]) for v in VARIANTS},
            **{f"{v}_walls": times[v, c] for v in VARIANTS},
            **{f"{v}_cpu_s": statistics.median(cpu[v, c]) for v in VARIANTS},
            **{f"{v}_cpus": cpu[v, c] for v in VARIANTS},
            "speedup": statistics.median(times[a, c]) / statistics.median(times[b, c]),
            "speedup_cpu": statistics.median(cpu[a, c]) / statistics.median(cpu[b, c]),
            "steps": int(np.sum(rb["n_steps"])),
            "same_steps": bool(np.array_equal(ra["n_steps"], rb["n_steps"])),
            "same_status": bool(np.array_equal(ra["status"], rb["status"])),
            "t_stop_rel_diff_max": float(np.nanmax(np.abs(rb["t_stop"] / ra["t_stop"] - 1))),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["small-sweep", "small-acc", "medium-acc"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--json", default="benchmarks/results/lean_step.json", help="also write the result here ('' to skip)"
    )
    args = ap.parse_args()
    report(measure(tuple(args.cases), args.repeats), args.json)


if __name__ == "__main__":
    main()
