"""Claim 1, the U-curve: test error vs init scale α is U-shaped, with an interior optimum α*, in
orthogonally separable settings (the theory's assumption) and beyond.

    python experiments/u_curve.py [--quick] [--out runs/u_curve]

For each setting (n, d, κ/σ) one sweep over α × independent datasets (data seeds `fa.data_seeds(n, ·)`;
'separable' settings redraw each training set until λ > 0) × init seeds. The error is the semi-analytic
test error at the stop L = η with its tie mass; it is reported with ties counted as errors and as half an
error. The arms of the U (rich: E(smallest α) − min over α; lazy: E(largest α) − min) get 95% intervals from
the hierarchical bootstrap (datasets, then seeds) and the label of `gflow.stats.verdict_label` for the sign
claim "> 0". The analytic error E(ŵ₊) of the effective linear predictor is reported beside it.
Writes <out>/<setting>/ (sweeps), <out>/summary.json and <out>/u_curve.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow.twolayer.gm_error import TIE_WEIGHTS

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
    from . import regimes
else:  # run as python experiments/<name>.py
    import fls_analysis as fa
    import regimes


def get_config(quick: bool = False) -> dict:
    settings = [
        # name, training points n, dimension d, signal κ, noise σ, data mode ('separable': λ > 0 by redrawing)
        dict(name="sep_n20_d5_snr3", n=20, d=5, kappa=1.0, sigma=1 / 3, mode="separable"),
        dict(name="sep_n40_d5_snr3.5", n=40, d=5, kappa=1.0, sigma=1 / 3.5, mode="separable"),
        dict(name="sep_n20_d10_snr3.5", n=20, d=10, kappa=1.0, sigma=1 / 3.5, mode="separable"),
        dict(name="nonsep_n20_d5_snr2", n=20, d=5, kappa=1.0, sigma=0.5, mode="gaussian"),
        dict(name="nonsep_n40_d100_snr2", n=40, d=100, kappa=1.0, sigma=0.5, mode="gaussian"),
    ]
    preset = dict(
        settings=settings,
        width=100,  # hidden neurons h
        n_test=2000,  # test points: Monte-Carlo error and the draws of the semi-analytic error
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(10.0 ** np.arange(-5.0, 1.01, 0.5)),  # α grid, half decades
        n_datasets=12,  # independent datasets per setting
        n_seeds=2,  # init seeds per dataset
        n_boot=1000,  # hierarchical bootstrap replicates
    )
    if quick:
        preset.update(
            settings=[dict(settings[0], d=3), settings[3]],
            width=16,
            n_test=200,
            init_scales=(1e-4, 1e-1, 3.0),
            n_datasets=2,
            n_seeds=1,
            n_boot=20,
        )
    return preset


def make_config(p: dict, s: dict) -> gflow.Config:
    return gflow.Config.from_fields(
        mode=s["mode"],
        n=s["n"],
        d=s["d"],
        kappa=s["kappa"],
        sigma=s["sigma"],
        n_test=p["n_test"],
        width=p["width"],
        target_loss=p["target_loss"],
        n_save=2,
        sa_final=True,
        init_scales=p["init_scales"],
        n_seeds=p["n_seeds"],
        data_seeds=fa.data_seeds(s["n"], p["n_datasets"]),
    )


def analyze(p: dict, s: dict, res: dict) -> dict:
    alphas, err, tie, ok, _ = regimes.curve([res])
    lam = np.asarray(res["separability"], np.float64).ravel()
    in_regime = bool((lam > 0).all())  # the theory assumes orthogonal separability of every training set
    run = {"err": err, "tie": tie, "ok": ok}
    out = {
        "setting": s,
        "alpha": alphas,
        "separability": lam,
        "in_regime": in_regime,
        "bayes_error": float(np.asarray(res["bayes_error"]).flat[0]),
        "status_counts": fa.status_counts(regimes.units(res["status"])),
        "tie_mass": fa.dataset_curve(tie, ok)[0],
    }
    for ties in TIE_WEIGHTS:
        v = fa.with_ties(err, tie, ties)
        mean, se, count = fa.dataset_curve(v, ok)
        star = fa.alpha_star_scan([alphas], [v], [ok], None, n_boot=p["n_boot"], seed=5)[0]
        arm = regimes.rich_arm(p, [run], None, ties, in_regime)[0]
        out[ties] = dict(
            arm,
            mean=mean,
            se=se,
            datasets=count,
            alpha_star=star["alpha_star"],
            alpha_star_at_grid_edge=star["at_grid_edge"],
            alpha_star_ci95=star["ci95"],
        )
    lin = fa.by_dataset(res["final_lin_err"])  # analytic E(ŵ₊): no test sample, no ties
    lin_mean, lin_se, _ = fa.dataset_curve(lin, ok)
    lin_arm = regimes.rich_arm(p, [{"err": lin, "tie": np.zeros_like(lin), "ok": ok}], None, "error", in_regime)[0]
    out["lin"] = dict(lin_arm, mean=lin_mean, se=lin_se)
    return out


def plot(results: list[dict], out) -> None:
    plt = fa.plt
    m = len(results)
    cols = min(m, 3)
    rows = -(-m // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), constrained_layout=True, squeeze=False)
    for ax, r in zip(axes.flat, results):
        alpha = np.asarray(r["alpha"])
        for key, label, color, ls in (
            ("error", "network, ties = error", "tab:blue", "-"),
            ("half", "network, ties = half", "tab:green", "--"),
        ):
            mean, se = np.asarray(r[key]["mean"]), np.asarray(r[key]["se"])
            ax.plot(alpha, mean, marker="o", ms=4, color=color, ls=ls, label=label + " (± s.e. over datasets)")
            ax.fill_between(alpha, mean - se, mean + se, color=color, alpha=0.2, lw=0)
        ax.plot(alpha, r["lin"]["mean"], marker="s", ms=3, color="tab:orange", label="effective predictor E(ŵ₊)")
        ax.plot(alpha, np.maximum(r["tie_mass"], 1e-7), color="0.5", ls=":", label="tie mass")
        ax.axhline(r["bayes_error"], color="k", ls="--", lw=1, label=f"Bayes error E* = {r['bayes_error']:.2g}")
        s = r["setting"]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("init scale α (small: strong feature learning)")
        ax.set_ylabel("test error at the stop L = η")
        lam = np.asarray(r["separability"])
        kind = "orthogonally separable" if r["in_regime"] else f"λ > 0 in {int((lam > 0).sum())}/{len(lam)} datasets"
        ax.set_title(f"n={s['n']}, d={s['d']}, κ/σ={s['kappa'] / s['sigma']:.3g}: {kind}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[m:]:
        ax.axis("off")
    fig.suptitle(
        "U-curve: test error vs α, mean over independent datasets (semi-analytic error; ties as errors and as half)"
    )
    fa.save_figure(fig, out, "u_curve")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/u_curve")
    p = get_config(args.quick)
    timer = fa.Timer()
    results = []
    for s in p["settings"]:
        r = analyze(p, s, fa.sweep(make_config(p, s), args.out, s["name"]))
        results.append(r)
        e, h = r["error"], r["half"]
        print(
            f"{s['name']:>22}: λ>0 in {int((r['separability'] > 0).sum())}/{len(r['separability'])} E*={r['bayes_error']:.2e} "
            f"tie mass at α_min {r['tie_mass'][0]:.2e}; rich arm error {e['rich_arm']:.2e} {e['rich_arm_ci95']} → {e['rich_arm_label']}, "
            f"half {h['rich_arm']:.2e} {h['rich_arm_ci95']} → {h['rich_arm_label']}; lazy arm error {e['lazy_arm']:.2e} "
            f"{e['lazy_arm_ci95']} → "
            f"{e['lazy_arm_label']}; α* {e['alpha_star']:.3g} {e['alpha_star_ci95']}",
            flush=True,
        )
    plot(results, args.out)
    summary = fa.strip_boot({"preset": p, "results": results, "wall_s": timer.seconds(), "sweeps": timer.sweeps()})
    fa.write_summary(args.out, summary)
    print(f"wall {summary['wall_s']:.1f} s; figure {args.out}/u_curve.png")
    return summary


if __name__ == "__main__":
    main()
