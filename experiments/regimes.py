"""The optimal-α law in the theory's regimes (issues 13, 16): α*(n), α*(h) and c* ∝ n⁻²h⁻¹ on orthogonally
separable data and on high-dimensional data, with the semi-analytic test error.

    python experiments/regimes.py [--quick] [--out runs/regimes]

Per regime and (n, h): a coarse α sweep, then a refined one around the coarse argmin (run directories
resume; nothing else is cached), over data seeds × init seeds ("units"). The error is `test_err_sa`
(exact along s, paired draws) with ties counted as errors; the 'half'/'correct' tie conventions are
derived from `test_tie_sa` (err(w) = err − (1 − w)·tie). The pre-registered rules are in EXPERIMENTS.md
("Regimes: rules fixed before the runs"). Writes <out>/<regime>_n<n>_h<h>_{coarse,fine}/, a multiplier
sweep <out>/<regime>_n<n>_h<h>_mult/, summary.json and regimes.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow import stats
from gflow.twolayer.gm_error import TIE_WEIGHTS

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa



def get_config(quick: bool = False) -> dict:
    preset = dict(
        regimes={  # data of each regime (κ = 1); λ > 0 is enforced in 'separable', reported in 'high_dim'
            "separable": dict(mode="separable", d=5, kappa=1.0, sigma=0.25),  # κ/σ = 4, Bayes error 3.2e-5
            "high_dim": dict(mode="high_dim", d=800, kappa=1.0, sigma=5.0),  # noise σ/√d per coordinate
        },
        n_values=(10, 20, 40, 80),  # n scan at h = ref_width
        width_values=(20, 200),  # h scan at n = ref_n (with ref_width: a decade)
        ref_n=40, ref_width=100,
        multiplier_n=(10, 40),  # c swept directly (model.multiplier at α = 1) at these n, h = ref_width
        n_datasets=16,  # datasets per n (data seeds fa.data_seeds(n, ·): independent across n, shared across h at one n)
        n_seeds=2,  # init seeds per dataset
        multiplier_datasets=4,  # datasets of the direct c sweep (a consistency check: c* = α*² by homogeneity)
        coarse=tuple(10.0 ** np.arange(-4.0, 1.01, 1.0)),  # α grid, stage 1
        fine_offsets=(-0.5, -0.25, 0.25, 0.5),  # stage 2: log10 offsets around the coarse argmin
        n_test=2000,  # test points: Monte-Carlo error and the draws of the semi-analytic error
        target_loss=0.01,
        n_boot=1000,
        phase1_scales=(1e-6, 1e-4, 1e-2),  # α for the Phase-1 sweeps (t_α and the angle at the end of Phase 1)
        phase1_ends=(0.9, 0.99),  # Phase 1 ends when the training loss first reaches this fraction of log 2
        phase1_datasets=16,  # datasets per n of the Phase-1 sweeps (the first of each n's datasets)
        eta_sum=0.4,  # the summed-loss convention: stop at Σ_i ℓ_i = η_sum, i.e. mean loss η_sum/n (= 0.01 at n = 40)
    )
    if quick:
        preset.update(regimes={"separable": dict(mode="separable", d=3, kappa=1.0, sigma=0.25),
                               "high_dim": dict(mode="high_dim", d=200, kappa=1.0, sigma=5.0)},
                      n_values=(8, 16), width_values=(), ref_n=8, ref_width=16, multiplier_n=(8,), n_datasets=2, n_seeds=1, multiplier_datasets=2,
                      coarse=(1e-3, 1e-1, 10.0), fine_offsets=(-0.5, 0.5), n_test=200, n_boot=20,
                      phase1_scales=(1e-5, 1e-3), phase1_datasets=2, eta_sum=0.08)
    return preset


def make_config(p, regime, n, width, scales, multiplier=None, target_loss=None, n_datasets=None) -> gflow.Config:
    """The sweep of one (regime, n, h) over α = `scales` (and c = `multiplier`, a grid axis, if given), on the
    first `n_datasets` (default: all) of the datasets of n."""
    return gflow.Config.from_fields(**p["regimes"][regime], n=n, n_test=p["n_test"], width=width, target_loss=target_loss or p["target_loss"],
                                    n_save=2, init_scales=scales, n_seeds=p["n_seeds"], data_seeds=fa.data_seeds(n, n_datasets or p["n_datasets"]),
                                    grid=None if multiplier is None else {"model.multiplier": list(multiplier)})


def units(v):
    """[data_seed, scale, seed] → [scale, data_seed·seed]."""
    v = np.moveaxis(np.asarray(v), 1, 0)
    return v.reshape(v.shape[0], -1)


def curve(results, key="final_test_err_sa"):
    """α grid, error[α, unit], tie mass, ok mask, separability per dataset, from coarse + fine sweeps."""
    alphas = np.concatenate([r["init_scale"] for r in results])
    order = np.argsort(alphas)
    cat = lambda k: np.concatenate([units(r[k]) for r in results])[order]  # noqa: E731
    return alphas[order], cat(key), cat("final_test_tie_sa"), fa.ok_mask(cat("status")), cat("final_test_err")


def setting(p, regime, n, width, out, target_loss=None, tag="") -> dict:
    name = f"{regime}_n{n}_h{width}{tag}"
    coarse = fa.sweep(make_config(p, regime, n, width, p["coarse"], target_loss=target_loss), out, name + "_coarse")
    a, err, _, ok, _ = curve([coarse])
    center = stats.refine_argmin(a, stats.seed_mean(err, ok)[0])[0]
    fine_scales = [center * 10**o for o in p["fine_offsets"]]
    fine = fa.sweep(make_config(p, regime, n, width, fine_scales, target_loss=target_loss), out, name + "_fine")
    a, err, tie, ok, mc = curve([coarse, fine])
    res = {"n": n, "width": width, "alphas": a, "separability": coarse["separability"], "draws": coarse["data_draws"],
           "bayes_error": float(coarse["bayes_error"].flat[0]), "status_counts": fa.status_counts(units(coarse["status"])),
           "ok_fraction": float(ok.mean()), "oa_of": oa_of(coarse, make_config(p, regime, n, width, p["coarse"], target_loss=target_loss))}
    for tie_name, w in TIE_WEIGHTS.items():
        o = stats.argmin_estimate(a, err - (1 - w) * tie, ok, n_boot=p["n_boot"], seed=n * 1000 + width)
        i_min = int(np.nanargmin(o.mean))
        res[tie_name] = {"mean": o.mean, "se": o.se, "alpha_star": o.x, "at_grid_edge": o.at_edge, "ci95": o.ci95, "boot": o.boot,
                         "rich_arm": float(o.mean[0] - o.mean[i_min]), "min_err": float(o.mean[i_min])}
    # datasets without a rich arm: their own curve's minimum at the smallest α (rule R2)
    per_ds = err.reshape(len(a), p["n_datasets"], -1).mean(-1)
    res["datasets_without_rich_arm"] = int(np.sum(np.nanargmin(per_ds, axis=0) == 0))
    mc_mean = stats.seed_mean(mc, ok)[0]
    res["mc_errors_at_min"] = float(mc_mean[int(np.nanargmin(res["error"]["mean"]))] * p["n_test"])  # expected count of MC errors
    return res


def multiplier_setting(p, regime, n, width, alpha_star_grid, out) -> dict:
    """c* measured directly: model.multiplier swept at α = 1 over c = α² of the α grid used for α*."""
    cs = np.asarray(alpha_star_grid) ** 2
    res = fa.sweep(make_config(p, regime, n, width, (1.0,), multiplier=cs, n_datasets=p["multiplier_datasets"]), out, f"{regime}_n{n}_h{width}_mult")
    e = np.asarray(res["final_test_err_sa"])[:, :, 0, :].reshape(len(cs), -1)  # [c, data_seed, scale, seed]
    ok = fa.ok_mask(np.asarray(res["status"])[:, :, 0, :].reshape(len(cs), -1))
    o = stats.argmin_estimate(cs, e, ok, n_boot=p["n_boot"], seed=n)
    return {"n": n, "width": width, "c_star": o.x, "at_grid_edge": o.at_edge, "ci95": o.ci95, "boot": o.boot}


def oa_of(res, cfg) -> dict:
    """OA and OF (x₊ cone, Ψ = cos(ŵ₊, x₊) at the stop of the sweep `res` of `cfg`) per α, means over units,
    and their Spearman correlations with α (claim 2: OA falls, OF rises)."""
    import dataclasses

    from scipy.stats import spearmanr

    from gflow.twolayer import theory
    from gflow.twolayer.data import make_dataset

    phis = []
    for k in cfg.sweep.data_seeds:
        ds = make_dataset(dataclasses.replace(cfg.data, seed=k))
        phis.append(float(theory.class_mean_angle(ds.x, ds.y, ds.s)))
    phi = np.asarray(phis)[:, None, None]  # [data_seed, scale, seed]
    psi, cos_s = np.asarray(res["final_Psi"]), np.asarray(res["final_cos_s"])
    kappa, sigma = float(ds.kappa), float(ds.sigma)
    oa = units(np.asarray(theory.over_alignment(phi, psi, kappa, sigma)))
    of = units(np.asarray(theory.over_fitting(cos_s, phi, psi, kappa, sigma)))
    a = np.asarray(res["init_scale"])
    out = {"alphas": a, "OA": oa.mean(1), "OF": of.mean(1), "phi_xplus_deg": np.degrees(phis)}
    out["spearman_OA"] = float(spearmanr(a, out["OA"])[0])
    out["spearman_OF"] = float(spearmanr(a, out["OF"])[0])
    return out


def phase1(p, regime, n, out) -> dict:
    """Claim 3 at one n: t_α (first time L ≤ q·log 2) against log(1/α), and the angle ∠(ŵ₊, μ₊) there, for each
    end-of-Phase-1 convention q; t_α's slope against the Phase-1 prediction 1/max‖v±‖ (mean-loss time)."""
    import dataclasses

    from gflow.twolayer import theory
    from gflow.twolayer.data import make_dataset

    a = np.asarray(p["phase1_scales"])
    res = {"n": n}
    for q in p["phase1_ends"]:
        cfg = make_config(p, regime, n, p["ref_width"], a, target_loss=float(q * np.log(2)), n_datasets=p["phase1_datasets"])
        r = fa.sweep(cfg, out, f"{regime}_n{n}_phase1_q{q}")
        ok = fa.ok_mask(units(r["status"]))
        t = np.where(ok, units(r["t_stop"]), np.nan)
        slope = np.polyfit(np.log(1 / a), t, 1)[0]  # one slope per unit
        ang = np.degrees(np.arccos(np.clip(units(r["final_Psi_mu"]), -1, 1)))
        res[f"q{q}"] = {"slope": float(np.nanmean(slope)), "slope_se": float(np.nanstd(slope) / np.sqrt(len(slope))),
                        "angle_deg": np.nanmean(ang, 1), "angle_exponent": stats.fit_power_law(a, np.nanmean(ang, 1))[0],
                        "Psi": np.nanmean(units(r["final_Psi"]), 1), "status_counts": fa.status_counts(units(r["status"]))}
    rates = []
    for k in cfg.sweep.data_seeds:
        ds = make_dataset(dataclasses.replace(cfg.data, seed=k))
        rates.append(max(float(v) for v in theory.phase1_rates(ds.x, ds.y)))
    res["predicted_slope"] = float(np.mean([1 / v for v in rates]))
    return res


