"""The benchmark suite of issue 4: gflow against the ways gradient flow is simulated today, as ratios.

    python -m benchmarks                 # full suite (~1 hour on 2 shared CPU cores, references stored)
    python -m benchmarks --quick         # tiny problem, few α: a couple of minutes (the smoke test)
    python -m benchmarks --quick --out /tmp/b   # write results.json and README.md elsewhere

Writes `results.json` and the results table between the markers of `README.md` (in benchmarks/ by
default, or in --out). Every figure is a median over `repeats` timings after compilation, in float64
unless marked, on the CPU this runs on (the machine block records it, with the load average).

Matched accuracy: the reference (benchmarks/reference.py) gives t_η and the final test error of
each α of the accuracy subset at seed 0. A contender meets level L when |t_η/t_ref − 1| ≤ L for
every α of the subset. For gflow and scipy the loosest rtol of the ladder that meets L is taken; for
the GD loops the largest learning rate. Speed is the wall time of the accuracy subset's runs at that
setting. GD learning rates too small to run here are predicted from GD's first-order error
(err ∝ lr, fitted at the smallest lr measured) and their wall times extrapolated from measured
per-iteration times; those entries are marked "extrapolated", and the extrapolation is validated on
the small problem (see `gd_validation`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import jax
import numpy as np

import gflow
from benchmarks import reference as refmod
from benchmarks.common import PROBLEMS, SWEEP_SCALES, blas_threads, loadavg, machine, problem_config, rss_mb, timed
from benchmarks.gd import dataset_numpy, init, jax_gd_sweep, numpy_gd, numpy_gd_iters, torch_available
from gflow.runs.compile_log import track_compiles

LEVELS = (1e-2, 1e-3)
# numpy/scipy run with one BLAS thread: one configuration a process, as the common practice runs
# them; on these 2 shared cores, OpenBLAS's 2 spinning threads made numpy GD ~15× slower per iteration
NUMPY_THREADS = 1
GFLOW_RTOLS = refmod.RUNGS  # gflow's accuracy is read off the reference ladder's own (looser) rungs
SCIPY_RTOLS = (1e-3, 1e-4, 1e-5)
GD_LRS = (0.1, 0.03, 0.01, 0.003, 0.001, 3e-4)

FULL = dict(
    problems=(("small", (1e-2,)), ("small", (1e-3,)), ("medium", (1e-2, 1e-3))),
    repeats={"small": 3, "medium": 1},
    gd_budget_s={"small": 60.0, "medium": 150.0},  # wall allowed for one JAX GD sweep at one lr
    scipy_problems=("small",), scipy_max_nfev=100_000,
    validate_numpy_alphas=(1e-3, 0.1),  # small problem, numpy GD run in full
    # medium: the matched-accuracy comparison leaves out α = 1e-3 of its stored reference: gflow at the
    # rtol the lazy α need (3e-5, tolerance floor on) would take ~3000 steps there (~15 min here)
    speed_subset={"medium": (SWEEP_SCALES[10], SWEEP_SCALES[13], SWEEP_SCALES[15])},
    loop_problem="small", loop_scales=SWEEP_SCALES, loop_seeds=4, loop_dtype="float32",
    batch_ceiling=True,  # per-lane cost against batch size (benchmarks/batch_ceiling.py), small problem
    batching_problem="small", batching_seeds=4, batching_repeats=2,
    flops_problem="medium", flops_dtype="float32", memory=dict(problem="small", n_runs=400),
    scaling=dict(base="small", n=(40, 160), width=(100, 400), seeds=(1, 16), scales=SWEEP_SCALES[::5]),
    numpy_iters=10,
    compute_references=False,  # tens of minutes here: `python -m benchmarks.reference` stores them
)
QUICK = dict(
    problems=(("tiny", (1e-2,)),),
    repeats={"tiny": 2},
    gd_budget_s={"tiny": 20.0},
    scipy_problems=("tiny",), scipy_max_nfev=5_000, speed_subset={},
    validate_numpy_alphas=(10.0,),
    # float64 and 1 seed: reuses the accuracy runs' compiled programs (keeps the smoke test short)
    loop_problem="tiny", loop_scales=refmod.accuracy_subset(SWEEP_SCALES, "tiny"), loop_seeds=1, loop_dtype="float64",
    batch_ceiling=False,
    batching_problem="tiny", batching_seeds=2, batching_repeats=1,
    flops_problem="tiny", flops_dtype="float64", memory=dict(problem="tiny", n_runs=100),
    scaling=dict(base="tiny", n=(20, 40), width=(20, 40), seeds=(1, 2), scales=SWEEP_SCALES[::5]),
    numpy_iters=10,
    compute_references=True,  # tiny: seconds, not stored
)

MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg():.1f}]", *a, flush=True)


def rel_errs(t, t_ref):
    return [abs(a / b - 1) if (a is not None and math.isfinite(a)) else math.inf for a, b in zip(t, t_ref)]


def f64_sweep_cfg(problem, eta, alphas, rtol, n_seeds=1):
    return problem_config(problem, target_loss=eta, rtol=rtol, dtype="float64", n_seeds=n_seeds, init_scales=tuple(alphas))


# ----------------------------------------------------------------------------------------- reference


def get_reference(problem, eta, alphas, *, store, allow_compute=True):
    cfg = f64_sweep_cfg(problem, eta, alphas, 1e-3)
    if store:
        return refmod.get(problem, eta, cfg, alphas, log=log, allow_compute=allow_compute)
    return refmod.compute(problem, eta, alphas=alphas, log=log)


# --------------------------------------------------------------------------------------------- gflow


def gflow_accuracy(ref, levels=LEVELS):
    """gflow (float64 Bosh3, default tolerance floor) at each rung of the reference ladder.

    The error of a rung looser than an α's reference rung is measured against it; at the reference
    rung or tighter (floor on) it is bounded by the reference's own error estimate ("bounded")."""
    rows = []
    for rtol in GFLOW_RTOLS:
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
        rows.append({"rtol": rtol, "t_rel_err": errs, "t_rel_err_max": max(errs), "steps": steps, "bounded_by_reference": bounded,
                     "test_err_abs_diff_max": max(abs(a - b) for a, b in zip(e, ref["test_err"]))})
    chosen = {}
    for lv in levels:
        ok = [r for r in rows if r["t_rel_err_max"] <= lv]
        chosen[f"{lv:g}"] = ok[0]["rtol"] if ok else None
    return rows, chosen


