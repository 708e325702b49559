"""Fair contenders at matched accuracy: gflow at `flow.accuracy` against tuned and self-verifying GD.

For one problem, one η and the α of its accuracy subset (seed 0, float64), against the stored float64
reference t_η (benchmarks/reference.json; computed on the fly for --quick's tiny problem), at each
level L (relative error of t_η):
- **oracle-tuned GD** (numpy, one BLAS thread; and jitted JAX): for each α the largest learning rate of
  the ladder lr₀·2^−k whose t_η is within L of the reference. The search is not charged: a lower
  bound for any GD with one lr per α (within the ladder's factor 2). Timed per α (no lane waste),
  summed over the α.
- **self-verifying GD** (jitted JAX), charged in full: what a researcher without a reference does:
  run lr₀, lr₀/2, lr₀/4, … and stop at the first lr/2 whose t_η agrees with lr's to L; its result is
  the lr/2 run. The wall is every run it took.
- **gflow** at `flow.accuracy = L`: one `run_sweep` over the α, one lane per compiled call
  (`sweep.batch_lanes = 1`: α by α, like the GD contenders; compiled before timing).
Speed is the summed wall of the α's runs (median of `repeats` timings, after compilation); test
error at the stop is reported against the reference's. GD's t_η interpolates log L over the last step
(benchmarks/gd.py).

    python -m benchmarks.fair --problem small --eta 1e-2 --levels 1e-2 1e-3 1e-4 [--json PATH]
    python -m benchmarks.fair --quick    # tiny problem, seconds of compute: the smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks import reference as refmod  # noqa: E402
from benchmarks.common import SWEEP_SCALES, blas_threads, loadavg, machine, problem_config, timed, write_json  # noqa: E402
from benchmarks.gd import LR0, MAX_HALVINGS, dataset_numpy, init, jax_gd_sweep, numpy_gd, rel_err  # noqa: E402
from gflow.twolayer.config import Config, FlowConfig, SweepConfig  # noqa: E402


def load_reference(problem, eta, alphas=None, log=print):
    if problem == "tiny":
        alphas = alphas or refmod.accuracy_subset(SWEEP_SCALES, "tiny")
        return refmod.compute(problem, eta, alphas=alphas, log=log)
    ref = refmod.load()[refmod.key(problem, eta)]
    keep = [i for i, t in enumerate(ref["t_stop"]) if t is not None and (alphas is None or ref["alphas"][i] in alphas)]
    return {k: [ref[k][i] for i in keep] for k in ("alphas", "t_stop", "test_err", "rel_err_estimate")}


def setup(problem, eta, alphas):
    cfg = problem_config(problem, target_loss=eta, dtype="float64", n_seeds=1, init_scales=tuple(alphas))
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    return cfg, data


def gd_ladder(cfg, data, alphas, t_ref, finest):
    """JAX GD at lr₀·2^−k for every α (vmapped, one lr per lane) until each α is within `finest`."""
    lr = np.full(len(alphas), LR0)
    ladder = [[] for _ in alphas]  # per α: (lr, t, test_err)
    active = np.ones(len(alphas), bool)
    for _ in range(MAX_HALVINGS):
        r = jax_gd_sweep(alphas, [0] * len(alphas), data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss,
                         max_iters=10**7)
        for i in np.flatnonzero(active):
            ladder[i].append((float(lr[i]), float(r.t_stop[i]) if r.reached[i] else math.inf, float(r.test_err[i])))
            if rel_err(ladder[i][-1][1], t_ref[i]) <= finest:
                active[i] = False
        if not active.any():
            break
        lr = np.where(active, lr / 2, lr)
    return ladder


def oracle_lrs(ladder, t_ref, level):
    """Per α, the largest lr of the ladder within `level` of the reference (None: none)."""
    out = []
    for runs, tr in zip(ladder, t_ref):
        ok = [lr for lr, t, _ in runs if rel_err(t, tr) <= level]
        out.append(max(ok) if ok else None)
    return out


def time_jax_gd(cfg, data, alphas, lrs, repeats):
    """Summed wall of one-lane JAX GD runs, one per α at its lr (compiled before)."""
    walls, results = [], []
    for a, lr in zip(alphas, lrs):
        fn = lambda: jax_gd_sweep([a], [0], data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss)  # noqa: E731
        jax_gd_sweep([a], [0], data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss, max_iters=1)  # compile (max_iters is traced)
        w, r = timed(fn, repeats=repeats)
        walls.append(w)
        results.append(r)
    return sum(walls), [float(r.t_stop[0]) for r in results], [int(r.iters[0]) for r in results], [float(r.test_err[0]) for r in results]


def time_numpy_gd(cfg, data, alphas, lrs, repeats):
    x, y, xt, yt = dataset_numpy(data)
    wall, ts, iters, errs = 0.0, [], [], []
    with blas_threads(1):
        for a, lr in zip(alphas, lrs):
            W, av = init(a, 0, cfg.data.d, cfg.model.width)
            w, r = timed(numpy_gd, W, av, x, y, xt, yt, lr=lr, eta=cfg.flow.target_loss, repeats=repeats)
            wall += w
            ts.append(r.t_stop)
            iters.append(r.iters)
            errs.append(r.test_err)
    return wall, ts, iters, errs


def self_verifying_gd(cfg, data, alphas, level):
    """Halve lr from LR0 until t_η(lr/2) agrees with t_η(lr) to `level`; every run's wall is charged."""
    t_out, lr_out, iters, errs, wall = [], [], [], [], 0.0
    for a in alphas:
        run = lambda lr: jax_gd_sweep([a], [0], data, width=cfg.model.width, lr=lr, eta=cfg.flow.target_loss)  # noqa: E731
        jax_gd_sweep([a], [0], data, width=cfg.model.width, lr=LR0, eta=cfg.flow.target_loss, max_iters=1)  # compile (lr, max_iters traced)
        t0 = time.perf_counter()
        lr, prev, n_it = LR0, run(LR0), 0
        n_it += int(prev.iters[0])
        for _ in range(MAX_HALVINGS):
            cur = run(lr / 2)
            n_it += int(cur.iters[0])
            tp, tc = float(prev.t_stop[0]), float(cur.t_stop[0])
            if prev.reached[0] and cur.reached[0] and abs(tp / tc - 1) <= level:
                break
            lr, prev = lr / 2, cur
        wall += time.perf_counter() - t0
        t_out.append(float(cur.t_stop[0]))
        lr_out.append(lr / 2)
        iters.append(n_it)
        errs.append(float(cur.test_err[0]))
    return wall, t_out, lr_out, iters, errs


