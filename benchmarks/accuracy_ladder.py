"""Ladders of single solves against the float64 references of benchmarks/accuracy.py: the data that sized
`flow.accuracy`'s rule, and that any rule can be replayed on without solving again.

For each case of a set (benchmarks/accuracy.py), gflow solves at rtol = 0.02·2^−j (j = 0 … `--rungs` − 1,
floor off on the margins, as accuracy mode runs), and records per rung t_η, the state error, the steps and
θ(t_η) itself (npz), so that a rule's estimates (differences between rungs) and outcomes (true errors) can be
computed offline (`replay`).

    python -m benchmarks.accuracy_ladder --set calibration --out PATH.npz
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.accuracy import CALIBRATION, CHECK, HELDOUT, _flat, config, reference, state_err  # noqa: E402

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
                    rows.append(dict(rtol=rtol, t=float(r.t_stop), theta=th, steps=int(r.n_steps),
                                     ok=gflow.STATUS_NAMES[int(r.status)] in ("reached_target", "reached_target_unrefined"),
                                     t_err=abs(float(r.t_stop) / t_ref - 1), theta_err=state_err(th, th_ref, th0)))
                out.append(dict(case=(n, d, h, ds, eta, alpha), t_ref=t_ref, t_ref_err=t_ref_err, theta_ref_err=th_ref_err,
                                theta0=th0, rungs=rows))
                log(f"n={n} d={d} h={h} η={eta:g} α={alpha:g}: " + " ".join(f"{r['t_err']:.0e}/{r['theta_err']:.0e}" for r in rows)
                    + f" [{time.perf_counter() - t0:.0f} s]", flush=True)
    return out


def save(out, path):
    np.savez_compressed(path, cases=np.array([o["case"] for o in out], float),
                        t_ref=np.array([o["t_ref"] for o in out]), t_ref_err=np.array([o["t_ref_err"] for o in out]),
                        theta_ref_err=np.array([o["theta_ref_err"] for o in out]),
                        rtol=np.array([[r["rtol"] for r in o["rungs"]] for o in out]),
                        t=np.array([[r["t"] for r in o["rungs"]] for o in out]),
                        steps=np.array([[r["steps"] for r in o["rungs"]] for o in out]),
                        ok=np.array([[r["ok"] for r in o["rungs"]] for o in out]),
                        t_err=np.array([[r["t_err"] for r in o["rungs"]] for o in out]),
                        theta_err=np.array([[r["theta_err"] for r in o["rungs"]] for o in out]),
                        # pairwise state distances between rungs, relative to ‖θ_j − θ(0)‖: what a rule can see
                        theta_dist=np.array([[[np.linalg.norm(a["theta"] - b["theta"]) / np.linalg.norm(a["theta"] - o["theta0"])
                                               for b in o["rungs"]] for a in o["rungs"]] for o in out]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=tuple(SETS), default="calibration")
    ap.add_argument("--rungs", type=int, default=12)
    ap.add_argument("--out", required=True)
    ap.add_argument("--atol", type=float, default=None, help="flow.atol of the rungs (default: rtol × rms(θ(0)))")
    a = ap.parse_args(argv)
    save(ladder(SETS[a.set], a.rungs, **({} if a.atol is None else {'atol': a.atol})), a.out)


if __name__ == "__main__":
    main()
