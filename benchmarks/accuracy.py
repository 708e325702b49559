"""Calibration and check of `flow.accuracy`: the contract each run promises, on t_η and on θ(t_η).

A run at `flow.accuracy = ε` meets its contract when |t_η − t_ref|/t_ref ≤ ε and
‖θ(t_η) − θ_ref‖ ≤ ε·‖θ_ref − θ(0)‖. For each case (shape n, d, h; α; η; seed 0) the float64 reference
(t_ref, θ_ref) is computed with gflow itself at fixed tight tolerances, without the margin floor: two
solves at rtol `REF_RTOL` and `REF_RTOL`/√10, Richardson-extrapolated for a first-order error
(x_ref = x₂ + (x₂ − x₁)·ρ/(1 − ρ), ρ = 1/√10, for x = t_η and x = θ(t_η)); the reference's own errors are
taken as the corrections it applied. Then every case is run in `flow.accuracy` mode (float64) at each
requested accuracy, and the table reports both true relative errors, the run's own estimates
(`t_err_est`, `theta_err_est`), the rtol it settled on, the solves and the steps.

- The calibration set (`CALIBRATION`) sized the constants of `gflow.twolayer.flow._tighten`.
- The check set (`CHECK`: other shapes, data seeds, η and α) then caught a flaw (acceptance after 3
  solves), so it shaped the rule too; `HELDOUT` (other shapes, seeds, η, α again) was used for nothing
  but the final check, and `--set stored` checks the benchmarks' small problem against the stored
  ladders of `benchmarks/data/reference.json`.

    python -m benchmarks.accuracy [--set calibration|check|heldout|stored] [--levels 1e-2 1e-3] [--json PATH]
                                  [--error-norm margins|loss] [--quick]
"""

from __future__ import annotations

import json
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.cli import parser  # noqa: E402
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig  # noqa: E402

REF_RTOL = 1e-5
# (n, d, h, data seed) × α × η, seed 0
CALIBRATION = dict(
    shapes=((20, 50, 20, 0), (40, 30, 10, 0), (10, 100, 50, 0)), alphas=(1e-5, 1e-3, 1e-1, 1.0, 10.0), etas=(1e-2, 1e-3)
)
# used once to check the first rule (accepting after 3 solves); it failed 3 of 52 cases (all accepted
# after 3 solves, up to 2.0× the accuracy), which set _ACC_MIN_SOLVES = 4
CHECK = dict(shapes=((30, 80, 40, 3), (60, 20, 30, 5)), alphas=(3e-5, 3e-3, 0.3, 3.0, 30.0), etas=(3e-2, 3e-3, 3e-4))
# held out from both: the check of the rule as shipped
HELDOUT = dict(
    shapes=((25, 40, 60, 7), (80, 120, 16, 11)), alphas=(2e-4, 2e-2, 0.5, 2.0, 20.0), etas=(2e-2, 5e-3, 5e-4)
)
# --quick: the smoke test of the check (a calibration shape, so it checks nothing new)
QUICK = dict(shapes=((20, 50, 20, 0),), alphas=(1e-3, 1.0), etas=(1e-2,))


def config(n, d, h, data_seed, eta, **flow) -> Config:
    return Config(
        data=DataConfig(n=n, d=d, n_test=200, seed=data_seed),
        model=ModelConfig(width=h),
        flow=FlowConfig(dtype="float64", target_loss=eta, max_steps=1_000_000, **flow),
    )


def _flat(params):
    return np.concatenate([np.asarray(params.W, np.float64).ravel(), np.asarray(params.a, np.float64)])


def state_err(theta, theta_ref, theta0):
    """‖θ − θ_ref‖ / ‖θ_ref − θ(0)‖ (flat float64 vectors)."""
    return float(np.linalg.norm(theta - theta_ref) / np.linalg.norm(theta_ref - theta0))


def reference(cfg_of, alpha):
    """(t_ref, its error, θ_ref, its error, θ(0)) or Nones when a reference solve does not reach η."""
    ts, thetas = [], []
    for rtol in (REF_RTOL, REF_RTOL / math.sqrt(10)):
        r = gflow.simulate(init_scale=alpha, config=cfg_of(rtol=rtol, floor_margins=False))
        if gflow.STATUS_NAMES[int(r.status)] != "reached_target":
            return None, None, None, None, None
        ts.append(float(r.t_stop))
        thetas.append(_flat(r.params))
    f = (1 / math.sqrt(10)) / (1 - 1 / math.sqrt(10))
    t_ref = ts[1] + (ts[1] - ts[0]) * f
    theta_ref = thetas[1] + (thetas[1] - thetas[0]) * f
    theta0 = _flat(
        gflow.twolayer.model.init_params(
            key=gflow.twolayer.model.init_key(0),
            d=r.params.W.shape[1],
            width=r.params.W.shape[0],
            init_scale=alpha,
            dtype=np.float64,
        )
    )
    return t_ref, abs(ts[1] / t_ref - 1), theta_ref, state_err(thetas[1], theta_ref, theta0), theta0


