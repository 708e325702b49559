"""Claim 1, the U-curve: test error vs init scale α is U-shaped, with an interior optimum α*, in
orthogonally separable settings (the theory's assumption) and beyond.

    python experiments/u_curve.py [--quick] [--out runs/u_curve]

For each setting (n, d, κ/σ, data seed) one sweep over α × init seeds; the network's Monte-Carlo test
error and the analytic error E(ŵ₊) of its effective linear predictor, both at the stop L = η.
Writes <out>/<setting>/ (sweeps), <out>/summary.json and <out>/u_curve.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow import stats

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa


def get_config(quick: bool = False) -> dict:
    settings = [
        # name, training points n, dimension d, signal κ, noise σ, data seed, expected orthogonal separability.
        # The data seeds of the separable settings were picked so that λ > 0 (checked at run time).
        dict(name="sep_n20_d5_snr3", n=20, d=5, kappa=1.0, sigma=1 / 3, data_seed=0, separable=True),
        dict(name="sep_n40_d5_snr3.5", n=40, d=5, kappa=1.0, sigma=1 / 3.5, data_seed=0, separable=True),
        dict(name="sep_n20_d10_snr3.5", n=20, d=10, kappa=1.0, sigma=1 / 3.5, data_seed=3, separable=True),
        dict(name="nonsep_n20_d5_snr2", n=20, d=5, kappa=1.0, sigma=0.5, data_seed=0, separable=False),
        dict(name="nonsep_n40_d100_snr2", n=40, d=100, kappa=1.0, sigma=0.5, data_seed=0, separable=False),
    ]
    preset = dict(
        settings=settings,
        width=100,  # hidden neurons h
        n_test=100_000,  # Monte-Carlo test points at the stop (Bayes errors down to 2e-4 need ~1e5)
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-5, 1, 13)),  # α grid
        n_seeds=8,  # init seeds per α (one dataset per setting)
        n_boot=1000,  # bootstrap replicates for the α* interval
        fresh_test=400_000,  # fresh test points for the paired left-arm test (α_min vs the grid optimum)
    )
    if quick:
        preset.update(settings=[settings[0], settings[3]], width=20, n_test=2000, init_scales=(1e-4, 1e-1, 3.0), n_seeds=2, n_boot=50,
                      fresh_test=20_000)
    return preset


def paired_gap(err, ok, i, j, n_test):
    """err[i] − err[j], mean over init seeds (the same seeds at both α; ok runs only), with two errors:
    the s.e. over seeds, and a conservative total that adds the Monte-Carlo noise of a difference of two
    error rates on the same n_test points, Var ≤ (e_i + e_j)/n_test (all errors assumed discordant)."""
    both = ok[i] & ok[j]
    diff = (err[i] - err[j])[both]
    if not len(diff):
        return [np.nan, np.nan, np.nan]
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
    test_var = (err[i][both].mean() + err[j][both].mean()) / n_test
    return [float(diff.mean()), float(se), float(np.sqrt(se**2 + test_var))]


def fresh_paired_gap(p: dict, cfg: gflow.Config, geo: dict, alpha_a: float, alpha_b: float) -> dict:
    """E[err(α_a) − err(α_b)] for the same init seeds on `fresh_test` new points of the mixture.

    The networks θ at the stop come from `gflow.simulate`; the test points are drawn here with numpy,
    independent of the sweep's test sample. The s.e. combines the test-point and the seed variation of
    the per-point differences D_j(x) = 1[α_a, seed j errs on x] − 1[α_b, seed j errs on x]."""
    nets = []
    for alpha in (alpha_a, alpha_b):
        for j in range(p["n_seeds"]):
            r = gflow.simulate(init_scale=alpha, seed=j, config=cfg)
            if not fa.ok_mask(int(r.status)):
                raise RuntimeError(f"α={alpha:g} seed {j}: status {gflow.STATUS_NAMES[int(r.status)]}")
            nets.append((np.asarray(r.params.W, np.float64), np.asarray(r.params.a, np.float64)))
    rng = np.random.default_rng(12345)
    J, N, chunk = p["n_seeds"], p["fresh_test"], 50_000
    D = np.zeros((J, N), np.int8)
    for start in range(0, N, chunk):
        m = min(chunk, N - start)
        y = rng.choice([-1.0, 1.0], size=m)
        x = cfg.data.kappa * y[:, None] * geo["s"] + cfg.data.sigma * rng.normal(size=(m, len(geo["s"])))
        wrong = np.stack([y * (np.maximum(x @ W.T, 0.0) @ a) <= 0 for W, a in nets])
        D[:, start : start + m] = wrong[:J].astype(np.int8) - wrong[J:].astype(np.int8)
    per_point, per_seed = D.mean(0), D.mean(1)
    se = np.sqrt(per_point.var(ddof=1) / N + (per_seed.var(ddof=1) / J if J > 1 else 0.0))
    return {"alpha_a": alpha_a, "alpha_b": alpha_b, "gap": float(D.mean()), "se": float(se), "z": float(D.mean() / se),
            "discordant_fraction": float(np.mean(D != 0)), "n_points": N}


def analyze(p: dict, s: dict, arrays: dict, geo: dict) -> dict:
    alpha = arrays["init_scale"]
    ok = fa.ok_mask(arrays["status"])
    o = stats.argmin_estimate(alpha, arrays["final_test_err"], ok, n_boot=p["n_boot"])
    net, net_se, count, a_net, edge = o.mean, o.se, o.count, o.x, o.at_edge
    lin, lin_se, _ = stats.seed_mean(arrays["final_lin_err"], ok)
    a_lin, edge_lin = stats.refine_argmin(alpha, lin)
    best = int(np.nanargmin(net))
    left = paired_gap(arrays["final_test_err"], ok, 0, best, p["n_test"])
    right = paired_gap(arrays["final_test_err"], ok, len(alpha) - 1, best, p["n_test"])
    best_lin = int(np.nanargmin(lin))
    lin_left = paired_gap(arrays["final_lin_err"], ok, 0, best_lin, np.inf)
    lin_right = paired_gap(arrays["final_lin_err"], ok, len(alpha) - 1, best_lin, np.inf)
    return {
        "setting": s,
        "separability": geo["separability"],
        "bayes_error": geo["bayes_error"],
        "status_counts": fa.status_counts(arrays["status"]),
        "runs_used_per_alpha": count,
        "alpha": alpha,
        "net_err": net, "net_err_se": net_se,
        "lin_err": lin, "lin_err_se": lin_se,
        "alpha_star_net": a_net, "alpha_star_net_at_grid_edge": edge, "alpha_star_net_ci95": o.ci95,
        "alpha_star_lin": a_lin, "alpha_star_lin_at_grid_edge": edge_lin,
        # error at the smallest α minus the error at the grid optimum, and the same at the largest α:
        # [mean, s.e. over seeds, conservative s.e. including the test sample's noise]
        "left_gap": left, "right_gap": right,
        "left_z": left[0] / left[2], "right_z": right[0] / right[2],
        "u_shape_conservative": bool(left[0] > 3 * left[2] and right[0] > 3 * right[2]),  # both arms > 3 conservative s.e.
        # the same for E(ŵ₊) (analytic: no test-sample noise), at its own grid optimum
        "lin_left_gap": lin_left, "lin_right_gap": lin_right,
        "lin_u_shape": bool(lin_left[0] > 3 * lin_left[1] and lin_right[0] > 3 * lin_right[1]),
    }


def plot(results: list[dict], arrays_list: list[dict], out) -> None:
    plt = fa.plt
    m = len(results)
    cols = min(m, 3)
    rows = -(-m // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), constrained_layout=True, squeeze=False)
    for ax, r, arrays in zip(axes.flat, results, arrays_list):
        alpha = r["alpha"]
        ok = fa.ok_mask(arrays["status"])
        for j in range(arrays["final_test_err"].shape[1]):
            v = np.where(ok[:, j], arrays["final_test_err"][:, j], np.nan)
            ax.scatter(alpha, v, s=6, color="tab:blue", alpha=0.25, lw=0)
        for key, label, color, marker in (("net_err", "network (Monte-Carlo)", "tab:blue", "o"), ("lin_err", "effective predictor E(ŵ₊)", "tab:orange", "s")):
            mean, se = np.asarray(r[key]), np.asarray(r[key + "_se"])
            ax.plot(alpha, mean, marker=marker, color=color, ms=4, label=label + " mean ± s.e.")
            ax.fill_between(alpha, mean - se, mean + se, color=color, alpha=0.25, lw=0)
        ax.axhline(r["bayes_error"], color="k", ls="--", lw=1, label=f"Bayes error E* = {r['bayes_error']:.2g}")
        a_star = r["alpha_star_net"]
        ax.axvspan(alpha[0], a_star, color="tab:blue", alpha=0.06)
        ax.axvspan(a_star, alpha[-1], color="tab:red", alpha=0.06)
        ax.axvline(a_star, color="tab:blue", ls=":", lw=1.2, label=f"α* = {a_star:.2g} (network)")
        ax.text(0.02, 0.97, "over-alignment\nside", transform=ax.transAxes, va="top", fontsize=8, color="tab:blue")
        ax.text(0.98, 0.97, "over-fitting\nside", transform=ax.transAxes, va="top", ha="right", fontsize=8, color="tab:red")
        s = r["setting"]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("init scale α (small: strong feature learning)")
        ax.set_ylabel("test error at the stop L = η")
        kind = "orthogonally separable" if r["separability"] > 0 else "not orth. separable"
        ax.set_title(f"n={s['n']}, d={s['d']}, κ/σ={s['kappa'] / s['sigma']:.3g}: {kind} (λ={r['separability']:.2f})", fontsize=9)
        ax.legend(fontsize=7, loc="center left")
    for ax in list(axes.flat)[m:]:
        ax.axis("off")
    n_seeds = arrays_list[0]["final_test_err"].shape[1]
    fig.suptitle(f"U-curve: test error vs α (dots: {n_seeds} init seeds; bands: ± s.e.; shading splits at the measured α*)")
    fa.save_figure(fig, out, "u_curve")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/u_curve")
    p = get_config(args.quick)
    timer = fa.Timer()
    results, arrays_list = [], []
    for s in p["settings"]:
        cfg = gflow.Config.from_fields(n=s["n"], d=s["d"], kappa=s["kappa"], sigma=s["sigma"], seed=s["data_seed"], n_test=p["n_test"],
                                       width=p["width"], target_loss=p["target_loss"], init_scales=p["init_scales"], n_seeds=p["n_seeds"])
        geo = fa.geometry(cfg.data)
        if (geo["separability"] > 0) != s["separable"]:
            raise RuntimeError(f"{s['name']}: separability constant λ = {geo['separability']:.3f} contradicts separable={s['separable']}")
        arrays = fa.sweep(cfg, args.out, s["name"])
        r = analyze(p, s, arrays, geo)
        best = float(arrays["init_scale"][int(np.nanargmin(r["net_err"]))])
        r["fresh_left_gap"] = fresh_paired_gap(p, cfg, geo, float(arrays["init_scale"][0]), best)
        # U-shape: both arms above the optimum by > 3 s.e. (left arm: paired on fresh points; right arm: conservative)
        r["u_shape"] = bool(r["fresh_left_gap"]["z"] > 3 and r["right_z"] > 3)
        results.append(r)
        arrays_list.append(arrays)
    plot(results, arrays_list, args.out)
    summary = {"preset": p, "results": results, "wall_s": timer.seconds(), "sweeps": timer.sweeps()}
    fa.write_summary(args.out, summary)
    for r in results:
        print(
            f"{r['setting']['name']:>22}: λ={r['separability']:+.3f} E*={r['bayes_error']:.2e} α*_net={r['alpha_star_net']:.3g} "
            f"CI {np.round(r['alpha_star_net_ci95'], 4).tolist()} α*_lin={r['alpha_star_lin']:.3g} "
            f"left gap {r['left_gap'][0]:.2e}±{r['left_gap'][2]:.1e} (z={r['left_z']:.1f}) "
            f"right gap {r['right_gap'][0]:.2e}±{r['right_gap'][2]:.1e} (z={r['right_z']:.1f}) U={r['u_shape']}; "
            f"fresh-sample left gap {r['fresh_left_gap']['gap']:.2e}±{r['fresh_left_gap']['se']:.1e} (z={r['fresh_left_gap']['z']:.1f})"
        )
    print(f"wall {summary['wall_s']:.1f} s; figure {args.out}/u_curve.png")
    return summary


if __name__ == "__main__":
    main()
