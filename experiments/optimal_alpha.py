"""Claim 4, the optimal-α law: α* ∝ 1/(n√h), i.e. c* = α*² ∝ n⁻² h⁻¹.

    python experiments/optimal_alpha.py [--quick] [--out runs/optimal_alpha]

α* of a setting = argmin over the α grid of the test error averaged over datasets × init seeds, refined
by a parabola in (log α, log error) through the grid minimum and its neighbours. Done for the network's
Monte-Carlo test error and for E(ŵ₊). Exponents of α* in n (at fixed h) and in h (at fixed n) are
least-squares slopes in log-log; their 95% intervals come from bootstrapping the (dataset, seed) units
of every setting. Writes <out>/<setting>_data<k>/, summary.json, optimal_alpha.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow import stats
from gflow.twolayer import theory

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa


def get_config(quick: bool = False) -> dict:
    preset = dict(
        d=100, kappa=1.0, sigma=0.5,  # the default Gaussian mixture (Bayes error 2.3%; not orthogonally separable)
        ref_n=40, ref_width=100,  # the setting both scans pass through
        n_values=(20, 40, 80, 160),  # n scan at h = ref_width
        width_values=(25, 100, 400),  # h scan at n = ref_n
        data_seeds=(0, 1),  # datasets averaged per setting
        n_test=10_000,  # Monte-Carlo test points at the stop
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-2.5, 0.5, 10)),  # α grid, 3 per decade around the default optimum 0.1
        n_seeds=6,  # init seeds per α and dataset
        n_boot=1000,  # bootstrap replicates
    )
    if quick:
        preset.update(d=5, n_values=(20, 40), width_values=(20, 40), ref_n=20, ref_width=20, data_seeds=(0,), n_test=2000,
                      init_scales=(1e-3, 1e-2, 1e-1, 1.0), n_seeds=2, n_boot=20)
    return preset


def setting_alpha_star(p: dict, n: int, width: int, out) -> dict:
    errs, lins, oks, statuses, zeta0 = [], [], [], [], []
    for k in p["data_seeds"]:
        cfg = gflow.Config.from_fields(n=n, d=p["d"], kappa=p["kappa"], sigma=p["sigma"], seed=k, n_test=p["n_test"], width=width,
                                       target_loss=p["target_loss"], init_scales=p["init_scales"], n_seeds=p["n_seeds"])
        arrays = fa.sweep(cfg, out, f"n{n}_h{width}_data{k}")
        errs.append(arrays["final_test_err"])
        lins.append(arrays["final_lin_err"])
        oks.append(fa.ok_mask(arrays["status"]))
        statuses.append(arrays["status"])
        geo = fa.geometry(cfg.data)
        w_max = fa.unit_width_max(p["d"], width, range(p["n_seeds"]))
        zeta0.append(float(theory.alpha_zeta_zero(n, width, geo["x_max"], w_max, geo["xplus_norm"])))
    err, lin, ok = (np.concatenate(v, axis=1) for v in (errs, lins, oks))
    alpha = np.asarray(p["init_scales"])
    res = {"n": n, "width": width, "status_counts": fa.status_counts(np.concatenate(statuses, axis=1)), "alpha_zeta_zero": float(np.mean(zeta0))}
    for tag, v in (("net", err), ("lin", lin)):
        o = stats.argmin_estimate(alpha, v, ok, n_boot=p["n_boot"], seed=n * 1000 + width)
        res[tag] = {"mean": o.mean, "se": o.se, "alpha_star": o.x, "at_grid_edge": o.at_edge, "ci95": o.ci95, "boot": o.boot}
    return res


def scan_exponent(xs, entries, tag) -> dict:
    a = np.array([e[tag]["alpha_star"] for e in entries])
    boots = np.stack([e[tag]["boot"] for e in entries])
    slope = stats.fit_power_law(xs, a)[0]
    _, ci = stats.bootstrap_exponent(np.asarray(xs, float), boots)
    return {"alpha_star": a, "exponent": slope, "exponent_ci95": ci, "any_at_grid_edge": bool(any(e[tag]["at_grid_edge"] for e in entries))}


def plot(p, n_scan, h_scan, fits, out):
    plt = fa.plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), constrained_layout=True)
    alpha = np.asarray(p["init_scales"])
    for ax, scan, key, label in ((axes[0, 0], n_scan, "n", "n"), (axes[0, 1], h_scan, "width", "h")):
        cmap = plt.get_cmap("viridis")
        for k, e in enumerate(scan):
            color = cmap(k / max(1, len(scan) - 1))
            m, se = np.asarray(e["net"]["mean"]), np.asarray(e["net"]["se"])
            ax.plot(alpha, m, "o-", ms=3, color=color, label=f"{label}={e[key]}: α*={e['net']['alpha_star']:.3g}")
            ax.fill_between(alpha, m - se, m + se, color=color, alpha=0.2, lw=0)
            ax.axvline(e["net"]["alpha_star"], color=color, ls=":", lw=1)
        ax.axhline(float(theory.bayes_error(p["kappa"], p["sigma"])), color="k", ls="--", lw=1, label="Bayes error")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("init scale α")
        ax.set_ylabel("network test error (mean ± s.e. over datasets × seeds)")
        ax.set_title(f"test error vs α across {label} (dotted: refined α*)", fontsize=9)
        ax.legend(fontsize=7)
    for ax, scan, key, label, theory_exp, ref in (
        (axes[1, 0], n_scan, "n", "training points n", theory.ALPHA_STAR_N_EXPONENT, p["ref_n"]),
        (axes[1, 1], h_scan, "width", "width h", theory.ALPHA_STAR_WIDTH_EXPONENT, p["ref_width"]),
    ):
        xs = np.array([e[key] for e in scan], float)
        for tag, marker, color, name in (("net", "o", "tab:blue", "network"), ("lin", "s", "tab:orange", "E(ŵ₊)")):
            a = np.array([e[tag]["alpha_star"] for e in scan])
            ci = np.array([e[tag]["ci95"] for e in scan])
            f = fits[key][tag]
            ax.errorbar(xs, a, yerr=[a - ci[:, 0], ci[:, 1] - a], fmt=marker + "-", color=color, capsize=3,
                        label=f"α* of {name}: {label.split()[-1]}^{f['exponent']:.2f}, 95% CI {np.round(f['exponent_ci95'], 2).tolist()}")
        a_ref = [e["net"]["alpha_star"] for e in scan if e[key] == ref][0]
        ax.plot(xs, a_ref * (xs / ref) ** theory_exp, "k--", lw=1, label=f"theory ∝ {label.split()[-1]}^{theory_exp:g} through the reference point")
        ax.plot(xs, [e["alpha_zeta_zero"] for e in scan], ":", color="gray", label="α_ζ: where ζ(α) = 0 (no free constant)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("optimal init scale α*")
        ax.set_title("α* with bootstrap 95% intervals", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Optimal-α law: d={p['d']}, κ/σ={p['kappa'] / p['sigma']:g}, η={p['target_loss']:g}, {len(p['data_seeds'])} datasets × {p['n_seeds']} init seeds per setting")
    fa.save_figure(fig, out, "optimal_alpha")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/optimal_alpha")
    p = get_config(args.quick)
    timer = fa.Timer()
    cache = {}

    def get(n, h):
        if (n, h) not in cache:
            cache[(n, h)] = setting_alpha_star(p, n, h, args.out)
        return cache[(n, h)]

    n_scan = [get(n, p["ref_width"]) for n in p["n_values"]]
    h_scan = [get(p["ref_n"], h) for h in p["width_values"]]
    fits = {
        "n": {tag: scan_exponent(p["n_values"], n_scan, tag) for tag in ("net", "lin")},
        "width": {tag: scan_exponent(p["width_values"], h_scan, tag) for tag in ("net", "lin")},
    }
    plot(p, n_scan, h_scan, fits, args.out)
    strip = lambda e: {k: ({kk: vv for kk, vv in v.items() if kk != "boot"} if isinstance(v, dict) else v) for k, v in e.items()}  # noqa: E731
    summary = {"preset": p, "n_scan": [strip(e) for e in n_scan], "width_scan": [strip(e) for e in h_scan], "fits": fits,
               "theory": {"n_exponent": theory.ALPHA_STAR_N_EXPONENT, "width_exponent": theory.ALPHA_STAR_WIDTH_EXPONENT},
               "wall_s": timer.seconds(), "sweeps": timer.sweeps()}
    fa.write_summary(args.out, summary)
    for key, f in fits.items():
        for tag, v in f.items():
            print(f"α*({key}) {tag}: {np.round(v['alpha_star'], 4).tolist()} exponent {v['exponent']:.3f} CI {np.round(v['exponent_ci95'], 3).tolist()} edge={v['any_at_grid_edge']}")
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
