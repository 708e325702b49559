"""Solver and tolerance choice for the default problem: accuracy of t_η and of the test error
against a tight float64 reference, solver steps, and wall time, for several α.

    python benchmarks/studies/solver_choice.py            # ~10 minutes on 2 CPU cores
    python benchmarks/studies/solver_choice.py --quick    # fewer settings

Accuracy runs are float64 (so the solver's error is what is measured); wall times are float32,
the default dtype, median of 3 repeats after compilation. Prints a markdown table and writes
benchmarks/results/solver_choice.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import gflow  # noqa: E402
from gflow.twolayer.config import Config, FlowConfig  # noqa: E402

ALPHAS = (1e-5, 1e-3, 1e-1, 1.0)
REFERENCE = dict(solver="bosh3", rtol=1e-5, dtype="float64", max_steps=1_000_000)


def run(alpha, **flow):
    r = gflow.simulate(init_scale=alpha, config=Config(flow=FlowConfig(**flow)))
    jax.block_until_ready(r)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    settings = [("bosh3", 1e-2, True), ("bosh3", 1e-3, True), ("tsit5", 1e-3, True), ("bosh3", 1e-3, False)]
    if not args.quick:
        settings += [
            ("bosh3", 1e-4, True),
            ("tsit5", 1e-2, True),
            ("tsit5", 1e-4, True),
            ("heun", 1e-3, True),
            ("bosh3", 1e-2, False),
        ]
    ref = {}
    for a in ALPHAS:
        r = run(a, **REFERENCE)
        assert gflow.STATUS_NAMES[int(r.status)] == "reached_target", (a, gflow.STATUS_NAMES[int(r.status)])
        ref[a] = (float(r.t_stop), float(r.final["test_err"]), int(r.n_steps))
        print(f"reference α={a:g}: t_η={ref[a][0]:.6f} test_err={ref[a][1]:.4f} steps={ref[a][2]}", flush=True)
    rows = []
    for solver, rtol, floor in settings:
        flow = dict(solver=solver, rtol=rtol, tolerance_floor=floor)
        t_err, e_err, steps, rej, walls = [], [], 0, 0, []
        for a in ALPHAS:
            r = run(a, dtype="float64", **flow)
            t_err.append(abs(float(r.t_stop) / ref[a][0] - 1))
            e_err.append(abs(float(r.final["test_err"]) - ref[a][1]))
            steps += int(r.n_steps)
            rej += int(r.n_rejected)
            run(a, **flow)  # compile float32
            reps = []
            for _ in range(3):
                t0 = time.perf_counter()
                run(a, **flow)
                reps.append(time.perf_counter() - t0)
            walls.append(statistics.median(reps))
        row = dict(
            solver=solver,
            rtol=rtol,
            tolerance_floor=floor,
            max_t_rel_err=max(t_err),
            max_test_err_diff=max(e_err),
            steps=steps,
            rejected=rej,
            wall_f32_s=sum(walls),
        )
        rows.append(row)
        print(row, flush=True)
    print(
        "\n| solver | rtol | tolerance floor | max rel. error of t_η | max abs. error of test error | steps (4 runs) | rejected | "
        "float32 wall (4 runs) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['solver']} | {r['rtol']:g} | {'on' if r['tolerance_floor'] else 'off'} | {r['max_t_rel_err']:.1e} | "
            f"{r['max_test_err_diff']:.4f} | {r['steps']} | {r['rejected']} | {r['wall_f32_s']:.2f} s |"
        )
    out = Path(__file__).parents[1] / "results" / "solver_choice.json"
    out.write_text(
        json.dumps(
            dict(
                alphas=ALPHAS,
                reference=REFERENCE,
                reference_values=ref,
                rows=rows,
                versions=gflow.runs.store.versions(),
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
