"""The optimal-α law in the theory's regimes (issues 13, 16): α*(n), α*(h) and c* ∝ n⁻²h⁻¹ on orthogonally
separable data and on high-dimensional data, with the semi-analytic test error.

    python experiments/regimes.py [--quick] [--out runs/regimes] [--no-eta-sum]

Per regime and (n, h): a coarse α sweep, then a refined one around the coarse argmin (run directories
resume; nothing else is cached), over data seeds × init seeds ("units"). The error is `test_err_sa`
(exact along s, paired draws) with ties counted as errors; the 'half'/'correct' tie conventions are
derived from `test_tie_sa` (err(w) = err − (1 − w)·tie). The pre-registered rules are in
docs/experiments-methods.md ("The regime runs: rules fixed before the runs"). Writes <out>/<regime>_n<n>_h<h>_{coarse,fine}/, a multiplier
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
        ref_n=40,
        ref_width=100,
        multiplier_n=(40,),  # c swept directly (model.multiplier at α = 1) at these n, h = ref_width
        multiplier_min_alpha=1e-2,  # ... over c = α² of the setting's α grid with α ≥ this (smaller c stretch time by 1/c to t_max)
        n_datasets=16,  # datasets per n (data seeds fa.data_seeds(n, ·): independent across n, shared across h at one n)
        n_seeds=2,  # init seeds per dataset
        multiplier_datasets=2,  # datasets of the direct c sweep (a consistency check: c* = α*² by homogeneity)
        coarse=tuple(10.0 ** np.arange(-4.0, 1.01, 1.0)),  # α grid, stage 1
        fine_offsets=(-0.5, -0.25, 0.25, 0.5),  # stage 2: log10 offsets around the coarse argmin
        n_test=2000,  # test points: Monte-Carlo error and the draws of the semi-analytic error
        target_loss=0.01,
        n_boot=1000,
        phase1_scales=(1e-6, 1e-4, 1e-2),  # α for the Phase-1 sweeps (t_α and the angle at the end of Phase 1)
        phase1_ends=(0.9, 0.99),  # Phase 1 ends when the training loss first reaches this fraction of log 2
        phase1_datasets=12,  # datasets per n of the Phase-1 sweeps (the first of each n's datasets)
        eta_sum=0.4,  # the summed-loss convention: stop at Σ_i ℓ_i = η_sum, i.e. mean loss η_sum/n (= 0.01 at n = 40); None: skip
    )
    if quick:
        preset.update(
            regimes={
                "separable": dict(mode="separable", d=3, kappa=1.0, sigma=0.25),
                "high_dim": dict(mode="high_dim", d=200, kappa=1.0, sigma=5.0),
            },
            n_values=(8, 16),
            width_values=(),
            ref_n=8,
            ref_width=16,
            multiplier_n=(8,),
            multiplier_min_alpha=1e-3,
            n_datasets=2,
            n_seeds=1,
            multiplier_datasets=2,
            coarse=(1e-3, 1e-1, 10.0),
            fine_offsets=(-0.5, 0.5),
            n_test=200,
            n_boot=20,
            phase1_scales=(1e-5, 1e-3),
            phase1_datasets=2,
            eta_sum=0.08,
        )
    return preset


def make_config(p, regime, n, width, scales, multiplier=None, target_loss=None, n_datasets=None) -> gflow.Config:
    """The sweep of one (regime, n, h) over α = `scales` (and c = `multiplier`, a grid axis, if given), on the
    first `n_datasets` (default: all) of the datasets of n."""
    return gflow.Config.from_fields(
        **p["regimes"][regime],
        n=n,
        n_test=p["n_test"],
        width=width,
        target_loss=target_loss or p["target_loss"],
        n_save=2,
        sa_final=True,
        init_scales=scales,
        n_seeds=p["n_seeds"],
        data_seeds=fa.data_seeds(n, n_datasets or p["n_datasets"]),
        grid=None if multiplier is None else {"model.multiplier": list(multiplier)},
    )


def units(v):
    """[data_seed, scale, seed] → [scale, data_seed·seed]."""
    v = np.moveaxis(np.asarray(v), 1, 0)
    return v.reshape(v.shape[0], -1)


def curve(results, key="final_test_err_sa"):
    """α grid, error, tie mass, ok mask, Monte-Carlo error, each [α, dataset, seed], from coarse + fine sweeps."""
    alphas = np.concatenate([r["init_scale"] for r in results])
    order = np.argsort(alphas)
    cat = lambda k: np.concatenate([fa.by_dataset(r[k]) for r in results])[order]  # noqa: E731
    return alphas[order], cat(key), cat("final_test_tie_sa"), fa.ok_mask(cat("status")), cat("final_test_err")


def setting(p, regime, n, width, out, target_loss=None, tag="") -> dict:
    """The sweeps of one (regime, n, h): a coarse α grid, then a refined one around the coarse argmin of the
    pooled curve (ties = error). Returns the raw [α, dataset, seed] arrays and the data report."""
    name = f"{regime}_n{n}_h{width}{tag}"
    coarse = fa.sweep(make_config(p, regime, n, width, p["coarse"], target_loss=target_loss), out, name + "_coarse")
    a, err, _, ok, _ = curve([coarse])
    center = stats.refine_argmin(
        a, stats.seed_mean(units(coarse["final_test_err_sa"]), fa.ok_mask(units(coarse["status"])))[0]
    )[0]
    fine_scales = [center * 10**o for o in p["fine_offsets"]]
    fine = fa.sweep(make_config(p, regime, n, width, fine_scales, target_loss=target_loss), out, name + "_fine")
    a, err, tie, ok, mc = curve([coarse, fine])
    return {
        "n": n,
        "width": width,
        "alphas": a,
        "err": err,
        "tie": tie,
        "ok": ok,
        "mc": mc,
        "separability": np.asarray(coarse["separability"]).ravel(),
        "draws": np.asarray(coarse["data_draws"]).ravel(),
        "bayes_error": float(np.asarray(coarse["bayes_error"]).flat[0]),
        "status_counts": fa.status_counts(units(coarse["status"])),
        "ok_fraction": float(ok.mean()),
        "oa_of": oa_of(coarse, make_config(p, regime, n, width, p["coarse"], target_loss=target_loss)),
    }


def rich_arm(p, runs, groups, ties, in_regime) -> list[dict]:
    """The arms of each setting's U under `ties`: rich = E(smallest α) − min over α, lazy = E(largest α) − min,
    of the pooled curve, each with its hierarchical 95% interval (datasets, then seeds; joint within `groups`)
    and its label (the sign claim '> 0': the arm exists)."""

    def arms(i, v, o):
        m = fa.dataset_curve(v, o)[0]
        return float(m[0] - np.nanmin(m)), float(m[-1] - np.nanmin(m))

    settings = [(fa.with_ties(r["err"], r["tie"], ties), r["ok"]) for r in runs]
    rich = stats.hierarchical_bootstrap(
        lambda i, v, o: arms(i, v, o)[0], settings, groups=groups, n_boot=p["n_boot"], seed=17
    )
    lazy = stats.hierarchical_bootstrap(
        lambda i, v, o: arms(i, v, o)[1], settings, groups=groups, n_boot=p["n_boot"], seed=19
    )
    out = []
    for i, st in enumerate(settings):
        r, lz = arms(i, *st)
        ci_r, ci_l = stats.interval(rich[i]), stats.interval(lazy[i])
        out.append(
            {
                "rich_arm": r,
                "rich_arm_ci95": ci_r,
                "rich_arm_label": stats.verdict_label("> 0", ci_r, in_regime=in_regime),
                "lazy_arm": lz,
                "lazy_arm_ci95": ci_l,
                "lazy_arm_label": stats.verdict_label("> 0", ci_l, in_regime=in_regime),
            }
        )
    return out


def scan(p, runs, xs, groups, theory_exponent) -> dict:
    """α* of every setting of a scan under each tie convention (pooled and per-dataset rules, hierarchical
    intervals drawn jointly within `groups`), the exponents across the scan and their labels."""
    in_regime = bool(all((r["separability"] > 0).all() for r in runs))  # the theory assumes orthogonal separability
    out = {"in_regime": in_regime, "theory_exponent": theory_exponent, "settings": [{} for _ in runs], "fits": {}}
    for ties in TIE_WEIGHTS:
        vals = [fa.with_ties(r["err"], r["tie"], ties) for r in runs]
        entries = fa.alpha_star_scan(
            [r["alphas"] for r in runs], vals, [r["ok"] for r in runs], groups, n_boot=p["n_boot"], seed=5
        )
        arms = rich_arm(p, runs, groups, ties, in_regime)
        for k, (e, arm, r) in enumerate(zip(entries, arms, runs)):
            e.update(arm, min_err=float(np.nanmin(e["mean"])), tie_mass=fa.dataset_curve(r["tie"], r["ok"])[0])
            out["settings"][k][ties] = e
        fits = {rule: fa.scan_exponent(xs, entries, rule) for rule in ("pooled", "median")}
        for f in fits.values():
            f["label"] = stats.verdict_label(theory_exponent, f["ci95"], in_regime=in_regime)
        out["fits"][ties] = fits
    for k, r in enumerate(runs):
        per_ds = stats.seed_mean(r["err"], r["ok"], axis=2)[0]  # [α, dataset]: datasets without a rich arm (rule R2)
        out["settings"][k].update(
            {
                key: r[key]
                for key in (
                    "n",
                    "width",
                    "alphas",
                    "separability",
                    "draws",
                    "bayes_error",
                    "status_counts",
                    "ok_fraction",
                    "oa_of",
                )
            },
            datasets_without_rich_arm=int(
                np.sum(np.nanargmin(np.where(np.isfinite(per_ds), per_ds, np.inf), axis=0) == 0)
            ),
            mc_errors_at_min=float(
                stats.seed_mean(units_of(r["mc"]), units_of(r["ok"]))[0][
                    int(np.nanargmin(out["settings"][k]["error"]["mean"]))
                ]
                * p["n_test"]
            ),
        )
    return out


def units_of(v):
    """[α, dataset, seed] → [α, dataset·seed]."""
    v = np.asarray(v)
    return v.reshape(v.shape[0], -1)


def multiplier_setting(p, regime, n, width, run, out) -> dict:
    """c* measured directly: model.multiplier swept at α = 1 over c = α² of the α grid of `run` (the α sweep
    of this setting), on its first `multiplier_datasets` datasets; and α*² of the α sweep on those datasets.
    By the 2-homogeneity of the net the two are the same flow with time rescaled: a consistency check."""
    keep = np.asarray(run["alphas"]) >= p["multiplier_min_alpha"]
    alphas = np.asarray(run["alphas"])[keep]
    cs = alphas**2
    k = p["multiplier_datasets"]
    res = fa.sweep(
        make_config(p, regime, n, width, (1.0,), multiplier=cs, n_datasets=k), out, f"{regime}_n{n}_h{width}_mult"
    )
    e = np.asarray(res["final_test_err_sa"])[:, :, 0, :]  # [c, data_seed, scale, seed] → [c, data_seed, seed]
    ok = fa.ok_mask(np.asarray(res["status"])[:, :, 0, :])
    c_star = stats.pooled_argmin(cs, e, ok)
    a_star = stats.pooled_argmin(alphas, run["err"][keep, :k], run["ok"][keep, :k])
    return {
        "n": n,
        "width": width,
        "c_star": c_star,
        "alpha_star_sq": a_star**2,
        "relative_difference": abs(c_star / a_star**2 - 1),
        "status_counts": fa.status_counts(np.asarray(res["status"])),
        "label": stats.verdict_label(a_star**2, [c_star, c_star], in_regime=True, identity=True),
    }


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
    end-of-Phase-1 convention q, as raw arrays: 'slope' [dataset, seed] (the slope of t_α in log(1/α) of each
    unit, mean-loss time), 'angle' [α, dataset, seed] (degrees); and the Phase-1 prediction 1/max‖v±‖ per dataset."""
    import dataclasses

    from gflow.twolayer import theory
    from gflow.twolayer.data import make_dataset

    a = np.asarray(p["phase1_scales"])
    res = {"n": n}
    for q in p["phase1_ends"]:
        cfg = make_config(
            p, regime, n, p["ref_width"], a, target_loss=float(q * np.log(2)), n_datasets=p["phase1_datasets"]
        )
        r = fa.sweep(cfg, out, f"{regime}_n{n}_phase1_q{q}")
        ok = fa.ok_mask(fa.by_dataset(r["status"]))
        t = np.where(ok, fa.by_dataset(r["t_stop"]), np.nan)  # [α, dataset, seed]
        x = np.log(1 / a) - np.log(1 / a).mean()
        slope = np.tensordot(x, t, axes=(0, 0)) / np.sum(x**2)  # least-squares slope of each unit
        ang = np.degrees(np.arccos(np.clip(fa.by_dataset(r["final_Psi_mu"]), -1, 1)))
        res[f"q{q}"] = {
            "slope": slope,
            "slope_ok": np.isfinite(slope),
            "angle": ang,
            "angle_ok": ok,
            "status_counts": fa.status_counts(fa.by_dataset(r["status"])),
        }
    rates = []
    for k in cfg.sweep.data_seeds:
        ds = make_dataset(dataclasses.replace(cfg.data, seed=k))
        rates.append(max(float(v) for v in theory.phase1_rates(ds.x, ds.y)))
    res["predicted_slope_per_dataset"] = 1 / np.asarray(rates)
    res["predicted_slope"] = float(np.mean(1 / np.asarray(rates)))
    return res


