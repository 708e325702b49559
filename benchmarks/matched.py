"""The matched-accuracy harness of issue 4 (t_η only): gflow against GD loops and scipy, as ratios.
The suite's comparison under the accuracy contract (t_η and θ) is `benchmarks.fair`; this harness adds
the loop-vs-batched, compile, FLOP/s, scaling and batch-ceiling figures.

    python -m benchmarks.matched                 # full (~1 hour on 2 shared CPU cores, references stored)
    python -m benchmarks.matched --quick         # tiny problem, few α: a couple of minutes (the smoke test)
    python -m benchmarks.matched --quick --out /tmp/b   # write matched.json and matched.md elsewhere

Writes `matched.json` and the results table between the markers of `matched.md` (in benchmarks/results/
by default, or in --out). Every figure is a median over `repeats` timings after compilation, in float64
unless marked, on the CPU this runs on (the machine block records it, with the load average).

Matched accuracy: the reference (benchmarks/reference.py) gives t_η and the final test error of
each α of the accuracy subset at seed 0. A contender meets level L when |t_η/t_ref − 1| ≤ L for
every α of the subset. For gflow and scipy the loosest rtol of the ladder that meets L is taken; for
the GD loops the largest learning rate. Speed is the wall time of the accuracy subset's runs at that
setting. GD learning rates too small to run here are predicted from GD's first-order error
(err ∝ lr, fitted at the smallest lr measured) and their wall times extrapolated from measured
per-iteration times; those entries are marked "extrapolated", and the extrapolation is validated on
the small problem (see `gd_validation`).

This module parses the arguments and runs the sections in order: `measure.py` runs and times the
contenders, `judge.py` decides from the measurements which setting meets which level and which
target is met, `report.py` writes matched.json and renders the table in matched.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import gflow
from benchmarks import judge, measure, report
from benchmarks import reference as refmod
from benchmarks.common import SWEEP_SCALES, loadavg, machine
from benchmarks.gd import torch_available
from benchmarks.measure import log

FULL = dict(
    problems=(("small", (1e-2,)), ("small", (1e-3,)), ("medium", (1e-2, 1e-3))),
    repeats={"small": 3, "medium": 1},
    gd_budget_s={"small": 60.0, "medium": 150.0},  # wall allowed for one JAX GD sweep at one lr
    scipy_problems=("small",),
    scipy_max_nfev=100_000,
    validate_numpy_alphas=(1e-3, 0.1),  # small problem, numpy GD run in full
    # medium: the matched-accuracy comparison leaves out α = 1e-3 of its stored reference: gflow at the
    # rtol the lazy α need (3e-5, tolerance floor on) would take ~3000 steps there (~15 min here)
    speed_subset={"medium": (SWEEP_SCALES[10], SWEEP_SCALES[13], SWEEP_SCALES[15])},
    loop_problem="small",
    loop_scales=SWEEP_SCALES,
    loop_seeds=4,
    loop_dtype="float32",
    batch_ceiling=True,  # per-lane cost against batch size (benchmarks/studies/batch_ceiling.py), small problem
    batching_problem="small",
    batching_seeds=4,
    batching_repeats=2,
    flops_problem="medium",
    flops_dtype="float32",
    memory=dict(problem="small", n_runs=400),
    scaling=dict(base="small", n=(40, 160), width=(100, 400), seeds=(1, 16), scales=SWEEP_SCALES[::5]),
    numpy_iters=10,
    compute_references=False,  # tens of minutes here: `python -m benchmarks.reference` stores them
)
QUICK = dict(
    problems=(("tiny", (1e-2,)),),
    repeats={"tiny": 2},
    gd_budget_s={"tiny": 20.0},
    scipy_problems=("tiny",),
    scipy_max_nfev=5_000,
    speed_subset={},
    validate_numpy_alphas=(10.0,),
    # float64 and 1 seed: reuses the accuracy runs' compiled programs (keeps the smoke test short)
    loop_problem="tiny",
    loop_scales=refmod.accuracy_subset(SWEEP_SCALES, "tiny"),
    loop_seeds=1,
    loop_dtype="float64",
    batch_ceiling=False,
    batching_problem="tiny",
    batching_seeds=2,
    batching_repeats=1,
    flops_problem="tiny",
    flops_dtype="float64",
    memory=dict(problem="tiny", n_runs=100),
    scaling=dict(base="tiny", n=(20, 40), width=(20, 40), seeds=(1, 2), scales=SWEEP_SCALES[::5]),
    numpy_iters=10,
    compute_references=True,  # tiny: seconds, not stored
)


def matched_accuracy(problem, eta, S, res, quick) -> dict | None:
    """The matched-accuracy section of one (problem, η): reference, gflow on its ladder and timed, GD, scipy."""
    alphas = refmod.accuracy_subset(SWEEP_SCALES, problem)
    rep = S["repeats"][problem]
    key = refmod.key(problem, eta)
    log(f"== {key}: accuracy subset {len(alphas)} α")
    ref = measure.get_reference(problem, eta, alphas, store=not quick, allow_compute=S["compute_references"])
    if ref is None:
        res["skipped"].append(
            f"{key}: no stored reference (compute it with `python -m benchmarks.reference "
            f"--problem {problem} --eta {eta:g}`, or pass --compute-references)"
        )
        log(f"  {res['skipped'][-1]}")
        return None
    ref_wall = ref["wall_s"]
    # α without a reference (its loosest rung exceeded the step budget) take no part
    available = [a for a, t in zip(ref["alphas"], ref["t_stop"]) if t is not None]
    wanted = S["speed_subset"].get(problem, tuple(ref["alphas"]))
    if list(wanted) != list(ref["alphas"]) or len(available) < len(ref["alphas"]):
        alphas = tuple(a for a in wanted if a in available)
        ref = judge.subset_reference(ref, alphas)
        log(f"  matched-accuracy subset: {len(alphas)} α of the reference's")
    p = {
        "reference": {
            k: ref[k]
            for k in ("alphas", "t_stop", "test_err", "rel_err_estimate", "rel_err_estimate_max", "step_budget", "date")
        }
    }
    p["reference"].update(
        wall_s=ref_wall, rtol=[r["rtol"] for r in ref["runs"]], variant=[r["variant"] for r in ref["runs"]]
    )
    rows, chosen = judge.gflow_accuracy(ref)
    timed_ = {}
    for lv, rtol in chosen.items():
        if rtol is None:
            continue
        t = measure.gflow_timed(problem, eta, alphas, rtol, rep)
        t.update(judge.gflow_timed_errors(t, next(r for r in rows if r["rtol"] == rtol), ref))
        timed_[lv] = t
        log(f"  gflow level {lv}: rtol {rtol:g}, {t['wall_s']:.2f} s, max rel. err {t['t_rel_err_max']:.1e}")
    p["gflow"] = {"ladder": rows, "chosen_rtol": chosen, "timed": timed_}
    if S["want"]("gd"):
        g = measure.gd_runs(problem, eta, alphas, ref, S["gd_budget_s"][problem], rep, S["numpy_iters"])
        gd_chosen, pred = judge.gd_choice(g["lrs"], ref["t_stop"], g["jax_per_iter_s"], g["numpy_per_iter_s"])
        p["gd"] = {**g, "chosen": gd_chosen, "lr_predicted_by_fit_at": pred}
        c1 = gd_chosen.get("0.01")
        if problem in ("small", "tiny") and not res.get("gd_validated") and c1:
            res["gd_validated"] = key
            # validate the numpy extrapolation: run it in full at the largest measured lr meeting 1%
            # (or the smallest measured lr), for a few α
            lr = c1["lr"] if c1["measured"] else g["lrs"][-1]["lr"]
            va = [a for a in alphas if any(abs(a - b) < 1e-12 * b for b in S["validate_numpy_alphas"])]
            p["gd_validation"] = measure.gd_validation(problem, eta, alphas, va, lr, g["numpy_per_iter_s"], g["lrs"])
        p["evals_vs_iters"] = judge.evals_vs_iters(timed_, gd_chosen)
    if S["want"]("scipy") and problem in S["scipy_problems"]:
        s = measure.scipy_runs(problem, eta, alphas, ref, S["scipy_max_nfev"])
        p["scipy"] = {"rows": s["rows"], "chosen": judge.scipy_choice(s["rows"]), "max_nfev": s["max_nfev"]}
    elif problem not in S["scipy_problems"]:
        res["skipped"].append(
            f"scipy RK45 on {key}: not run (one configuration at a time at these shapes does not fit the time budget)"
        )
    return p


def run(quick: bool, out: Path, command: str, only=None) -> dict:
    S = {**(QUICK if quick else FULL), "want": lambda name: only is None or name in only}
    want = S["want"]
    gflow.enable_float64()
    t_start = time.perf_counter()
    res = {
        "command": command,
        "quick": quick,
        "numpy_blas_threads": measure.NUMPY_THREADS,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "load_start": loadavg(),
        "levels": list(judge.LEVELS),
        "problems": {},
        "skipped": [],
    }
    res["skipped"].append(
        "PyTorch GD loop (optional contender): not included"
        + ("" if torch_available() else "; torch is not installed here")
    )
    if want("compile"):
        problem, etas = S["problems"][0]
        log("== compile (first gflow programs of this process)")
        res["compile"] = measure.compile_figures(problem, etas[0], refmod.accuracy_subset(SWEEP_SCALES, problem))
        log(f"  {res['compile']}")
    for problem, etas in S["problems"]:
        for eta in etas:
            p = matched_accuracy(problem, eta, S, res, quick)
            if p is not None:
                res["problems"][refmod.key(problem, eta)] = p
                report.save(res, out, log=log)
    if want("loop"):
        log("== loop of simulate vs batched sweep")
        res["loop_vs_batched"] = measure.loop_vs_batched(
            S["loop_problem"], S["loop_scales"], S["loop_seeds"], max(S["repeats"].values()), S["loop_dtype"]
        )
        log(f"  {res['loop_vs_batched']}")
        if S["batch_ceiling"]:
            from benchmarks.studies import batch_ceiling

            log("== batch ceiling: per-lane cost against batch size")
            res["batch_ceiling"] = batch_ceiling.measure(repeats=3)
        report.save(res, out, log=log)
    if want("batching"):
        from benchmarks import batching

        log("== full vmap vs cost-aware batching")
        res["batching"] = batching.measure(S["batching_problem"], S["batching_repeats"], n_seeds=S["batching_seeds"])
        report.save(res, out, log=log)
    if want("flops"):
        log("== FLOP/s")
        res["flops"] = measure.flops_section(S["flops_problem"], 3, S["flops_dtype"])
        log(f"  {res['flops']}")
        report.save(res, out, log=log)
    if want("memory"):
        from benchmarks import memory

        log("== memory")
        m = S["memory"]
        res["memory"] = {
            "problem": m["problem"],
            **memory.measure(m["n_runs"], out=str(out / "_memory_run"), problem=m["problem"]),
        }
        shutil.rmtree(out / "_memory_run", ignore_errors=True)
        report.save(res, out, log=log)
    if want("scaling"):
        log("== scaling")
        sc = S["scaling"]
        res["scaling"] = measure.scaling_section(sc["base"], sc["n"], sc["width"], sc["seeds"], sc["scales"], 1)
    res["targets"] = judge.targets(res)
    res["load_end"] = loadavg()
    res["wall_s"] = time.perf_counter() - t_start
    report.save(res, out, log=log)
    report.write_readme(out / report.TABLE, report.table(res))
    log(f"done in {res['wall_s'] / 60:.1f} min; wrote {out / report.RESULTS} and {out / report.TABLE}")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny problem, few α (a couple of minutes)")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="folder for matched.json and matched.md"
    )
    ap.add_argument(
        "--only", nargs="+", default=None, help="sections: gd scipy loop batching compile flops memory scaling"
    )
    ap.add_argument(
        "--compute-references", action="store_true", help="compute and store missing references (full suite)"
    )
    ap.add_argument(
        "--render", action="store_true", help="only rewrite matched.md's table from the matched.json in --out"
    )
    args = ap.parse_args(argv)
    if args.render:
        report.render(args.out)
        return
    if args.compute_references:
        FULL["compute_references"] = True
    cmd = "python -m benchmarks.matched" + (" --quick" if args.quick else "")
    run(args.quick, args.out, cmd, args.only)


if __name__ == "__main__":
    main()
