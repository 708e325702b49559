"""Issue 11: `flow.error_norm` ('margins' against 'loss') and the solver (bosh3 against rkc2), step
counts and the relative error of t_η against the stored float64 references (benchmarks/data/reference.json,
η = 0.01, seed 0), float64. Fixed rtol (`--rtols`) and `flow.accuracy` (`--accuracies`). Counts, not
timings: the point is how many steps each error norm lets the solver take at what accuracy.

    python -m benchmarks.studies.error_norm [--problem small] [--alphas 0.001 10] [--rtols 1e-3] [--accuracies 1e-3]
                                    [--solvers bosh3 rkc2] [--json PATH]
    python -m benchmarks.studies.error_norm --problem medium --alphas 10 1.584893192461114 0.1 --rtols --accuracies 1e-3 \
                                    --solvers bosh3      # the medium-problem figures of README Numerics, point 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax

jax.config.update("jax_enable_x64", True)

from benchmarks.common import loadavg, machine, problem_config, write_json  # noqa: E402
from benchmarks.reference import REF_FILE  # noqa: E402
from gflow.twolayer.flow import simulate  # noqa: E402
from gflow.twolayer.stop import STATUS_NAMES  # noqa: E402


def run(problem, alphas, rtols, accuracies, solvers, norms=("margins", "loss"), log=print):
    ref = json.loads(REF_FILE.read_text())[f"{problem}/eta=0.01"]
    base = problem_config(problem, dtype="float64")
    rows = []
    for alpha in alphas:
        t_ref, test_ref = (ref[k][ref["alphas"].index(alpha)] for k in ("t_stop", "test_err"))
        for solver in solvers:
            for norm in norms:
                settings = [dict(rtol=r) for r in rtols] + [dict(accuracy=a) for a in accuracies]
                for setting in settings:
                    # 'margins' without the margin floor: the accurate setting (README Numerics, point 4)
                    flow = dataclasses.replace(
                        base.flow,
                        solver=solver,
                        error_norm=norm,
                        floor_margins=False,
                        n_save=4,
                        max_steps=200_000,
                        **setting,
                    )
                    r = simulate(init_scale=alpha, config=dataclasses.replace(base, flow=flow))
                    row = dict(
                        problem=problem,
                        alpha=alpha,
                        solver=solver,
                        error_norm=norm,
                        **setting,
                        status=STATUS_NAMES[int(r.status)],
                        steps=int(r.n_steps),
                        rejected=int(r.n_rejected),
                        solves=int(r.n_solves),
                        t_rel_err=abs(float(r.t_stop) / t_ref - 1),
                        test_err_diff=abs(float(r.final["test_err"]) - test_ref),
                    )
                    rows.append(row)
                    log(
                        " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                        flush=True,
                    )
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="small", choices=("small", "medium"))
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.001, 10.0])
    ap.add_argument("--rtols", type=float, nargs="*", default=[1e-3])
    ap.add_argument("--accuracies", type=float, nargs="*", default=[])
    ap.add_argument("--solvers", nargs="+", default=["bosh3", "rkc2"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = run(args.problem, args.alphas, args.rtols, args.accuracies, args.solvers)
    write_json(dict(args=vars(args), rows=rows, machine=machine(), load_average_1min_at_end=loadavg()), args.json)


if __name__ == "__main__":
    main()
