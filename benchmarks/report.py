"""The matched-accuracy harness's report (`python -m benchmarks.matched`): matched.json and the results table
between the markers of matched.md (both in benchmarks/results/ by default).

`table(res)` renders a results dict (measured by measure.py, judged by judge.py) as markdown;
`write_readme` puts it between `MARK_START` and `MARK_END` and leaves the rest of the file alone;
`save` writes matched.json and, during a run, the table of what is done so far; `render` rewrites
both from a stored matched.json (`python -m benchmarks.matched --render`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from benchmarks import reference as refmod
from benchmarks.common import loadavg
from benchmarks.judge import LEVELS, SCIPY_RTOLS, max_err, targets

MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"


def fmt_s(s):
    if s is None or not math.isfinite(s):
        return "—"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.3g} s"


def table(res) -> str:
    m = res["machine"]
    L = [
        f"Run {res['date']} with `{res['command']}` ({'quick' if res['quick'] else 'full'} suite, total wall "
        f"{(res.get('wall_s') or float('nan')) / 60:.1f} min). Machine: {m['cpu']}, {m['cores']} cores, JAX {m.get('jax', '?')} on "
        f"{m['backend']}; "
        f"1-min load average {res['load_start']:.1f} at start, {res.get('load_end') or float('nan'):.1f} at end (the cores were "
        f"shared with "
        "other jobs, so wall times are upper bounds). Medians over repeats (see matched.json).",
        "",
    ]
    if not res["quick"]:
        L += [
            "How to read this (the full suite as configured in `benchmarks/matched.py`, `FULL`):",
            "",
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
            "reference rung itself the error is the reference's estimate.",
            "",
        ]
    L += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in res["targets"]:
        r = "—" if t["ratio"] is None else (f"{t['ratio']:.0%}" if "FLOP" in t["target"] else f"{t['ratio']:.3g}×")
        met = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        L.append(f"| {t['target']} | {r}{' (' + t['note'] + ')' if t.get('note') else ''} | {met} |")
    for key, p in res["problems"].items():
        ref = p["reference"]
        L += [
            "",
            f"### {key}: matched accuracy",
            "",
            f"Accuracy subset α = {', '.join(f'{a:.3g}' for a in ref['alphas'])} (seed 0). Reference: gflow float64 Bosh3 "
            f"rtol ladder, its own estimated error of t_η ≤ {ref['rel_err_estimate_max']:.1e} (levels below this are not resolved).",
            "",
            "| contender | level | setting | max rel. err of t_η | wall (subset) | vs gflow |",
            "|---|---|---|---|---|---|",
        ]
        for lv in LEVELS:
            k = f"{lv:g}"
            g = p["gflow"]["timed"].get(k)
            gw = g["wall_s"] if g else None
            unres = lv < ref["rel_err_estimate_max"]
            tag = " (level below the reference's error: unresolved)" if unres else ""
            if g:
                bd = (
                    " (α solved at their reference rung: the reference's estimate)"
                    if g.get("bounded_by_reference")
                    else ""
                )
                L.append(
                    f"| gflow batched (float64) | {lv:.1%}{tag} | rtol {g['rtol']:g} | {g['t_rel_err_max']:.1e}{bd} | {fmt_s(gw)} | 1× |"
                )
            else:
                L.append(
                    f"| gflow batched (float64) | {lv:.1%}{tag} | no rung looser than the reference meets it | — | — | — |"
                )
            c = p.get("gd", {}).get("chosen", {}).get(k)
            if c and gw:
                ex = "" if c["measured"] else f", extrapolated (lr from err ∝ lr fitted at lr {c['fit_from_lr']:g})"
                err = f"{c['t_rel_err_max']:.1e}" if c["t_rel_err_max"] is not None else "≤ level (predicted)"
                L.append(
                    f"| JAX GD vmapped | {lv:.1%} | lr {c['lr']:.3g}, ≤ {max(c['iters'])} iterations{ex} | {err} | "
                    f"{fmt_s(c['jax_wall_s'])} | {c['jax_wall_s'] / gw:.3g}× |"
                )
                L.append(
                    f"| numpy GD per config | {lv:.1%} | lr {c['lr']:.3g}, {sum(c['iters'])} iterations, extrapolated "
                    f"(per-iteration time × iterations) | as JAX GD | {fmt_s(c['numpy_wall_s'])} | "
                    f"{c['numpy_wall_s'] / gw:.3g}× |"
                )
            s = p.get("scipy")
            if s is not None:
                sc = s["chosen"].get(k)
                if sc and gw:
                    L.append(
                        f"| scipy RK45 per config | {lv:.1%} | rtol {sc['rtol']:g} | ≤ level | {fmt_s(sc['wall_s'])} | "
                        f"{sc['wall_s'] / gw:.3g}× |"
                    )
                else:
                    L.append(
                        f"| scipy RK45 per config | {lv:.1%} | not met within rtol ≥ {SCIPY_RTOLS[-1]:g} / {s['max_nfev']} "
                        f"evaluations | — | — | — |"
                    )
        if p.get("gd_validation"):
            L += [
                "",
                "numpy GD run in full (validation of the extrapolation): "
                + "; ".join(
                    f"α {v['alpha']:.3g}, lr {v['lr']:g}: {v['iters']} it., {fmt_s(v['wall_s'])} measured vs {fmt_s(v['extrapolated_s'])} "
                    f"extrapolated ({v['measured_over_extrapolated']:.2f}×)"
                    + (f", t_η vs JAX GD {v['t_rel_diff_vs_jax_gd']:.1e}" if "t_rel_diff_vs_jax_gd" in v else "")
                    for v in p["gd_validation"]
                ),
            ]
        if p.get("gd"):
            L += [
                "",
                "JAX GD, max rel. error of t_η by learning rate: "
                + ", ".join(
                    f"lr {r['lr']:g}: "
                    + (
                        f"{r['t_rel_err_max']:.1e}"
                        if r["t_rel_err_max"] is not None and math.isfinite(r["t_rel_err_max"])
                        else "not reached"
                    )
                    for r in p["gd"]["lrs"]
                )
                + f". Per iteration: JAX GD (all lanes) {fmt_s(p['gd']['jax_per_iter_s'])}, "
                f"numpy (one run) {fmt_s(p['gd']['numpy_per_iter_s'])}.",
            ]
            for lv, d in p["gd"]["lr_predicted_by_fit_at"].items():
                c = p["gd"]["chosen"].get(lv)
                if c and c["measured"] and len(d) > 1:
                    L += [
                        "",
                        f"Check of err ∝ lr at {float(lv):.1%}: the lr predicted from each measured lr: "
                        + ", ".join(f"{k}→{v:.3g}" for k, v in d.items())
                        + f"; largest measured lr meeting it: {c['lr']:g}.",
                    ]
        ev = p.get("evals_vs_iters")
        if ev:
            L += [
                "",
                "Gradient evaluations per run (gflow, 3 a Bosh3 step) vs GD iterations, per α: "
                + "; ".join(f"{lv}: gflow {e['gflow_evals']} vs GD {e['gd_iters']}" for lv, e in ev.items()),
            ]
    c = res.get("compile")
    if c:
        L += [
            "",
            "### Compilation",
            "",
            f"simulate: first call {c['simulate_compiles']} compiles, {c['simulate_compile_s']:.1f} s; then {c['n_alpha_tried']} α, "
            f"a new seed, η and rtol: **{c['recompiles_across_alpha_seed_eta_rtol']} recompiles**. run_sweep: {c['sweep_compiles']} "
            f"compiles, {c['sweep_compile_s']:.1f} s; a sweep over new α: {c['sweep_recompiles_new_alphas']} recompiles.",
        ]
    f = res.get("flops")
    if f:
        L += [
            "",
            "### FLOP/s",
            "",
            f"{f['problem']} shapes, {f['dtype']}: matmul (the same two n·h·d products) {f['matmul_flops'] / 1e9:.1f} GFLOP/s; "
            f"gflow's vector "
            f"field alone {f['isolated_grad_flops'] / 1e9:.1f} GFLOP/s ({f['isolated_fraction']:.0%}); inside a run (α = 0.1, "
            f"{f['in_run_steps']} steps, 3 evaluations a step counted) {f['in_run_flops'] / 1e9:.1f} GFLOP/s ({f['in_run_fraction']:.0%}).",
        ]
    lp, b, mem = res.get("loop_vs_batched"), res.get("batching"), res.get("memory")
    L += ["", "### Batching and memory", ""]
    if lp:
        L.append(
            f"- Python loop of simulate vs one run_sweep ({lp['problem']}, {lp['n_runs']} runs, {lp['dtype']}): "
            f"{fmt_s(lp['loop_wall_s'])} vs "
            f"{fmt_s(lp['sweep_wall_s'])}, **{lp['speedup']:.2f}×**."
        )
    bc = res.get("batch_ceiling")
    if bc:
        L.append(
            f"- Per-lane cost against batch size ({bc['problem']}, α = {bc['alpha']:g}, {bc['dtype']}; "
            f"`benchmarks/studies/batch_ceiling.py`): "
            + "; ".join(
                f"B = {r['batch']}: vector field {r['vf_ms_per_lane']:.3f} ms a lane-evaluation, solve "
                f"{r['solve_ms_per_lane_step']:.2f} ms a lane-step"
                for r in bc["rows"]
            )
            + f". One `simulate` call: {bc['simulate_ms_per_step']:.2f} ms a step. The gradient evaluations alone of a batched step "
            f"(3 vector fields + the loss, at the best B = {bc['evaluation_floor_batch']}) cost "
            f"{bc['evaluation_floor_ms_per_lane_step']:.2f} ms "
            f"a lane, so no batched solve can beat the loop by more than **{bc['ceiling_loop_over_batched']:.1f}×** here; "
            f"gflow's batched solve reached {bc['achieved_loop_over_batched']:.2f}× per step at its best B. The B-lane forward "
            "product x·[W_1ᵀ … W_Bᵀ] ran at "
            + ", ".join(f"{r['matmul_gflops']:.1f}" for r in bc["rows"])
            + f" GFLOP/s for B = {', '.join(str(r['batch']) for r in bc['rows'])}, against {bc['matmul_2048_gflops']:.1f} GFLOP/s "
            "for a 2048³ matmul."
        )
    if b:
        v = b["variants"]
        L.append(
            f"- Full vmap vs cost-aware batching ({b['problem']}, {b['n_runs']} runs): {fmt_s(v['full_vmap']['wall_s'])} vs "
            f"{fmt_s(v['cost_aware']['wall_s'])}, **{b['speedup_cost_aware_vs_full_vmap']:.2f}×**."
        )
    if mem:
        L.append(
            f"- Peak RSS: {mem['peak_rss_mb']:.0f} MB over {mem['n_runs']} runs ({mem['problem']}), "
            f"{mem['peak_rss_per_run_kb']:.1f} kB a run "
            f"above the starting RSS; growth between early and last chunk {mem['growth_mb']:.1f} MB."
        )
    sc = res.get("scaling")
    if sc:
        L += [
            "",
            "### Scaling (float32 sweep, wall after compilation)",
            "",
            "| n | h | d | runs | wall | steps (sum) |",
            "|---|---|---|---|---|---|",
        ]
        L += [
            f"| {r['n']} | {r['width']} | {r['d']} | {r['n_runs']} | {fmt_s(r['wall_s'])} | {r['steps_total']} |"
            for r in sc
        ]
    sc = refmod.load().get("scipy_check")
    if sc and not res["quick"]:
        L += [
            "",
            "### Check of the reference against scipy",
            "",
            f"`solve_ivp` {sc['method']} (float64, rtol {sc['rtol']:g}, {sc['nfev']} evaluations, {sc['wall_s']:.0f} s) on the "
            f"{sc['problem']} problem, η = {sc['eta']:g}, α = {sc['alpha']:g}: t_η = {sc['t_scipy']:.10g} against the reference's "
            f"{sc['t_gflow_ref']:.10g}, relative difference {sc['rel_diff']:.1e} (the reference's own estimate "
            f"{sc['ref_rel_err_estimate']:.1e}). "
            "In the rich regime DOP853 at this tolerance is not affordable here (did not finish in 10 minutes at α = 0.63).",
        ]
    if res.get("skipped"):
        L += ["", "### Not run", ""] + [f"- {s}" for s in res["skipped"]]
    return "\n".join(L)


def err_per_lr(res) -> str:
    """GD's max relative error of t_η divided by lr, at each learning rate run, per problem (how far err ∝ lr holds)."""
    parts = []
    for k, p in res["problems"].items():
        lrs = p.get("gd", {}).get("lrs", [])
        if lrs:
            parts.append(f"{k}: " + ", ".join(f"{max_err(r) / r['lr']:.3g} at {r['lr']:g}" for r in lrs))
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


RESULTS, TABLE = "matched.json", "matched.md"  # what `save` and `render` write in their folder


def save(res, out: Path, log=print):
    """Write matched.json, and the matched.md table of what is done so far (a partial run leaves both)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(jsonable(res), indent=1))
    if "targets" not in res:
        partial = {**res, "targets": targets(res), "load_end": loadavg(), "wall_s": res.get("wall_s", float("nan"))}
        try:
            write_readme(out / TABLE, "**Partial run (in progress or stopped).**\n\n" + table(partial))
        except Exception as e:  # a partial table must never stop the run
            log(f"  (partial matched.md not written: {e!r})")


def render(out: Path):
    """Rewrite matched.json's targets and matched.md's table in `out` from its matched.json."""
    res = json.loads((out / RESULTS).read_text())
    res["targets"] = targets(res)  # re-derived, so a changed target rule shows in both files
    (out / RESULTS).write_text(json.dumps(jsonable(res), indent=1))
    write_readme(out / TABLE, table(res))
    return res
