"""The suite's verdicts, from its measurements: pure functions of dicts and lists (no JAX, no timing).

Matched accuracy (the rules of `python -m benchmarks`): a contender meets level L when
|t_η/t_ref − 1| ≤ L for every α of the accuracy subset. For gflow and scipy the loosest rtol of the
ladder meeting L is taken; for the GD loops the largest learning rate. GD learning rates too small
to run are predicted from GD's first-order error (err ∝ lr, fitted at the smallest lr measured) and
their wall times extrapolated from the measured per-iteration times (marked `measured: False`).
`targets` says which of issue 4's targets a results dict meets.
"""

from __future__ import annotations

import math

from benchmarks import reference as refmod

LEVELS = (1e-2, 1e-3)
# the settings each contender is judged over (measure.py runs them)
GFLOW_RTOLS = refmod.RUNGS  # gflow's accuracy is read off the reference ladder's own (looser) rungs
SCIPY_RTOLS = (1e-3, 1e-4, 1e-5)
GD_LRS = (0.1, 0.03, 0.01, 0.003, 0.001, 3e-4)
BOSH3_EVALS_PER_STEP = 3  # new vector-field evaluations a Bosh3 step (FSAL)


def rel_errs(t, t_ref):
    """|t/t_ref − 1| per α; a run that did not stop (None or non-finite t) counts as inf."""
    return [abs(a / b - 1) if (a is not None and math.isfinite(a)) else math.inf for a, b in zip(t, t_ref)]


def subset_reference(ref, alphas):
    """The stored reference restricted to `alphas` (a subset of its own α)."""
    idx = [ref["alphas"].index(a) for a in alphas]
    out = dict(ref)
    for k in ("alphas", "t_stop", "test_err", "rel_err_estimate", "runs"):
        out[k] = [ref[k][i] for i in idx]
    out["rel_err_estimate_max"] = max(out["rel_err_estimate"])
    return out


def gflow_accuracy(ref, rtols=GFLOW_RTOLS, levels=LEVELS):
    """gflow (float64 Bosh3, default tolerance floor) at each rung of the reference ladder: (rows, chosen).

    The error of a rung looser than an α's reference rung is measured against it; at the reference
    rung or tighter (floor on) it is bounded by the reference's own error estimate ("bounded").
    `chosen[f"{L:g}"]` is the loosest rtol meeting level L, or None."""
    rows = []
    for rtol in rtols:
        t, e, steps, errs, bounded = [], [], [], [], False
        for run, t_ref in zip(ref["runs"], ref["t_stop"]):
            rungs = {r["rtol"]: r for r in run["variants"].get("floor_on", [])}
            if rtol not in rungs:
                break
            if rtol <= run["rtol"] and run["variant"] == "floor_on":
                errs.append(run["rel_err_estimate"])
                bounded = True
            else:
                errs.append(abs(rungs[rtol]["t_stop"] / t_ref - 1))
            t.append(rungs[rtol]["t_stop"])
            e.append(rungs[rtol]["test_err"])
            steps.append(rungs[rtol]["n_steps"])
        if len(t) < len(ref["runs"]):
            break
        rows.append(
            {
                "rtol": rtol,
                "t_rel_err": errs,
                "t_rel_err_max": max(errs),
                "steps": steps,
                "bounded_by_reference": bounded,
                "test_err_abs_diff_max": max(abs(a - b) for a, b in zip(e, ref["test_err"])),
            }
        )
    return rows, {f"{lv:g}": _first(rows, lv, lambda r: r["rtol"]) for lv in levels}


def gflow_timed_errors(timed, ladder_row, ref) -> dict:
    """The accuracy of a timed gflow sweep: the ladder's error at its rtol (measured, or bounded by the
    reference's estimate at its own rung), and the timed sweep's own t_η against the reference."""
    return {
        "t_rel_err_max_timed_vs_ref": max(rel_errs(timed["t_stop"], ref["t_stop"])),
        "t_rel_err_max": ladder_row["t_rel_err_max"],
        "bounded_by_reference": ladder_row["bounded_by_reference"],
    }


def gd_choice(rows, t_ref, jax_per_iter, numpy_per_iter, levels=LEVELS):
    """GD's learning rate for each level: (chosen, lr_predicted_by_fit_at).

    `rows` are the learning rates run, largest first, each with its `t_rel_err_max`. The largest
    lr meeting a level is taken as measured; otherwise the lr is predicted from err ∝ lr at the
    smallest lr with a finite nonzero error, its iterations are ⌈t_ref/lr⌉ per α and the JAX wall
    is its per-iteration time × the slowest lane's iterations. numpy's wall is always its
    per-iteration time × the iterations of every run. `lr_predicted_by_fit_at[L][lr]` is the lr
    each measured lr predicts for level L (a check of err ∝ lr)."""
    chosen = {}
    finite = [r for r in rows if 0 < max_err(r) < math.inf]
    for lv in levels:
        r = _first(rows, lv, lambda r: r)
        if r is not None:
            iters = r["iters"]
            chosen[f"{lv:g}"] = {
                "lr": r["lr"],
                "measured": True,
                "iters": iters,
                "jax_wall_s": r["wall_s"],
                "t_rel_err_max": r["t_rel_err_max"],
            }
        elif finite:
            base = finite[-1]
            lr = base["lr"] * lv / base["t_rel_err_max"]
            iters = [int(math.ceil(t / lr)) for t in t_ref]
            chosen[f"{lv:g}"] = {
                "lr": lr,
                "measured": False,
                "fit_from_lr": base["lr"],
                "iters": iters,
                "jax_wall_s": jax_per_iter * max(iters),
                "t_rel_err_max": None,
            }
        else:
            chosen[f"{lv:g}"] = None
            continue
        chosen[f"{lv:g}"]["numpy_wall_s"] = numpy_per_iter * sum(iters)  # always per-iteration × iterations
        chosen[f"{lv:g}"]["numpy_extrapolated"] = True
    pred = {f"{lv:g}": {f"{r['lr']:g}": r["lr"] * lv / r["t_rel_err_max"] for r in finite} for lv in levels}
    return chosen, pred