def subset_reference(ref, alphas):
    """The stored reference restricted to `alphas` (a subset of its own α)."""
    idx = [ref["alphas"].index(a) for a in alphas]
    out = dict(ref)
    for k in ("alphas", "t_stop", "test_err", "rel_err_estimate", "runs"):
        out[k] = [ref[k][i] for i in idx]
    out["rel_err_estimate_max"] = max(out["rel_err_estimate"])
    return out


def gflow_timed(problem, eta, alphas, rtol, repeats):
    """Wall of the batched float64 sweep over the accuracy subset (seed 0) at `rtol` (compiled before)."""
    cfg = f64_sweep_cfg(problem, eta, alphas, rtol)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    with track_compiles() as c:
        gflow.run_sweep(cfg, data=data, progress=False)
    wall, res = timed(gflow.run_sweep, cfg, data=data, progress=False, repeats=repeats)
    steps = res.arrays["n_steps"][:, 0]
    return {"rtol": rtol, "wall_s": wall, "load": loadavg(), "warmup_compiles": c.count, "warmup_compile_s": c.seconds,
            "t_stop": res.arrays["t_stop"][:, 0].tolist(), "steps": steps.tolist(),
            "statuses": [gflow.STATUS_NAMES[int(s)] for s in res.arrays["status"][:, 0]]}


# ------------------------------------------------------------------------------------------------ GD


def gd_section(problem, eta, alphas, ref, budget_s, repeats, numpy_iters, levels=LEVELS):
    cfg = f64_sweep_cfg(problem, eta, alphas, 1e-3)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    width = cfg.model.width
    seeds = [0] * len(alphas)
    t_ref = np.asarray(ref["t_stop"])
    # per-iteration cost of the vmapped JAX GD (lanes keep stepping until the slowest stops)
    jax_gd_sweep(alphas, seeds, data, width=width, lr=0.1, eta=eta, max_iters=20)  # compile
    w20, _ = timed(jax_gd_sweep, alphas, seeds, data, width=width, lr=0.1, eta=eta, max_iters=20, repeats=repeats)
    w220, _ = timed(jax_gd_sweep, alphas, seeds, data, width=width, lr=1e-9, eta=eta, max_iters=220, repeats=repeats)
    jax_per_iter = max((w220 - w20) / 200, 1e-9)
    # numpy per-iteration cost on the real shapes, each α (the same work per iteration)
    x, y, xt, yt = dataset_numpy(data)
    W, a = init(alphas[0], 0, cfg.data.d, width)
    reps = []
    with blas_threads(NUMPY_THREADS):
        t0 = time.perf_counter()
        numpy_gd_iters(W, a, x, y, lr=1e-3, iters=numpy_iters)
        # enough iterations for ~0.5 s a repeat (load spikes average out)
        iters = max(numpy_iters, int(numpy_iters * 0.5 / max(time.perf_counter() - t0, 1e-6)))
        for _ in range(max(repeats, 3)):
            t0 = time.perf_counter()
            numpy_gd_iters(W, a, x, y, lr=1e-3, iters=iters)
            reps.append((time.perf_counter() - t0) / iters)
    numpy_per_iter = statistics.median(reps)
    rows = []
    for lr in GD_LRS:
        iters_pred = float(np.max(t_ref) / lr)
        if rows and iters_pred * jax_per_iter > budget_s:
            log(f"  JAX GD lr={lr:g}: predicted {iters_pred * jax_per_iter:.0f} s > budget {budget_s:.0f} s; not run")
            break
        t0 = time.perf_counter()
        r = jax_gd_sweep(alphas, seeds, data, width=width, lr=lr, eta=eta, max_iters=int(3 * iters_pred) + 10)
        wall = time.perf_counter() - t0
        errs = rel_errs(r.t_stop.tolist(), t_ref) if r.reached.all() else [math.inf] * len(alphas)
        rows.append({"lr": lr, "wall_s": wall, "iters": r.iters.tolist(), "t_stop": r.t_stop.tolist(), "t_rel_err": errs,
                     "t_rel_err_max": max(errs), "t_plain_rel_err_max": max(rel_errs(r.t_stop_plain.tolist(), t_ref)),
                     "test_err_abs_diff_max": float(np.max(np.abs(r.test_err - np.asarray(ref["test_err"])))),
                     "reached": bool(r.reached.all())})
        log(f"  JAX GD lr={lr:g}: max rel. err of t_η {max(errs):.2e}, {int(r.iters.max())} iterations, {wall:.1f} s")
    # largest lr meeting each level; else predicted from err ∝ lr at the smallest lr measured
    chosen = {}
    finite = [r for r in rows if math.isfinite(r["t_rel_err_max"]) and r["t_rel_err_max"] > 0]
    for lv in levels:
        ok = [r for r in rows if r["t_rel_err_max"] <= lv]
        if ok:
            r = ok[0]
            iters = r["iters"]
            chosen[f"{lv:g}"] = {"lr": r["lr"], "measured": True, "iters": iters, "jax_wall_s": r["wall_s"],
                                 "t_rel_err_max": r["t_rel_err_max"]}
        elif finite:
            base = finite[-1]
            lr = base["lr"] * lv / base["t_rel_err_max"]
            iters = [int(math.ceil(t / lr)) for t in t_ref]
            chosen[f"{lv:g}"] = {"lr": lr, "measured": False, "fit_from_lr": base["lr"], "iters": iters,
                                 "jax_wall_s": jax_per_iter * max(iters), "t_rel_err_max": None}
        else:
            chosen[f"{lv:g}"] = None
            continue
        chosen[f"{lv:g}"]["numpy_wall_s"] = numpy_per_iter * sum(iters)  # always per-iteration × iterations
        chosen[f"{lv:g}"]["numpy_extrapolated"] = True
    # check of the err ∝ lr model: the lr each measured lr predicts for each level
    pred = {f"{lv:g}": {f"{r['lr']:g}": r["lr"] * lv / r["t_rel_err_max"] for r in finite} for lv in levels}
    return {"jax_per_iter_s": jax_per_iter, "numpy_per_iter_s": numpy_per_iter, "load": loadavg(), "lrs": rows, "chosen": chosen,
            "lr_predicted_by_fit_at": pred}