def phase1_fits(p, ph, in_regime) -> dict:
    """t_α's n-dependence and the end-of-Phase-1 angle's α-dependence, with hierarchical intervals (the n
    values are independent datasets), labelled against the theory: t_α = Θ(log(1/α)/n) in summed-loss time
    (exponent −1; mean-loss time is n × summed-loss time, so the mean-loss exponent is +1 larger) and a final
    angle ∝ √α (local exponent on the two largest Phase-1 α, at every n)."""
    ns = np.asarray([e["n"] for e in ph], float)
    a = np.asarray(p["phase1_scales"])
    out = {}
    for q in p["phase1_ends"]:
        key = f"q{q}"
        mean_slope = lambda i, sl, o: float(np.nanmean(np.where(o, sl, np.nan)))  # noqa: E731
        sets = [(e[key]["slope"], e[key]["slope_ok"]) for e in ph]
        boot = stats.hierarchical_bootstrap(mean_slope, sets, n_boot=p["n_boot"], seed=23)
        slopes = [mean_slope(i, *st) for i, st in enumerate(sets)]
        mean_exp = stats.fit_power_law(ns, slopes)[0]
        ci_mean = stats.bootstrap_exponent(ns, boot)[1]
        ci_sum = [c - 1 for c in ci_mean]
        ratio = [sl / e["predicted_slope"] for sl, e in zip(slopes, ph)]

        def local(i, ang, o):
            m = fa.dataset_curve(ang, o)[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(np.log(m[-1] / m[-2]) / np.log(a[-1] / a[-2]))

        angle_sets = [(e[key]["angle"], e[key]["angle_ok"]) for e in ph]
        angle_boot = stats.hierarchical_bootstrap(local, angle_sets, n_boot=p["n_boot"], seed=29)
        angles = []
        for i, (e, st) in enumerate(zip(ph, angle_sets)):
            ci = stats.interval(angle_boot[i])
            angles.append(
                {
                    "n": e["n"],
                    "angle_deg": fa.dataset_curve(*st)[0],
                    "local_exponent": local(i, *st),
                    "ci95": ci,
                    "label": stats.verdict_label(0.5, ci, in_regime=in_regime),
                }
            )
        out[key] = {
            "slope": slopes,
            "slope_ci95": [stats.interval(b) for b in boot],
            "slope_over_predicted": ratio,
            "exponent_mean_time": mean_exp,
            "ci95_mean_time": ci_mean,
            "exponent_sum_time": mean_exp - 1,
            "ci95_sum_time": ci_sum,
            "label_sum_time": stats.verdict_label(-1.0, ci_sum, in_regime=in_regime),
            "label_mean_time": stats.verdict_label(-1.0, ci_mean, in_regime=in_regime),
            "angle": angles,
        }
    out["predicted_exponent_mean_time"] = stats.fit_power_law(ns, [e["predicted_slope"] for e in ph])[0]
    return out


def plot(p, summary, out):
    plt = fa.plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, key, xs_key, label in (
        (axes[0], "n_scan", "n", "training points n"),
        (axes[1], "h_scan", "width", "width h"),
    ):
        for regime, marker in zip(p["regimes"], "os"):
            sc = summary[regime][key]
            for ties, ls, mfc in (("error", "-", None), ("half", "--", "w")):
                entries = [st[ties] for st in sc["settings"]]
                xs = np.array([st[xs_key] for st in sc["settings"]], float)
                a = np.array([e["alpha_star"] for e in entries])
                ci = np.array([e["ci95"] for e in entries])
                edge = np.array([e["at_grid_edge"] for e in entries])
                f = sc["fits"][ties]["pooled"]
                lab = (
                    f"{regime}, ties = {ties}: exponent {f['exponent']:.2f} {np.round(f['ci95'], 2).tolist()} ({f['label']})"
                    if f["exponent"] is not None
                    else f"{regime}, ties = {ties}: no fit"
                )
                ax.errorbar(
                    xs * (1.03 if ties == "half" else 1),
                    a,
                    yerr=np.clip([a - ci[:, 0], ci[:, 1] - a], 0, None),
                    fmt=marker + ls,
                    mfc=mfc,
                    capsize=3,
                    label=lab,
                )
                ax.plot(xs[edge], a[edge], "x", color="k", ms=9)
        xs = np.array(p["n_values"] if key == "n_scan" else sorted(set(p["width_values"]) | {p["ref_width"]}), float)
        ref = p["ref_n"] if key == "n_scan" else p["ref_width"]
        slope = -1.0 if key == "n_scan" else -0.5
        ax.plot(xs, 0.1 * (xs / ref) ** slope, "k:", lw=1, label=f"theory slope {slope:g} (level arbitrary)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{t:g}" for t in xs])  # the measured values (the 'half' points sit 3% to the right)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("α* (pooled rule; hierarchical 95% CI over datasets)")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Optimal init scale α* by regime: semi-analytic error, ties (f = 0) counted as errors (solid) or half (dashed); "
        f"{p['n_datasets']} independent datasets per n × {p['n_seeds']} seeds",
        fontsize=9,
    )
    fa.save_figure(fig, out, "regimes")