def run_cases(cases, levels, log=print, error_norm="margins"):
    rows = []
    for n, d, h, ds in cases["shapes"]:
        for eta in cases["etas"]:
            for alpha in cases["alphas"]:
                cfg_of = lambda **fl: config(n, d, h, ds, eta, **fl)  # noqa: E731
                t0 = time.perf_counter()
                t_ref, ref_err, theta_ref, theta_ref_err, theta0 = reference(cfg_of, alpha)
                if t_ref is None:
                    log(f"n={n} d={d} h={h} η={eta:g} α={alpha:g}: no reference (status), skipped")
                    continue
                for acc in levels:
                    r = gflow.simulate(init_scale=alpha, config=cfg_of(accuracy=acc, error_norm=error_norm))
                    row = dict(
                        n=n,
                        d=d,
                        h=h,
                        data_seed=ds,
                        eta=eta,
                        alpha=alpha,
                        accuracy=acc,
                        t_ref=t_ref,
                        ref_err=ref_err,
                        theta_ref_err=theta_ref_err,
                        status=gflow.STATUS_NAMES[int(r.status)],
                        t_stop=float(r.t_stop),
                        err=abs(float(r.t_stop) / t_ref - 1),
                        est=float(r.t_err_est),
                        theta_err=state_err(_flat(r.params), theta_ref, theta0),
                        theta_est=float(r.theta_err_est),
                        rtol=float(r.rtol),
                        solves=int(r.n_solves),
                        steps=int(r.n_steps),
                    )
                    rows.append(row)
                    log(
                        f"n={n} d={d} h={h} η={eta:g} α={alpha:g} acc={acc:g}: t err {row['err']:.2e} est {row['est']:.2e} | "
                        f"θ err {row['theta_err']:.2e} est {row['theta_est']:.2e} (ref ±{ref_err:.1e}/{theta_ref_err:.1e}) "
                        f"rtol {row['rtol']:.2e} solves {row['solves']} steps {row['steps']} [{time.perf_counter() - t0:.1f} s]",
                        flush=True,
                    )
    return rows


def stored_cases(levels, log=print, error_norm="margins"):
    """The benchmarks' small problem, against the stored float64 ladders of benchmarks/data/reference.json."""
    from benchmarks.common import problem_config
    from benchmarks.reference import REF_FILE

    refs = json.loads(REF_FILE.read_text())
    rows = []
    for eta in (1e-2, 1e-3):
        ref = refs[f"small/eta={eta:g}"]
        for alpha, t_ref in zip(ref["alphas"], ref["t_stop"]):
            t_ref = t_ref[0] if isinstance(t_ref, list) else t_ref
            if t_ref is None:
                continue
            for acc in levels:
                base = problem_config("small", target_loss=eta, dtype="float64")
                cfg = Config(
                    data=base.data,
                    model=base.model,
                    flow=FlowConfig(
                        dtype="float64", target_loss=eta, accuracy=acc, max_steps=1_000_000, error_norm=error_norm
                    ),
                )
                r = gflow.simulate(init_scale=alpha, config=cfg)
                row = dict(
                    problem="small",
                    eta=eta,
                    alpha=alpha,
                    accuracy=acc,
                    t_ref=t_ref,
                    status=gflow.STATUS_NAMES[int(r.status)],
                    err=abs(float(r.t_stop) / t_ref - 1),
                    est=float(r.t_err_est),
                    rtol=float(r.rtol),
                    solves=int(r.n_solves),
                    steps=int(r.n_steps),
                )
                rows.append(row)
                log(
                    f"small η={eta:g} α={alpha:g} acc={acc:g}: err {row['err']:.2e} est {row['est']:.2e} rtol {row['rtol']:.2e} "
                    f"solves {row['solves']} steps {row['steps']}",
                    flush=True,
                )
    return rows


def summarize(rows) -> dict:
    out = {}
    for acc in sorted({r["accuracy"] for r in rows}):
        sel = [r for r in rows if r["accuracy"] == acc]
        worst = max(sel, key=lambda r: r["err"])
        out[f"{acc:g}"] = dict(
            cases=len(sel),
            met_t=sum(r["err"] <= acc for r in sel),
            max_err=worst["err"],
            max_err_over_accuracy=worst["err"] / acc,
            est_below_err=sum(r["est"] < r["err"] for r in sel),
            steps=sum(r["steps"] for r in sel),
            solves=sum(r["solves"] for r in sel),
        )
        if all("theta_err" in r for r in sel):
            out[f"{acc:g}"].update(
                met_theta=sum(r["theta_err"] <= acc for r in sel),
                met_both=sum(r["err"] <= acc and r["theta_err"] <= acc for r in sel),
                max_theta_err_over_accuracy=max(r["theta_err"] for r in sel) / acc,
                theta_est_below_err=sum(r["theta_est"] < r["theta_err"] for r in sel),
            )
    return out


def main(argv=None):
    ap = parser(__doc__, quick="the smoke set (one tiny shape, 2 α, one η) at level 1e-2")
    ap.add_argument("--set", choices=("calibration", "check", "heldout", "stored"), default="check")
    ap.add_argument("--levels", type=float, nargs="+", default=[1e-2, 1e-3])
    ap.add_argument(
        "--error-norm", default="margins", choices=("margins", "loss"), help="flow.error_norm of the checked runs"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.set, args.levels = "quick", [1e-2]
    t0 = time.perf_counter()
    if args.set == "stored":
        rows = stored_cases(args.levels, error_norm=args.error_norm)
    else:
        rows = run_cases(
            {"calibration": CALIBRATION, "check": CHECK, "heldout": HELDOUT, "quick": QUICK}[args.set],
            args.levels,
            error_norm=args.error_norm,
        )
    res = dict(
        set=args.set,
        levels=args.levels,
        error_norm=args.error_norm,
        summary=summarize(rows),
        rows=rows,
        wall_s=time.perf_counter() - t0,
    )
    print(json.dumps(res["summary"], indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