def gd_validation(problem, eta, all_alphas, alphas, lr, numpy_per_iter, jax_rows):
    """numpy GD run in full at `lr` for a few α: measured wall against per-iteration × iterations,
    and its t_η against the JAX GD loop's (the same float64 algorithm)."""
    cfg = f64_sweep_cfg(problem, eta, alphas, 1e-3)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    x, y, xt, yt = dataset_numpy(data)
    jr = next((r for r in jax_rows if r["lr"] == lr), None)
    out = []
    for alpha in alphas:
        W, a = init(alpha, 0, cfg.data.d, cfg.model.width)
        with blas_threads(NUMPY_THREADS):
            t0 = time.perf_counter()
            r = numpy_gd(W, a, x, y, xt, yt, lr=lr, eta=eta)
            wall = time.perf_counter() - t0
        row = {"alpha": alpha, "lr": lr, "iters": r.iters, "wall_s": wall, "extrapolated_s": numpy_per_iter * r.iters,
               "measured_over_extrapolated": wall / max(numpy_per_iter * r.iters, 1e-12), "t_stop": r.t_stop}
        if jr is not None:
            row["t_rel_diff_vs_jax_gd"] = abs(r.t_stop / jr["t_stop"][list(all_alphas).index(alpha)] - 1)
        out.append(row)
        log(f"  numpy GD in full α={alpha:.3g} lr={lr:g}: {r.iters} iterations, {wall:.1f} s measured vs "
            f"{numpy_per_iter * r.iters:.1f} s extrapolated")
    return out


# --------------------------------------------------------------------------------------------- scipy


def scipy_section(problem, eta, alphas, ref, max_nfev, levels=LEVELS):
    from benchmarks.scipy_ivp import solve

    cfg = f64_sweep_cfg(problem, eta, alphas, 1e-3)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    x, y, xt, yt = dataset_numpy(data)
    rows = []
    for rtol in SCIPY_RTOLS:
        t, e, nfev, wall = [], [], [], 0.0
        for alpha in alphas:
            W, a = init(alpha, 0, cfg.data.d, cfg.model.width)
            with blas_threads(NUMPY_THREADS):
                t0 = time.perf_counter()
                r = solve(W, a, x, y, xt, yt, eta=eta, rtol=rtol, method="RK45", max_nfev=max_nfev)
                wall += time.perf_counter() - t0
            t.append(r.t_stop if r.reached else math.inf)
            e.append(r.test_err)
            nfev.append(r.nfev)
        errs = rel_errs(t, ref["t_stop"])
        rows.append({"rtol": rtol, "wall_s": wall, "nfev": nfev, "t_rel_err": errs, "t_rel_err_max": max(errs),
                     "complete": all(math.isfinite(v) for v in t)})
        log(f"  scipy RK45 rtol={rtol:g}: max rel. err {max(errs):.2e}, nfev {sum(nfev)}, {wall:.1f} s")
        if not rows[-1]["complete"] or max(errs) <= min(levels):
            break
    chosen = {}
    for lv in levels:
        ok = [r for r in rows if r["t_rel_err_max"] <= lv]
        chosen[f"{lv:g}"] = {"rtol": ok[0]["rtol"], "wall_s": ok[0]["wall_s"]} if ok else None
    return {"rows": rows, "chosen": chosen, "max_nfev": max_nfev}


# ------------------------------------------------------------------------------ gflow's own figures


def loop_vs_batched(problem, scales, n_seeds, repeats, dtype="float32"):
    """A Python loop of gflow.simulate against one run_sweep over the same runs (default solver and rtol)."""
    cfg = problem_config(problem, n_seeds=n_seeds, init_scales=tuple(scales), dtype=dtype)
    data = gflow.twolayer.data.make_dataset(cfg.data, dtype)

    def loop():
        out = []
        for a in scales:
            for s in range(n_seeds):
                out.append(float(gflow.simulate(init_scale=a, seed=s, config=cfg, data=data).t_stop))
        return out

    loop()
    gflow.run_sweep(cfg, data=data, progress=False)
    w_loop, t_loop = timed(loop, repeats=repeats)
    w_sweep, res = timed(gflow.run_sweep, cfg, data=data, progress=False, repeats=repeats)
    t_sweep = res.arrays["t_stop"].ravel()
    return {"problem": problem, "dtype": dtype, "n_runs": len(scales) * n_seeds, "loop_wall_s": w_loop, "sweep_wall_s": w_sweep,
            "speedup": w_loop / w_sweep, "t_stop_rel_diff_max": float(np.max(np.abs(np.asarray(t_loop) / t_sweep - 1)))}


