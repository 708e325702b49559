"""Ladders of single solves against the float64 references of benchmarks/accuracy.py: the data that sized
`flow.accuracy`'s rule, and that any rule can be replayed on without solving again.

For each case of a set (benchmarks/accuracy.py), gflow solves at rtol = 0.02·2^−j (j = 0 … `--rungs` − 1,
floor off on the margins, as accuracy mode runs), and records per rung t_η, the state error, the steps and
θ(t_η) itself (npz), so that a rule's estimates (differences between rungs) and outcomes (true errors) can be
computed offline (`replay`).

    python -m benchmarks.studies.accuracy_ladder --set calibration --atol 1e-14 --out PATH.npz   # solve (minutes)
    python -m benchmarks.studies.accuracy_ladder --replay PATH.npz [--json OUT]                 # rank the rules

How the rule was chosen: `--replay` ranks a grid of rules (first rtol K·ε, the next ρ times tighter, the
estimate f × the distance between the last two solves, acceptance at est ≤ S·ε, then rtol·clip(S²ε/est,
0.05, 0.5)) by how many cases meet the contract at ε = 1e-2 and 1e-3, then by their summed steps, against
the envelope oracle: per case, the loosest rung such that it and every tighter rung meet both errors.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.accuracy import CALIBRATION, CHECK, HELDOUT, _flat, config, reference, state_err  # noqa: E402
from benchmarks.common import write_json  # noqa: E402

SETS = {"calibration": CALIBRATION, "check": CHECK, "heldout": HELDOUT}


def ladder(cases, rungs=12, log=print, **flow):
    out = []
    for n, d, h, ds in cases["shapes"]:
        for eta in cases["etas"]:
            for alpha in cases["alphas"]:
                t0 = time.perf_counter()
                cfg_of = lambda **fl: config(n, d, h, ds, eta, **fl)  # noqa: E731
                t_ref, t_ref_err, th_ref, th_ref_err, th0 = reference(cfg_of, alpha)
                if t_ref is None:
                    log(f"n={n} d={d} h={h} η={eta:g} α={alpha:g}: no reference, skipped")
                    continue
                rows = []
                for j in range(rungs):
                    rtol = 0.02 * 2.0**-j
                    r = gflow.simulate(init_scale=alpha, config=cfg_of(rtol=rtol, floor_margins=False, **flow))
                    th = _flat(r.params)
                    rows.append(
                        dict(
                            rtol=rtol,
                            t=float(r.t_stop),
                            theta=th,
                            steps=int(r.n_steps),
                            ok=gflow.STATUS_NAMES[int(r.status)] in ("reached_target", "reached_target_unrefined"),
                            t_err=abs(float(r.t_stop) / t_ref - 1),
                            theta_err=state_err(th, th_ref, th0),
                        )
                    )
                out.append(
                    dict(
                        case=(n, d, h, ds, eta, alpha),
                        t_ref=t_ref,
                        t_ref_err=t_ref_err,
                        theta_ref_err=th_ref_err,
                        theta0=th0,
                        rungs=rows,
                    )
                )
                log(
                    f"n={n} d={d} h={h} η={eta:g} α={alpha:g}: "
                    + " ".join(f"{r['t_err']:.0e}/{r['theta_err']:.0e}" for r in rows)
                    + f" [{time.perf_counter() - t0:.0f} s]",
                    flush=True,
                )
    return out


def save(out, path):
    np.savez_compressed(
        path,
        cases=np.array([o["case"] for o in out], float),
        t_ref=np.array([o["t_ref"] for o in out]),
        t_ref_err=np.array([o["t_ref_err"] for o in out]),
        theta_ref_err=np.array([o["theta_ref_err"] for o in out]),
        rtol=np.array([[r["rtol"] for r in o["rungs"]] for o in out]),
        t=np.array([[r["t"] for r in o["rungs"]] for o in out]),
        steps=np.array([[r["steps"] for r in o["rungs"]] for o in out]),
        ok=np.array([[r["ok"] for r in o["rungs"]] for o in out]),
        t_err=np.array([[r["t_err"] for r in o["rungs"]] for o in out]),
        theta_err=np.array([[r["theta_err"] for r in o["rungs"]] for o in out]),
        # pairwise state distances between rungs, relative to ‖θ_j − θ(0)‖: what a rule can see
        theta_dist=np.array(
            [
                [
                    [
                        np.linalg.norm(a["theta"] - b["theta"]) / np.linalg.norm(a["theta"] - o["theta0"])
                        for b in o["rungs"]
                    ]
                    for a in o["rungs"]
                ]
                for o in out
            ]
        ),
    )


def _rung(rtol, n_rungs):
    """The ladder index of `rtol` (0.02·2^−j) and whether it lies past the ladder's end."""
    j = round(math.log2(0.02 / rtol))
    return int(min(max(j, 0), n_rungs - 1)), j > n_rungs - 1