def exponent(xs, entries, key="error", value="alpha_star"):
    inner = [k for k, e in enumerate(entries) if not e[key]["at_grid_edge"]] if key else list(range(len(entries)))
    get = (lambda e: e[key]) if key else (lambda e: e)  # noqa: E731
    if len(inner) < 2:
        return {"exponent": None, "ci95": None, "used": [xs[k] for k in inner]}
    x = np.asarray([xs[k] for k in inner], float)
    v = np.asarray([get(entries[k])[value] for k in inner])
    boots = np.stack([get(entries[k])["boot"] for k in inner])
    return {"exponent": stats.fit_power_law(x, v)[0], "ci95": stats.bootstrap_exponent(x, boots)[1], "used": x.tolist()}


def plot(p, summary, out):
    plt = fa.plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, key, xs_key, label in ((axes[0], "n_scan", "n", "training points n"), (axes[1], "h_scan", "width", "width h")):
        for regime, marker in zip(p["regimes"], "os"):
            entries = summary[regime][key]
            xs = np.array([e[xs_key] for e in entries], float)
            a = np.array([e["error"]["alpha_star"] for e in entries])
            ci = np.array([e["error"]["ci95"] for e in entries])
            edge = np.array([e["error"]["at_grid_edge"] for e in entries])
            f = summary[regime]["fits"][key]
            lab = f"{regime}: exponent {f['exponent']:.2f} {np.round(f['ci95'], 2).tolist()}" if f["exponent"] is not None else f"{regime}: no fit"
            ax.errorbar(xs, a, yerr=[a - ci[:, 0], ci[:, 1] - a], fmt=marker + "-", capsize=3, label=lab)
            ax.plot(xs[edge], a[edge], "x", color="k", ms=9)
        for name, row in summary.get("earlier_nonseparable", {}).get(key, {}).items():
            ax.plot(row["x"], row["alpha_star"], "^--", color="gray", label=f"earlier, {name} (EXPERIMENTS.md §4/§6)")
        xs = np.array(p["n_values"] if key == "n_scan" else sorted(set(p["width_values"]) | {p["ref_width"]}), float)
        ref = p["ref_n"] if key == "n_scan" else p["ref_width"]
        slope = -1.0 if key == "n_scan" else -0.5
        ax.plot(xs, 0.1 * (xs / ref) ** slope, "k:", lw=1, label=f"theory slope {slope:g} (level arbitrary)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted({float(v) for line in ax.get_lines() for v in line.get_xdata()})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])  # the measured values, no overlapping minor labels
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("α* (95% CI)")
        ax.legend(fontsize=7)
    fig.suptitle("Optimal init scale α* by regime: semi-analytic error, ties counted as errors (earlier rows: Monte-Carlo error)")
    fa.save_figure(fig, out, "regimes")


# α* of the earlier non-separable scans (EXPERIMENTS.md §4 optimal_alpha, §6 phase_diagram), for the figure
EARLIER = {"n_scan": {"§4 d=100 κ/σ=2": {"x": [20, 40, 80, 160], "alpha_star": [0.075, 0.099, 0.083, 0.083]},
                      "§6 d=100 κ/σ=2": {"x": [10, 20, 40, 80, 160], "alpha_star": [0.061, 0.053, 0.098, 0.073, 0.073]}},
           "h_scan": {"§4 d=100 κ/σ=2": {"x": [25, 100, 400], "alpha_star": [0.213, 0.099, 0.042]}}}


def _strip(e):
    return {k: ({kk: vv for kk, vv in v.items() if kk != "boot"} if isinstance(v, dict) else v) for k, v in e.items() if k != "boot"}


def core(p, regime, out, cache) -> dict:
    """α*(n), α*(h) and c* of one regime (claim 4), with OA/OF per α at the stop (claim 2)."""

    def get(n, h):  # the (ref_n, ref_width) setting is shared by both scans
        if (n, h) not in cache:
            cache[(n, h)] = setting(p, regime, n, h, out)
        return cache[(n, h)]

    n_scan = [get(n, p["ref_width"]) for n in p["n_values"]]
    widths = sorted(set(p["width_values"]) | {p["ref_width"]})
    h_scan = [get(p["ref_n"], h) for h in widths]
    mult = [multiplier_setting(p, regime, n, p["ref_width"], cache[(n, p["ref_width"])]["alphas"], out) for n in p["multiplier_n"]]
    fits = {"n_scan": exponent(p["n_values"], n_scan), "h_scan": exponent(widths, h_scan),
            "c_direct_n": exponent(list(p["multiplier_n"]), mult, key=None, value="c_star")}
    fits["ties"] = {t: {"n_scan": exponent(p["n_values"], n_scan, key=t), "h_scan": exponent(widths, h_scan, key=t)} for t in TIE_WEIGHTS}
    print(f"{regime}: α*(n) {[round(e['error']['alpha_star'], 4) for e in n_scan]} exponent {fits['n_scan']['exponent']} CI {fits['n_scan']['ci95']}; "
          f"α*(h) {[round(e['error']['alpha_star'], 4) for e in h_scan]} exponent {fits['h_scan']['exponent']} CI {fits['h_scan']['ci95']}; "
          f"c* direct {[round(m['c_star'], 6) for m in mult]} vs α*² {[round(cache[(n, p['ref_width'])]['error']['alpha_star'] ** 2, 6) for n in p['multiplier_n']]}",
          flush=True)
    return {"n_scan": [_strip(e) for e in n_scan], "h_scan": [_strip(e) for e in h_scan], "multiplier": [_strip(e) for e in mult], "fits": fits}


def conventions(p, regime, out, cache) -> dict:
    """Claim 3 at two Phase-1 ends, and α*(n) with η on the summed loss (η_sum/n on the mean loss)."""
    ph = [phase1(p, regime, n, out) for n in p["n_values"]]
    ns = np.asarray(p["n_values"], float)
    t_alpha = {f"q{q}": stats.fit_power_law(ns, [e[f"q{q}"]["slope"] for e in ph])[0] for q in p["phase1_ends"]}
    t_alpha["predicted"] = stats.fit_power_law(ns, [e["predicted_slope"] for e in ph])[0]
    eta_sum = [cache[(n, p["ref_width"])] if np.isclose(p["eta_sum"] / n, p["target_loss"])
               else setting(p, regime, n, p["ref_width"], out, target_loss=p["eta_sum"] / n, tag="_etasum") for n in p["n_values"]]
    fit = exponent(p["n_values"], eta_sum)
    print(f"{regime}: t_α slope exponents in n (mean-loss time) {t_alpha}; α*(n) with η on the summed loss {fit}", flush=True)
    return {"phase1": ph, "t_alpha_exponents": t_alpha, "n_scan_eta_sum": [_strip(e) for e in eta_sum], "fit_eta_sum": fit}


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/regimes")
    p = get_config(args.quick)
    timer = fa.Timer()
    summary = {"preset": p, "earlier_nonseparable": EARLIER}
    caches = {regime: {} for regime in p["regimes"]}
    for regime in p["regimes"]:  # pass 1: the law itself, every regime
        summary[regime] = core(p, regime, args.out, caches[regime])
    plot(p, summary, args.out)
    summary["wall_s_core"] = timer.seconds()
    fa.write_summary(args.out, summary)
    for regime in p["regimes"]:  # pass 2: conventions
        summary[regime]["conventions"] = conventions(p, regime, args.out, caches[regime])
    summary["wall_s"] = timer.seconds()
    summary["sweeps"] = timer.sweeps()
    fa.write_summary(args.out, summary)
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