def core(p, regime, out, cache) -> dict:
    """α*(n), α*(h) and c* of one regime (claim 4), with OA/OF per α at the stop (claim 2)."""
    from gflow.twolayer import theory

    def get(n, h):  # the (ref_n, ref_width) setting is shared by both scans
        if (n, h) not in cache:
            cache[(n, h)] = setting(p, regime, n, h, out)
        return cache[(n, h)]

    n_runs = [get(n, p["ref_width"]) for n in p["n_values"]]
    widths = sorted(set(p["width_values"]) | {p["ref_width"]})
    h_runs = [get(p["ref_n"], h) for h in widths]
    n_scan = scan(p, n_runs, list(p["n_values"]), list(p["n_values"]), theory.ALPHA_STAR_N_EXPONENT)
    h_scan = scan(p, h_runs, widths, [p["ref_n"]] * len(widths), theory.ALPHA_STAR_WIDTH_EXPONENT)
    mult = [
        multiplier_setting(p, regime, n, p["ref_width"], cache[(n, p["ref_width"])], out) for n in p["multiplier_n"]
    ]
    for key, sc in (("n", n_scan), ("h", h_scan)):
        f = sc["fits"]
        print(
            f"{regime}: α*({key}) pooled {[round(st['error']['alpha_star'], 4) for st in sc['settings']]}; "
            + "; ".join(
                f"ties={t} {r}: {f[t][r]['exponent']} {f[t][r]['ci95']} → {f[t][r]['label']}" for t in f for r in f[t]
            ),
            flush=True,
        )
    print(f"{regime}: c* direct {[m['c_star'] for m in mult]} vs α*² {[m['alpha_star_sq'] for m in mult]}", flush=True)
    return {"n_scan": n_scan, "h_scan": h_scan, "multiplier": mult}