def compile_figures(problem, eta, alphas):
    """Compile time of simulate and of a sweep chunk (float64, the accuracy runs' shapes; the first
    gflow programs this process compiles), and recompiles when α, seed, η or rtol change (must be 0)."""
    cfg = f64_sweep_cfg(problem, eta, alphas, 1e-3)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    with track_compiles() as first:
        jax.block_until_ready(gflow.simulate(init_scale=alphas[0], config=cfg, data=data))
    with track_compiles() as again:
        for a in SWEEP_SCALES:
            jax.block_until_ready(gflow.simulate(init_scale=a, seed=1, config=cfg, data=data))
        c2 = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, target_loss=eta / 3, rtol=1e-4))
        jax.block_until_ready(gflow.simulate(init_scale=0.5, config=c2, data=data))
    with track_compiles() as sw1:
        gflow.run_sweep(cfg, data=data, progress=False)
    cfg2 = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, init_scales=(2e-5, 3e-2, 7.0)))
    with track_compiles() as sw2:
        gflow.run_sweep(cfg2, data=data, progress=False)
    return {"problem": problem, "dtype": "float64", "simulate_compile_s": first.seconds, "simulate_compiles": first.count,
            "recompiles_across_alpha_seed_eta_rtol": again.count, "n_alpha_tried": len(SWEEP_SCALES),
            "sweep_compile_s": sw1.seconds, "sweep_compiles": sw1.count, "sweep_recompiles_new_alphas": sw2.count}


def flops_section(problem, repeats, dtype="float32"):
    """Achieved FLOP/s of gflow's vector field against matmul FLOP/s at its shapes."""
    from gflow.twolayer import model

    cfg = problem_config(problem, n_seeds=1, init_scales=(0.1,), dtype=dtype)
    n, d, h = cfg.data.n, cfg.data.d, cfg.model.width
    data = gflow.twolayer.data.make_dataset(cfg.data, dtype)
    p = model.init_params(key=model.init_key(0), d=d, width=h, init_scale=jax.numpy.asarray(0.1, dtype), dtype=dtype)
    x, y = data.x, data.y
    gram = x @ x.T if n < d else None
    k = 50

    @jax.jit
    def many_grads(p):
        def body(i, acc):
            q = model.Params(W=p.W + acc * 1e-30, a=p.a)
            v, dm = model.flow_velocity(q, x, y, 1.0, gram)
            return acc + v.W[0, 0] + dm[0]
        return jax.lax.fori_loop(0, k, body, jax.numpy.zeros((), dtype))

    @jax.jit
    def many_matmuls(W):
        def body(i, acc):
            return acc + (x @ (W + acc * 1e-30).T)[0, 0] + ((x @ (W + acc * 1e-30).T).T @ x)[0, 0]
        return jax.lax.fori_loop(0, k, body, jax.numpy.zeros((), dtype))

    many_grads(p), many_matmuls(p.W)
    t_grad, _ = timed(many_grads, p, repeats=max(repeats, 3))
    t_mm, _ = timed(many_matmuls, p.W, repeats=max(repeats, 3))
    grad_flop = 4 * n * h * d
    mm_flops = k * 4 * n * h * d / t_mm  # the same two n×d×h matmuls, nothing else
    iso = k * grad_flop / t_grad
    # in a run: Bosh3 evaluates the vector field 3 times a step (FSAL); the event, the stop
    # refinement and observables are not counted, so this understates the work done
    r = gflow.simulate(init_scale=0.1, config=cfg, data=data)
    jax.block_until_ready(r)
    w, r = timed(lambda: gflow.simulate(init_scale=0.1, config=cfg, data=data), repeats=max(repeats, 3))
    in_run = 3 * int(r.n_steps) * grad_flop / w
    return {"problem": problem, "dtype": dtype, "grad_flop": grad_flop, "matmul_flops": mm_flops,
            "isolated_grad_flops": iso, "isolated_fraction": iso / mm_flops, "in_run_flops": in_run,
            "in_run_fraction": in_run / mm_flops, "in_run_steps": int(r.n_steps), "in_run_wall_s": w}


def scaling_section(base, ns, widths, seeds, scales, repeats):
    """Wall time of a float32 sweep (defaults) as n, h and the number of runs grow, after compilation."""
    out = []

    def one(n, width, n_seeds):
        cfg = problem_config(base, n_seeds=n_seeds, init_scales=tuple(scales))
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n=n), model=dataclasses.replace(cfg.model, width=width))
        data = gflow.twolayer.data.make_dataset(cfg.data)
        gflow.run_sweep(cfg, data=data, progress=False)
        w, res = timed(gflow.run_sweep, cfg, data=data, progress=False, repeats=repeats)
        row = {"n": n, "width": width, "d": cfg.data.d, "n_runs": len(scales) * n_seeds, "wall_s": w,
               "steps_total": int(res.arrays["n_steps"].sum())}
        out.append(row)
        log(f"  scaling {row}")

    p = PROBLEMS[base]
    for n in ns:
        one(n, p["width"], seeds[0])
    for h in widths[1:]:
        one(p["n"], h, seeds[0])
    for s in seeds[1:]:
        one(p["n"], p["width"], s)
    return out


# ----------------------------------------------------------------------------------------- reporting