def gflow_at(cfg, data, alphas, level, repeats):
    flow = FlowConfig(**{**cfg.flow.__dict__, "accuracy": level, "max_steps": 10**6})
    # one lane per compiled call, α by α like the GD contenders (no lane waste; measured: 1.03 s against
    # 1.69 s with the default batch of 2 lanes on the small problem at level 1e-2)
    c = Config(data=cfg.data, model=cfg.model, flow=flow, sweep=SweepConfig(init_scales=tuple(alphas), n_seeds=1, batch_lanes=1))
    # compile on a loose accuracy: the value is traced (static_flow), so this is the timed program, without
    # the timed run's cost (a full warm-up run doubled the medium problem's wall)
    gflow.run_sweep(dataclasses.replace(c, flow=dataclasses.replace(flow, accuracy=max(level, 0.1))), data=data, progress=False)
    wall, res = timed(gflow.run_sweep, c, data=data, progress=False, repeats=repeats)
    a = res.arrays
    return (wall, a["t_stop"][:, 0].tolist(), a["n_steps"][:, 0].tolist(), a["final_test_err"][:, 0].tolist(),
            a["t_err_est"][:, 0].tolist(), [gflow.STATUS_NAMES[int(s)] for s in a["status"][:, 0]])


def run(problem, eta, levels, repeats, alphas=None, log=print):
    ref = load_reference(problem, eta, alphas, log=log)
    alphas, t_ref, e_ref = ref["alphas"], ref["t_stop"], ref["test_err"]
    levels = [lv for lv in levels if lv >= 3 * max(ref["rel_err_estimate"])]  # resolvable by the reference
    cfg, data = setup(problem, eta, alphas)
    log(f"{problem} η={eta:g}: α={['%.3g' % a for a in alphas]} levels={levels}")
    ladder = gd_ladder(cfg, data, alphas, t_ref, min(levels))
    out = {"problem": problem, "eta": eta, "alphas": alphas, "t_ref": t_ref, "test_err_ref": e_ref, "levels": {}}
    for lv in levels:
        row = {}
        lrs = oracle_lrs(ladder, t_ref, lv)
        if None in lrs:
            row["oracle"] = None
        else:
            w, t, it, te = time_jax_gd(cfg, data, alphas, lrs, repeats)
            row["oracle_jax_gd"] = dict(wall_s=w, lr=lrs, iters=it, t_rel_err=[rel_err(a, b) for a, b in zip(t, t_ref)],
                                        test_err=te)
            w, t, it, te = time_numpy_gd(cfg, data, alphas, lrs, repeats)
            row["oracle_numpy_gd"] = dict(wall_s=w, lr=lrs, iters=it, t_rel_err=[rel_err(a, b) for a, b in zip(t, t_ref)],
                                          test_err=te)
        w, t, lrs_sv, it, te = self_verifying_gd(cfg, data, alphas, lv)
        row["self_verifying_jax_gd"] = dict(wall_s=w, lr=lrs_sv, iters=it, t_rel_err=[rel_err(a, b) for a, b in zip(t, t_ref)],
                                            test_err=te)
        w, t, steps, te, est, st = gflow_at(cfg, data, alphas, lv, repeats)
        row["gflow"] = dict(wall_s=w, steps=steps, t_rel_err=[rel_err(a, b) for a, b in zip(t, t_ref)], t_err_est=est,
                            statuses=st, test_err=te)
        for name, r in row.items():
            if r is not None:
                r["t_rel_err_max"] = max(r["t_rel_err"])
                r["met"] = r["t_rel_err_max"] <= lv
                r["test_err_abs_diff_max"] = max(abs(a - b) for a, b in zip(r["test_err"], e_ref))
        g = row["gflow"]["wall_s"]
        row["ratios"] = {f"gflow_vs_{k}": r["wall_s"] / g for k, r in row.items() if k != "gflow" and r is not None}
        row["load"] = loadavg()
        out["levels"][f"{lv:g}"] = row
        log(f"  L={lv:g}: " + ", ".join(f"{k} {r['wall_s']:.3g} s (max err {r['t_rel_err_max']:.1e})"
                                       for k, r in row.items() if isinstance(r, dict) and "wall_s" in r)
            + " | " + ", ".join(f"{k} {v:.2f}×" for k, v in row["ratios"].items()))
    return out