def conventions(p, regime, out, cache) -> dict:
    """Claim 3 at two Phase-1 ends, and α*(n) with η on the summed loss (η_sum/n on the mean loss)."""
    from gflow.twolayer import theory

    ph = [phase1(p, regime, n, out) for n in p["n_values"]]
    in_regime = bool(all((cache[(n, p["ref_width"])]["separability"] > 0).all() for n in p["n_values"]))
    fits = phase1_fits(p, ph, in_regime)
    eta_scan = None
    if p["eta_sum"] is not None:
        eta_sum = [
            cache[(n, p["ref_width"])]
            if np.isclose(p["eta_sum"] / n, p["target_loss"])
            else setting(p, regime, n, p["ref_width"], out, target_loss=p["eta_sum"] / n, tag="_etasum")
            for n in p["n_values"]
        ]
        eta_scan = scan(p, eta_sum, list(p["n_values"]), list(p["n_values"]), theory.ALPHA_STAR_N_EXPONENT)
    print(
        f"{regime}: t_α exponent in n (summed-loss time) "
        + "; ".join(
            f"q{q}: {fits[f'q{q}']['exponent_sum_time']:.3f} {np.round(fits[f'q{q}']['ci95_sum_time'], 3).tolist()} → "
            f"{fits[f'q{q}']['label_sum_time']}"
            for q in p["phase1_ends"]
        )
        + (f"; α*(n) with η on the summed loss {eta_scan['fits']['error']['pooled']}" if eta_scan else ""),
        flush=True,
    )
    ph_out = [
        {
            "n": e["n"],
            "predicted_slope": e["predicted_slope"],
            **{f"q{q}": {"status_counts": e[f"q{q}"]["status_counts"]} for q in p["phase1_ends"]},
        }
        for e in ph
    ]
    return {"phase1": ph_out, "phase1_fits": fits, "eta_sum_scan": eta_scan}


def main(argv=None) -> dict:
    args = fa.parse_args(
        __doc__,
        argv,
        default_out="runs/regimes",
        extra=lambda ap: ap.add_argument(
            "--no-eta-sum",
            action="store_true",
            help="skip the summed-loss η convention pass (4 more settings per regime)",
        ),
    )
    p = get_config(args.quick)
    if args.no_eta_sum:
        p["eta_sum"] = None
    timer = fa.Timer()
    summary = {"preset": p}
    caches = {regime: {} for regime in p["regimes"]}
    for regime in p["regimes"]:  # pass 1: the law itself, every regime
        summary[regime] = core(p, regime, args.out, caches[regime])
    plot(p, summary, args.out)
    summary["wall_s_core"] = timer.seconds()
    fa.write_summary(args.out, fa.strip_boot(summary))
    for regime in p["regimes"]:  # pass 2: conventions
        summary[regime]["conventions"] = conventions(p, regime, args.out, caches[regime])
    summary["wall_s"] = timer.seconds()
    summary["sweeps"] = timer.sweeps()
    summary = fa.strip_boot(summary)
    fa.write_summary(args.out, summary)
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