def fmt_s(s):
    if s is None or not math.isfinite(s):
        return "—"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.3g} s"


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
            out.append({"target": f"medium η = {eta:g}, vs numpy GD at {lv:.1%} accuracy: ≥ {need:g}×", "ratio": r,
                        "met": None if r is None else r >= need,
                        "note": "numpy time extrapolated (per-iteration × iterations)" if r is not None else why_not(med, lv)})
        r = ratio(med, 1e-3, "jax")
        c = med and med["gd"]["chosen"].get("0.001")
        note = ("JAX GD time extrapolated" if c and not c["measured"] else "measured") if r is not None else why_not(med, 1e-3)
        out.append({"target": f"medium η = {eta:g}, vs JAX GD at 0.1% accuracy: ahead (> 1×)", "ratio": r,
                    "met": None if r is None else r > 1.0, "note": note})
    f = res.get("flops")
    r = f and f["in_run_fraction"]
    out.append({"target": f"≥ 50% of matmul FLOP/s in gradient evaluation ({f and f['problem']})", "ratio": r,
                "met": None if r is None else r >= 0.5, "note": f"isolated vector field: {f['isolated_fraction']:.0%}" if f else ""})
    lp = res.get("loop_vs_batched")
    r = lp and lp["speedup"]
    bc = res.get("batch_ceiling")
    out.append({"target": f"batched sweep ≥ 5× the simulate loop ({lp and lp['problem']}, {lp and lp['n_runs']} runs)", "ratio": r,
                "met": None if r is None else r >= 5,
                "note": f"ceiling here {bc['ceiling_loop_over_batched']:.1f}× even with a free solver (see Batching)" if bc else ""})
    b = res.get("batching")
    r = b and b["speedup_cost_aware_vs_full_vmap"]
    out.append({"target": f"cost-aware ≥ 2× full vmap ({b and b['problem']}, {b and b['n_runs']} runs)", "ratio": r,
                "met": None if r is None else r >= 2})
    return out