def envelope_oracle(t_err, theta_err, eps):
    """The loosest rung such that it and every tighter rung meet both errors (None: none does)."""
    good = (t_err <= eps) & (theta_err <= eps)
    return next((j for j in range(len(good)) if good[j:].all()), None)


def replay_rule(z, c, eps, K, rho, f, S, max_solves=6, min_shrink=0.05):
    """One case under one rule: (accepted rung, summed steps, solves, off the ladder?)."""
    J = z["rtol"].shape[1]
    prev, _ = _rung(K * eps, J)
    cost, n = z["steps"][c, prev], 1
    j, beyond = _rung(K * eps * rho, J)
    while True:
        if beyond or j == prev:
            return j, cost, n, True
        cost, n = cost + z["steps"][c, j], n + 1
        r = z["rtol"][c, j] / z["rtol"][c, prev]
        fac = r / (1 - r) if f == "order1" else f
        est = max(abs(z["t"][c, j] - z["t"][c, prev]) / z["t"][c, j], z["theta_dist"][c, j, prev]) * fac
        if est <= S * eps or n >= max_solves:
            return j, cost, n, False
        prev, (j, beyond) = j, _rung(z["rtol"][c, j] * min(max(S**2 * eps / est, min_shrink), 0.5), J)


def replay(path, levels=(1e-2, 1e-3)):
    """Every rule of the grid on a stored ladder: met cases and summed steps against the envelope oracle."""
    z = dict(np.load(path))
    out = {}
    for eps in levels:
        cases = [c for c in range(len(z["t"])) if envelope_oracle(z["t_err"][c], z["theta_err"][c], eps) is not None]
        oracle = int(sum(z["steps"][c, envelope_oracle(z["t_err"][c], z["theta_err"][c], eps)] for c in cases))
        rules = []
        for K, rho, f, S in itertools.product((1, 0.5, 0.25, 0.1, 0.05), (0.25, 0.5), ("order1", 1.0, 0.5), (0.5, 1.0)):
            runs = [replay_rule(z, c, eps, K, rho, f, S) for c in cases]
            if any(b for *_, b in runs):
                continue  # leaves the ladder: not judged
            met = sum(bool(z["t_err"][c, j] <= eps and z["theta_err"][c, j] <= eps) for c, (j, *_) in zip(cases, runs))
            steps = int(sum(r[1] for r in runs))
            rules.append(
                dict(
                    K=K,
                    rho=rho,
                    f=f,
                    S=S,
                    met=met,
                    steps=steps,
                    over_oracle=steps / oracle,
                    solves=float(np.mean([r[2] for r in runs])),
                )
            )
        rules.sort(key=lambda r: (-r["met"], r["steps"]))
        out[f"{eps:g}"] = dict(cases=len(cases), oracle_steps=oracle, rules=rules)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=tuple(SETS), default="calibration")
    ap.add_argument("--rungs", type=int, default=12)
    ap.add_argument("--out", default=None)
    ap.add_argument("--replay", default=None, help="rank the rules on a stored ladder (.npz) instead of solving")
    ap.add_argument("--json", default=None)
    ap.add_argument("--atol", type=float, default=None, help="flow.atol of the rungs (default: rtol × rms(θ(0)))")
    a = ap.parse_args(argv)
    if a.replay:
        res = replay(a.replay)
        for eps, r in res.items():
            print(f"ε = {eps}: {r['cases']} cases, envelope oracle {r['oracle_steps']} steps")
            for rule in r["rules"][:8]:
                print(
                    "  met {met}/{n}  K={K} ρ={rho} f={f} S={S}: {over_oracle:.2f}× the oracle's steps, "
                    "{solves:.1f} solves a run".format(n=r["cases"], **rule)
                )
        if a.json:
            write_json(res, a.json)
        return res
    save(ladder(SETS[a.set], a.rungs, **({} if a.atol is None else {"atol": a.atol})), a.out)


if __name__ == "__main__":
    main()