def scipy_choice(rows, levels=LEVELS):
    """scipy's loosest rtol meeting each level (rows loosest first): {"rtol", "wall_s"} or None."""
    return {f"{lv:g}": _first(rows, lv, lambda r: {"rtol": r["rtol"], "wall_s": r["wall_s"]}) for lv in levels}


def evals_vs_iters(gflow_timed, gd_chosen, levels=("0.01", "0.001")):
    """Gradient evaluations per run of gflow (3 a Bosh3 step) against GD's iterations, at each level both met."""
    return {
        lv: {
            "gflow_evals": [BOSH3_EVALS_PER_STEP * s for s in gflow_timed[lv]["steps"]],
            "gd_iters": gd_chosen[lv]["iters"],
        }
        for lv in levels
        if gflow_timed.get(lv) and gd_chosen.get(lv)
    }


def max_err(row) -> float:
    """A row's max relative error; None (how matched.json stores inf: a run that did not reach η) is inf."""
    e = row["t_rel_err_max"]
    return math.inf if e is None else e


def _first(rows, level, pick):
    """pick(the first row meeting `level`), or None."""
    ok = [r for r in rows if max_err(r) <= level]
    return pick(ok[0]) if ok else None


def targets(res):
    """The issue's targets, met or not, from the results."""
    out = []

    def ratio(p, lv, who):
        if p is None:
            return None
        g = p["gflow"]["timed"].get(f"{lv:g}")
        c = p.get("gd", {}).get("chosen", {}).get(f"{lv:g}")
        if g is None or c is None:
            return None
        return (c["numpy_wall_s"] if who == "numpy" else c["jax_wall_s"]) / g["wall_s"]

    def why_not(p, lv):
        """Why a medium-problem ratio is missing."""
        if p is None:
            return "not run"
        if p["gflow"]["timed"].get(f"{lv:g}") is None:
            return "no gflow tolerance on the stored reference ladder met this level (see the problem's table)"
        return "no GD learning rate met this level"

    # the medium problem at each η of the suite (η = 1e-2 always; 1e-3 where it was run)
    for eta in (1e-2, 1e-3):
        med = res["problems"].get(f"medium/eta={eta:g}")
        if med is None and eta != 1e-2:
            continue
        for lv, need in ((1e-3, 20.0), (1e-2, 5.0)):
            r = ratio(med, lv, "numpy")
            out.append(
                {
                    "target": f"medium η = {eta:g}, vs numpy GD at {lv:.1%} accuracy: ≥ {need:g}×",
                    "ratio": r,
                    "met": None if r is None else r >= need,
                    "note": "numpy time extrapolated (per-iteration × iterations)"
                    if r is not None
                    else why_not(med, lv),
                }
            )
        r = ratio(med, 1e-3, "jax")
        c = med and med["gd"]["chosen"].get("0.001")
        note = (
            ("JAX GD time extrapolated" if c and not c["measured"] else "measured")
            if r is not None
            else why_not(med, 1e-3)
        )
        out.append(
            {
                "target": f"medium η = {eta:g}, vs JAX GD at 0.1% accuracy: ahead (> 1×)",
                "ratio": r,
                "met": None if r is None else r > 1.0,
                "note": note,
            }
        )
    f = res.get("flops")
    r = f and f["in_run_fraction"]
    out.append(
        {
            "target": f"≥ 50% of matmul FLOP/s in gradient evaluation ({f and f['problem']})",
            "ratio": r,
            "met": None if r is None else r >= 0.5,
            "note": f"isolated vector field: {f['isolated_fraction']:.0%}" if f else "",
        }
    )
    lp = res.get("loop_vs_batched")
    r = lp and lp["speedup"]
    bc = res.get("batch_ceiling")
    out.append(
        {
            "target": f"batched sweep ≥ 5× the simulate loop ({lp and lp['problem']}, {lp and lp['n_runs']} runs)",
            "ratio": r,
            "met": None if r is None else r >= 5,
            "note": f"ceiling here {bc['ceiling_loop_over_batched']:.1f}× even with a free solver (see Batching)"
            if bc
            else "",
        }
    )
    b = res.get("batching")
    r = b and b["speedup_cost_aware_vs_full_vmap"]
    out.append(
        {
            "target": f"cost-aware ≥ 2× full vmap ({b and b['problem']}, {b and b['n_runs']} runs)",
            "ratio": r,
            "met": None if r is None else r >= 2,
        }
    )
    return out