def table(res) -> str:
    m = res["machine"]
    L = [f"Run {res['date']} with `{res['command']}` ({'quick' if res['quick'] else 'full'} suite, total wall "
         f"{(res.get('wall_s') or float('nan')) / 60:.1f} min). Machine: {m['cpu']}, {m['cores']} cores, JAX {m.get('jax', '?')} on {m['backend']}; "
         f"1-min load average {res['load_start']:.1f} at start, {res.get('load_end') or float('nan'):.1f} at end (the cores were shared with "
         "other jobs, so wall times are upper bounds). Medians over repeats (see results.json).", ""]
    if not res["quick"]:
        L += ["How to read this (the full suite as configured in `benchmarks/__main__.py`, `FULL`):", "",
              "- Timings: small problem median of 3 after a warm-up call; medium problem **one** timing after a warm-up call. "
              "numpy and scipy run with one BLAS thread (one configuration a process); JAX/gflow use XLA's CPU threads.",
              "- Matched accuracy is judged on the accuracy subset at seed 0 (6 α small; 3 α medium: 0.1, 1.58, 10). The stored "
              "medium η = 0.01 reference also has α = 1e-3, left out of the timed comparison because gflow at the rtol the lazy α "
              "need would take ~3000 steps there; at η = 1e-3 the medium problem has no reference at α = 1e-3 at all (float64 "
              "Bosh3 needs more than 800 steps there even at rtol 1e-2). Speeds are walls of exactly those runs.",
              "- **Extrapolated entries**: GD learning rates smaller than the last one run are predicted from err ∝ lr at the "
              "smallest lr run. How well err ∝ lr held, as err/lr at the learning rates run: " + err_per_lr(res) + ". "
              "JAX GD time = measured per-iteration time of "
              "the vmapped loop × the slowest lane's iterations; numpy GD time = measured per-iteration time × the iterations "
              "of every run. The numpy extrapolation is validated by running numpy GD in full on the small problem (below).",
              "- gflow's own accuracy is read off the reference ladder's looser rungs (floor on, gflow's default); at the "
              "reference rung itself the error is the reference's estimate.", ""]
    L += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in res["targets"]:
        r = "—" if t["ratio"] is None else (f"{t['ratio']:.0%}" if "FLOP" in t["target"] else f"{t['ratio']:.3g}×")
        met = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        L.append(f"| {t['target']} | {r}{' (' + t['note'] + ')' if t.get('note') else ''} | {met} |")
    for key, p in res["problems"].items():
        ref = p["reference"]
        L += ["", f"### {key}: matched accuracy", "",
              f"Accuracy subset α = {', '.join(f'{a:.3g}' for a in ref['alphas'])} (seed 0). Reference: gflow float64 Bosh3 "
              f"rtol ladder, its own estimated error of t_η ≤ {ref['rel_err_estimate_max']:.1e} (levels below this are not resolved).",
              "", "| contender | level | setting | max rel. err of t_η | wall (subset) | vs gflow |", "|---|---|---|---|---|---|"]
        for lv in LEVELS:
            k = f"{lv:g}"
            g = p["gflow"]["timed"].get(k)
            gw = g["wall_s"] if g else None
            unres = lv < ref["rel_err_estimate_max"]
            tag = " (level below the reference's error: unresolved)" if unres else ""
            if g:
                bd = " (α solved at their reference rung: the reference's estimate)" if g.get("bounded_by_reference") else ""
                L.append(f"| gflow batched (float64) | {lv:.1%}{tag} | rtol {g['rtol']:g} | {g['t_rel_err_max']:.1e}{bd} | {fmt_s(gw)} | 1× |")
            else:
                L.append(f"| gflow batched (float64) | {lv:.1%}{tag} | no rung looser than the reference meets it | — | — | — |")
            c = p.get("gd", {}).get("chosen", {}).get(k)
            if c and gw:
                ex = "" if c["measured"] else f", extrapolated (lr from err ∝ lr fitted at lr {c['fit_from_lr']:g})"
                err = f"{c['t_rel_err_max']:.1e}" if c["t_rel_err_max"] is not None else "≤ level (predicted)"
                L.append(f"| JAX GD vmapped | {lv:.1%} | lr {c['lr']:.3g}, ≤ {max(c['iters'])} iterations{ex} | {err} | "
                         f"{fmt_s(c['jax_wall_s'])} | {c['jax_wall_s'] / gw:.3g}× |")
                L.append(f"| numpy GD per config | {lv:.1%} | lr {c['lr']:.3g}, {sum(c['iters'])} iterations, extrapolated "
                         f"(per-iteration time × iterations) | as JAX GD | {fmt_s(c['numpy_wall_s'])} | "
                         f"{c['numpy_wall_s'] / gw:.3g}× |")
            s = p.get("scipy")
            if s is not None:
                sc = s["chosen"].get(k)
                if sc and gw:
                    L.append(f"| scipy RK45 per config | {lv:.1%} | rtol {sc['rtol']:g} | ≤ level | {fmt_s(sc['wall_s'])} | {sc['wall_s'] / gw:.3g}× |")
                else:
                    L.append(f"| scipy RK45 per config | {lv:.1%} | not met within rtol ≥ {SCIPY_RTOLS[-1]:g} / {s['max_nfev']} evaluations | — | — | — |")
        if p.get("gd_validation"):
            L += ["", "numpy GD run in full (validation of the extrapolation): " + "; ".join(
                f"α {v['alpha']:.3g}, lr {v['lr']:g}: {v['iters']} it., {fmt_s(v['wall_s'])} measured vs {fmt_s(v['extrapolated_s'])} "
                f"extrapolated ({v['measured_over_extrapolated']:.2f}×)" + (f", t_η vs JAX GD {v['t_rel_diff_vs_jax_gd']:.1e}" if 't_rel_diff_vs_jax_gd' in v else "")
                for v in p["gd_validation"])]
        if p.get("gd"):
            L += ["", "JAX GD, max rel. error of t_η by learning rate: " + ", ".join(
                f"lr {r['lr']:g}: " + (f"{r['t_rel_err_max']:.1e}" if r["t_rel_err_max"] is not None and math.isfinite(r["t_rel_err_max"]) else "not reached")
                for r in p["gd"]["lrs"]) + f". Per iteration: JAX GD (all lanes) {fmt_s(p['gd']['jax_per_iter_s'])}, "
                f"numpy (one run) {fmt_s(p['gd']['numpy_per_iter_s'])}."]
            for lv, d in p["gd"]["lr_predicted_by_fit_at"].items():
                c = p["gd"]["chosen"].get(lv)
                if c and c["measured"] and len(d) > 1:
                    L += ["", f"Check of err ∝ lr at {float(lv):.1%}: the lr predicted from each measured lr: "
                          + ", ".join(f"{k}→{v:.3g}" for k, v in d.items()) + f"; largest measured lr meeting it: {c['lr']:g}."]
        ev = p.get("evals_vs_iters")
        if ev:
            L += ["", "Gradient evaluations per run (gflow, 3 a Bosh3 step) vs GD iterations, per α: " + "; ".join(
                f"{lv}: gflow {e['gflow_evals']} vs GD {e['gd_iters']}" for lv, e in ev.items())]
    c = res.get("compile")
    if c:
        L += ["", "### Compilation", "",
              f"simulate: first call {c['simulate_compiles']} compiles, {c['simulate_compile_s']:.1f} s; then {c['n_alpha_tried']} α, "
              f"a new seed, η and rtol: **{c['recompiles_across_alpha_seed_eta_rtol']} recompiles**. run_sweep: {c['sweep_compiles']} "
              f"compiles, {c['sweep_compile_s']:.1f} s; a sweep over new α: {c['sweep_recompiles_new_alphas']} recompiles."]
    f = res.get("flops")
    if f:
        L += ["", "### FLOP/s", "",
              f"{f['problem']} shapes, {f['dtype']}: matmul (the same two n·h·d products) {f['matmul_flops'] / 1e9:.1f} GFLOP/s; gflow's vector "
              f"field alone {f['isolated_grad_flops'] / 1e9:.1f} GFLOP/s ({f['isolated_fraction']:.0%}); inside a run (α = 0.1, "
              f"{f['in_run_steps']} steps, 3 evaluations a step counted) {f['in_run_flops'] / 1e9:.1f} GFLOP/s ({f['in_run_fraction']:.0%})."]
    lp, b, mem = res.get("loop_vs_batched"), res.get("batching"), res.get("memory")
    L += ["", "### Batching and memory", ""]
    if lp:
        L.append(f"- Python loop of simulate vs one run_sweep ({lp['problem']}, {lp['n_runs']} runs, {lp['dtype']}): {fmt_s(lp['loop_wall_s'])} vs "
                 f"{fmt_s(lp['sweep_wall_s'])}, **{lp['speedup']:.2f}×**.")
    bc = res.get("batch_ceiling")
    if bc:
        L.append(f"- Per-lane cost against batch size ({bc['problem']}, α = {bc['alpha']:g}, {bc['dtype']}; `benchmarks/batch_ceiling.py`): "
                 + "; ".join(f"B = {r['batch']}: vector field {r['vf_ms_per_lane']:.3f} ms a lane-evaluation, solve "
                             f"{r['solve_ms_per_lane_step']:.2f} ms a lane-step" for r in bc["rows"])
                 + f". One `simulate` call: {bc['simulate_ms_per_step']:.2f} ms a step. The gradient evaluations alone of a batched step "
                 f"(3 vector fields + the loss, at the best B = {bc['evaluation_floor_batch']}) cost {bc['evaluation_floor_ms_per_lane_step']:.2f} ms "
                 f"a lane, so no batched solve can beat the loop by more than **{bc['ceiling_loop_over_batched']:.1f}×** here; "
                 f"gflow's batched solve reached {bc['achieved_loop_over_batched']:.2f}× per step at its best B. The B-lane forward "
                 "product x·[W_1ᵀ … W_Bᵀ] ran at " + ", ".join(f"{r['matmul_gflops']:.1f}" for r in bc["rows"])
                 + f" GFLOP/s for B = {', '.join(str(r['batch']) for r in bc['rows'])}, against {bc['matmul_2048_gflops']:.1f} GFLOP/s "
                 "for a 2048³ matmul.")
    if b:
        v = b["variants"]
        L.append(f"- Full vmap vs cost-aware batching ({b['problem']}, {b['n_runs']} runs): {fmt_s(v['full_vmap']['wall_s'])} vs "
                 f"{fmt_s(v['cost_aware']['wall_s'])}, **{b['speedup_cost_aware_vs_full_vmap']:.2f}×**.")
    if mem:
        L.append(f"- Peak RSS: {mem['peak_rss_mb']:.0f} MB over {mem['n_runs']} runs ({mem['problem']}), {mem['peak_rss_per_run_kb']:.1f} kB a run "
                 f"above the starting RSS; growth between early and last chunk {mem['growth_mb']:.1f} MB.")
    sc = res.get("scaling")
    if sc:
        L += ["", "### Scaling (float32 sweep, wall after compilation)", "", "| n | h | d | runs | wall | steps (sum) |", "|---|---|---|---|---|---|"]
        L += [f"| {r['n']} | {r['width']} | {r['d']} | {r['n_runs']} | {fmt_s(r['wall_s'])} | {r['steps_total']} |" for r in sc]
    sc = refmod.load().get("scipy_check")
    if sc and not res["quick"]:
        L += ["", "### Check of the reference against scipy", "",
              f"`solve_ivp` {sc['method']} (float64, rtol {sc['rtol']:g}, {sc['nfev']} evaluations, {sc['wall_s']:.0f} s) on the "
              f"{sc['problem']} problem, η = {sc['eta']:g}, α = {sc['alpha']:g}: t_η = {sc['t_scipy']:.10g} against the reference's "
              f"{sc['t_gflow_ref']:.10g}, relative difference {sc['rel_diff']:.1e} (the reference's own estimate {sc['ref_rel_err_estimate']:.1e}). "
              "In the rich regime DOP853 at this tolerance is not affordable here (did not finish in 10 minutes at α = 0.63)."]
    if res.get("skipped"):
        L += ["", "### Not run", ""] + [f"- {s}" for s in res["skipped"]]
    return "\n".join(L)