def table(results) -> str:
    lines = ["| problem | η | level | gflow (accuracy = level) | oracle JAX GD | oracle numpy GD | self-verifying JAX GD | "
             "gflow speed-up vs oracle JAX / numpy / self-verifying |", "|---|---|---|---|---|---|---|---|"]
    for res in results:
        for lv, row in res["levels"].items():
            def cell(k):
                r = row.get(k)
                return "–" if r is None else f"{r['wall_s']:.3g} s (err {r['t_rel_err_max']:.1e})"
            rat = row["ratios"]
            lines.append(f"| {res['problem']} | {res['eta']:g} | {lv} | {cell('gflow')} | {cell('oracle_jax_gd')} | "
                         f"{cell('oracle_numpy_gd')} | {cell('self_verifying_jax_gd')} | "
                         + " / ".join(f"{rat[k]:.2f}×" if k in rat else "–" for k in
                                      ("gflow_vs_oracle_jax_gd", "gflow_vs_oracle_numpy_gd", "gflow_vs_self_verifying_jax_gd"))
                         + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="small", choices=("tiny", "small", "medium"))
    ap.add_argument("--eta", type=float, nargs="+", default=[1e-2])
    ap.add_argument("--levels", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    ap.add_argument("--alphas", type=float, nargs="+", default=None, help="a subset of the reference's α")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny problem, levels 1e-2 and 1e-3, 1 repeat")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.problem, args.levels, args.repeats, args.eta = "tiny", [1e-2, 1e-3], 1, [1e-2]
    t0 = time.perf_counter()
    results = [run(args.problem, eta, args.levels, args.repeats, alphas=args.alphas) for eta in args.eta]
    res = {"results": results, "table": table(results), "wall_s": time.perf_counter() - t0, "machine": machine()}
    print(res["table"])
    write_json(res, args.json)
    return res


if __name__ == "__main__":
    main()