def err_per_lr(res) -> str:
    """GD's max relative error of t_η divided by lr, at each learning rate run, per problem (how far err ∝ lr holds)."""
    parts = []
    for k, p in res["problems"].items():
        lrs = p.get("gd", {}).get("lrs", [])
        if lrs:
            parts.append(f"{k}: " + ", ".join(f"{r['t_rel_err_max'] / r['lr']:.3g} at {r['lr']:g}" for r in lrs))
    return "; ".join(parts) or "no GD runs"


def write_readme(path: Path, body: str):
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + MARK_START + "\n" + MARK_END + "\n"
    if MARK_START not in text or MARK_END not in text:
        text = text.rstrip("\n") + "\n\n" + MARK_START + "\n" + MARK_END + "\n"
    a, b = text.index(MARK_START) + len(MARK_START), text.index(MARK_END)
    path.write_text(text[:a] + "\n" + body + "\n" + text[b:])


def jsonable(o):
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# -------------------------------------------------------------------------------------------- driver


def run(quick: bool, out: Path, command: str, only=None) -> dict:
    S = QUICK if quick else FULL
    gflow.enable_float64()
    t_start = time.perf_counter()
    res = {"command": command, "quick": quick, "numpy_blas_threads": NUMPY_THREADS, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
           "load_start": loadavg(), "levels": list(LEVELS), "problems": {}, "skipped": []}
    res["skipped"].append("PyTorch GD loop (optional contender): not included"
                          + ("" if torch_available() else "; torch is not installed here"))
    want = (lambda name: only is None or name in only)
    if want("compile"):
        problem, etas = S["problems"][0]
        log("== compile (first gflow programs of this process)")
        res["compile"] = compile_figures(problem, etas[0], refmod.accuracy_subset(SWEEP_SCALES, problem))
        log(f"  {res['compile']}")
    for problem, etas in S["problems"]:
        ref_alphas = refmod.accuracy_subset(SWEEP_SCALES, problem)
        rep = S["repeats"][problem]
        for eta in etas:
            alphas = ref_alphas
            key = refmod.key(problem, eta)
            log(f"== {key}: accuracy subset {len(alphas)} α")
            ref = get_reference(problem, eta, alphas, store=not quick, allow_compute=S["compute_references"])
            if ref is None:
                res["skipped"].append(f"{key}: no stored reference (compute it with `python -m benchmarks.reference "
                                      f"--problem {problem} --eta {eta:g}`, or pass --compute-references)")
                log(f"  {res['skipped'][-1]}")
                continue
            ref_wall = ref["wall_s"]
            # α without a reference (its loosest rung exceeded the step budget) take no part
            available = [a for a, t in zip(ref["alphas"], ref["t_stop"]) if t is not None]
            wanted = S["speed_subset"].get(problem, tuple(ref["alphas"]))
            if list(wanted) != list(ref["alphas"]) or len(available) < len(ref["alphas"]):
                alphas = tuple(a for a in wanted if a in available)
                ref = subset_reference(ref, alphas)
                log(f"  matched-accuracy subset: {len(alphas)} α of the reference's")
            p = {"reference": {k: ref[k] for k in ("alphas", "t_stop", "test_err", "rel_err_estimate", "rel_err_estimate_max",
                                                   "step_budget", "date")}}
            p["reference"].update(wall_s=ref_wall, rtol=[r["rtol"] for r in ref["runs"]], variant=[r["variant"] for r in ref["runs"]])
            rows, chosen = gflow_accuracy(ref)
            timed_ = {}
            for lv, rtol in chosen.items():
                if rtol is None:
                    continue
                t = gflow_timed(problem, eta, alphas, rtol, rep)
                row = next(r for r in rows if r["rtol"] == rtol)
                # the ladder's error (measured, or bounded by the reference's estimate at its own rung);
                # the timed sweep's own t_η against the reference is recorded too (same solves, float64)
                t["t_rel_err_max_timed_vs_ref"] = max(rel_errs(t["t_stop"], ref["t_stop"]))
                t["t_rel_err_max"], t["bounded_by_reference"] = row["t_rel_err_max"], row["bounded_by_reference"]
                timed_[lv] = t
                log(f"  gflow level {lv}: rtol {rtol:g}, {t['wall_s']:.2f} s, max rel. err {t['t_rel_err_max']:.1e}")
            p["gflow"] = {"ladder": rows, "chosen_rtol": chosen, "timed": timed_}
            if want("gd"):
                p["gd"] = gd_section(problem, eta, alphas, ref, S["gd_budget_s"][problem], rep, S["numpy_iters"])
                c1 = p["gd"]["chosen"].get("0.01")
                if problem in ("small", "tiny") and not res.get("gd_validated") and c1:
                    res["gd_validated"] = key
                    # validate the numpy extrapolation: run it in full at the largest measured lr meeting 1%
                    # (or the smallest measured lr), for a few α
                    lr = c1["lr"] if c1["measured"] else p["gd"]["lrs"][-1]["lr"]
                    va = [a for a in alphas if any(abs(a - b) < 1e-12 * b for b in S["validate_numpy_alphas"])]
                    p["gd_validation"] = gd_validation(problem, eta, alphas, va, lr, p["gd"]["numpy_per_iter_s"], p["gd"]["lrs"])
                ev = {}
                for lv in ("0.01", "0.001"):
                    if timed_.get(lv) and p["gd"]["chosen"].get(lv):
                        ev[lv] = {"gflow_evals": [3 * s for s in timed_[lv]["steps"]], "gd_iters": p["gd"]["chosen"][lv]["iters"]}
                p["evals_vs_iters"] = ev
            if want("scipy") and problem in S["scipy_problems"]:
                p["scipy"] = scipy_section(problem, eta, alphas, ref, S["scipy_max_nfev"])
            elif problem not in S["scipy_problems"]:
                res["skipped"].append(f"scipy RK45 on {key}: not run (one configuration at a time at these shapes does "
                                      "not fit the time budget)")
            res["problems"][key] = p
            save(res, out)
    if want("loop"):
        log("== loop of simulate vs batched sweep")
        res["loop_vs_batched"] = loop_vs_batched(S["loop_problem"], S["loop_scales"], S["loop_seeds"], max(S["repeats"].values()),
                                                 S["loop_dtype"])
        log(f"  {res['loop_vs_batched']}")
        if S["batch_ceiling"]:
            from benchmarks import batch_ceiling

            log("== batch ceiling: per-lane cost against batch size")
            res["batch_ceiling"] = batch_ceiling.measure(repeats=3)
        save(res, out)
    if want("batching"):
        from benchmarks import batching

        log("== full vmap vs cost-aware batching")
        res["batching"] = batching.measure(S["batching_problem"], S["batching_repeats"], n_seeds=S["batching_seeds"])
        save(res, out)
    if want("flops"):
        log("== FLOP/s")
        res["flops"] = flops_section(S["flops_problem"], 3, S["flops_dtype"])
        log(f"  {res['flops']}")
        save(res, out)
    if want("memory"):
        from benchmarks import memory

        log("== memory")
        m = S["memory"]
        res["memory"] = {"problem": m["problem"], **memory.measure(m["n_runs"], out=str(out / "_memory_run"), problem=m["problem"])}
        import shutil

        shutil.rmtree(out / "_memory_run", ignore_errors=True)
        save(res, out)
    if want("scaling"):
        log("== scaling")
        sc = S["scaling"]
        res["scaling"] = scaling_section(sc["base"], sc["n"], sc["width"], sc["seeds"], sc["scales"], 1)
    res["targets"] = targets(res)
    res["load_end"] = loadavg()
    res["wall_s"] = time.perf_counter() - t_start
    save(res, out)
    write_readme(out / "README.md", table(res))
    log(f"done in {res['wall_s'] / 60:.1f} min; wrote {out / 'results.json'} and {out / 'README.md'}")
    return res


def save(res, out: Path):
    """Write results.json, and the README table of what is done so far (a partial run leaves both)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(jsonable(res), indent=1))
    if "targets" not in res:
        partial = {**res, "targets": targets(res), "load_end": loadavg(), "wall_s": res.get("wall_s", float("nan"))}
        try:
            write_readme(out / "README.md", "**Partial run (in progress or stopped).**\n\n" + table(partial))
        except Exception as e:  # a partial table must never stop the run
            log(f"  (partial README not written: {e!r})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny problem, few α (a couple of minutes)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder for results.json and README.md")
    ap.add_argument("--only", nargs="+", default=None, help="sections: gd scipy loop batching compile flops memory scaling")
    ap.add_argument("--compute-references", action="store_true", help="compute and store missing references (full suite)")
    ap.add_argument("--render", action="store_true", help="only rewrite README.md's table from the results.json in --out")
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads((args.out / "results.json").read_text())
        res["targets"] = targets(res)  # re-derived, so a changed target rule shows in both files
        (args.out / "results.json").write_text(json.dumps(jsonable(res), indent=1))
        write_readme(args.out / "README.md", table(res))
        return
    if args.compute_references:
        FULL["compute_references"] = True
    cmd = "python -m benchmarks" + (" --quick" if args.quick else "")
    run(args.quick, args.out, cmd, args.only)


if __name__ == "__main__":
    main()
