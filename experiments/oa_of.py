"""Claim 2, the OA/OF decomposition (the paper's Fig. 5): the excess error splits into over-alignment
OA(α) = inf_{H(α)} E − E*, which should fall as α grows, and over-fitting OF(α) = E(ŵ₊) − inf_{H(α)} E,
which should rise; H(α) = {v : cos(v, target) ≥ Ψ(α)}.

    python experiments/oa_of.py [--quick] [--out runs/oa_of]

Computed per run from the stored Ψ = cos(ŵ₊, x₊), cos(ŵ₊, μ₊), cos(ŵ₊, s) at the stop and the angles of
the dataset, for two cone axes: the paper's x₊ = mean_i y_i x_i and the positive-class mean μ₊ (the
direction our small-α neurons actually align with). OA + OF = E(ŵ₊) − E* exactly; the network's own
excess error (Monte-Carlo) is drawn beside it. The datasets of a setting are independent draws (data seeds
`fa.data_seeds(n, ·)`; 'separable' settings redraw each until λ > 0). The trend verdicts, OA(α_min) − OA(α_max)
> 0 (OA falls) and OF(α_max) − OF(α_min) > 0 (OF rises), get 95% intervals from the hierarchical bootstrap
(datasets, then init seeds) and the label of `gflow.stats.verdict_label`; OA and OF are analytic (no test
sample, no ties). Writes <out>/<setting>_data<k>/, summary.json, oa_of.png.
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
    settings = [
        # name, n, d, κ, σ, data mode ('separable': every training set conditioned on λ > 0)
        dict(name="nonsep_n40_d100_snr2", n=40, d=100, kappa=1.0, sigma=0.5, mode="gaussian"),
        dict(name="sep_n20_d5_snr3", n=20, d=5, kappa=1.0, sigma=1 / 3, mode="separable"),
    ]
    preset = dict(
        settings=settings,
        width=100,  # hidden neurons h
        n_test=20_000,  # Monte-Carlo test points at the stop, for the network's excess error
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-5, 1, 13)),  # α grid
        n_datasets=8,  # independent datasets per setting
        n_seeds=2,  # init seeds per α and dataset
        n_boot=1000,  # hierarchical bootstrap replicates
    )
    if quick:
        settings = [settings[1], dict(settings[0], name="nonsep_n20_d5_snr2", n=20, d=5)]
        preset.update(
            settings=settings, width=20, n_test=2000, init_scales=(1e-3, 1e-1, 3.0), n_datasets=2, n_seeds=2, n_boot=20
        )
    for s in preset["settings"]:
        s["data_seeds"] = fa.data_seeds(s["n"], preset["n_datasets"])
    return preset


def trend_verdicts(p, parts: dict, ok, in_regime: bool) -> dict:
    """OA(α_min) − OA(α_max) and OF(α_max) − OF(α_min) per cone axis, from [α, dataset·seed] (dataset-major)
    values: the mean over ok units, its hierarchical 95% interval and the label of the sign claim '> 0'."""
    shape = (ok.shape[0], p["n_datasets"], p["n_seeds"])
    o = np.asarray(ok).reshape(shape)
    out = {}
    for tag in ("xplus", "mu"):
        for key, sign in ((f"OA_{tag}", 1.0), (f"OF_{tag}", -1.0)):
            v = np.asarray(parts[key], np.float64).reshape(shape)

            def gap(i, v, o):
                m = fa.dataset_curve(v, o)[0]
                return float(sign * (m[0] - m[-1]))

            boot = stats.hierarchical_bootstrap(gap, [(v, o)], n_boot=p["n_boot"], seed=31)[0]
            ci = stats.interval(boot)
            out[key] = {"gap": gap(0, v, o), "ci95": ci, "label": stats.verdict_label("> 0", ci, in_regime=in_regime)}
    return out


def decompose(arrays: dict, geo: dict, kappa: float, sigma: float) -> dict[str, np.ndarray]:
    """OA/OF for both cone axes, per run [scale, seed], from the stored cosines at the stop."""
    out = {}
    for tag, phi, psi in (
        ("xplus", geo["phi_xplus"], arrays["final_Psi"]),
        ("mu", geo["phi_mu"], arrays["final_Psi_mu"]),
    ):
        out[f"OA_{tag}"] = np.asarray(theory.over_alignment(phi, psi, kappa, sigma), np.float64)
        out[f"OF_{tag}"] = np.asarray(theory.over_fitting(arrays["final_cos_s"], phi, psi, kappa, sigma), np.float64)
        out[f"half_angle_{tag}"] = np.degrees(np.arccos(np.clip(psi, -1, 1)))  # cone half-angle arccos Ψ
        out[f"phi_{tag}"] = np.full(psi.shape, np.degrees(phi))
    out["excess_lin"] = arrays["final_lin_err"] - geo["bayes_error"]
    out["excess_net"] = arrays["final_test_err"] - geo["bayes_error"]
    return out


def spearman(x, y) -> float:
    """Rank correlation (no ties expected)."""
    good = np.isfinite(x) & np.isfinite(y)
    rx, ry = np.argsort(np.argsort(x[good])), np.argsort(np.argsort(y[good]))
    return float(np.corrcoef(rx, ry)[0, 1])


def analyze(alpha, parts: dict, ok) -> dict:
    res = {}
    for key, v in parts.items():
        mean, se, _ = stats.seed_mean(v, ok)
        res[key] = mean
        res[key + "_se"] = se
    for tag in ("xplus", "mu"):
        oa, of = res[f"OA_{tag}"], res[f"OF_{tag}"]
        res[f"trend_{tag}"] = {
            "spearman_OA_vs_alpha": spearman(np.log(alpha), oa),
            "spearman_OF_vs_alpha": spearman(np.log(alpha), of),
            "OA_first_last": [oa[0], oa[-1]],
            "OF_first_last": [of[0], of[-1]],
            "OA_share_of_excess": (oa / (oa + of)),
        }
    # identity check: OA + OF equals E(ŵ₊) − E* (float32 cosines in, so up to ~1e-6)
    res["identity_max_abs_dev"] = float(
        np.nanmax(np.abs(parts["OA_xplus"] + parts["OF_xplus"] - parts["excess_lin"])[ok])
    )
    res["corr_sum_vs_network_excess"] = float(np.corrcoef(res["excess_lin"], res["excess_net"])[0, 1])
    rich = alpha < 1.0  # the same without the lazy end, whose jump dominates the correlation
    res["corr_sum_vs_network_excess_alpha_below_1"] = float(
        np.corrcoef(res["excess_lin"][rich], res["excess_net"][rich])[0, 1]
    )
    return res


def plot(results: list[dict], out) -> None:
    plt = fa.plt
    fig, axes = plt.subplots(len(results), 3, figsize=(16, 4.3 * len(results)), constrained_layout=True, squeeze=False)
    lin = 1e-5  # symlog: linear within ±1e-5, so that negative Monte-Carlo excess errors stay visible
    for row, r in zip(axes, results):
        alpha, s = np.asarray(r["alpha"]), r["setting"]
        for ax, tag, axis_name in ((row[0], "xplus", "x₊ = mean yᵢxᵢ"), (row[1], "mu", "μ₊ (positive-class mean)")):
            for key, label, color, marker in (
                (f"OA_{tag}", "OA (over-alignment)", "tab:blue", "o"),
                (f"OF_{tag}", "OF (over-fitting)", "tab:red", "s"),
                ("excess_lin", "OA + OF = E(ŵ₊) − E*", "k", "^"),
                ("excess_net", "network test error − E* (Monte-Carlo)", "tab:green", "d"),
            ):
                mean, se = np.asarray(r[key], float), np.asarray(r[key + "_se"], float)
                ax.plot(alpha, mean, marker=marker, ms=4, color=color, label=label)
                ax.fill_between(alpha, mean - se, mean + se, color=color, alpha=0.2, lw=0)
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=lin)
            lowest = min(
                np.nanmin(np.asarray(r[k], float) - np.asarray(r[k + "_se"], float))
                for k in ("excess_net", "OA_" + tag)
            )
            ax.set_ylim(bottom=min(-lin, 1.5 * lowest))
            ax.axhline(0, color="gray", lw=0.5)
            ax.set_xlabel("init scale α")
            ax.set_ylabel(f"excess test error (symlog; linear within ±{lin:g})")
            ax.set_title(
                f"cone axis {axis_name}; n={s['n']}, d={s['d']}, κ/σ={s['kappa'] / s['sigma']:.3g}", fontsize=9
            )
            ax.legend(fontsize=7)
        ax = row[2]
        for tag, color, name in (("xplus", "tab:purple", "x₊"), ("mu", "tab:pink", "μ₊")):
            mean, se = np.asarray(r[f"half_angle_{tag}"], float), np.asarray(r[f"half_angle_{tag}_se"], float)
            ax.plot(alpha, mean, "o-", ms=4, color=color, label=f"cone half-angle arccos Ψ, axis {name}")
            ax.fill_between(alpha, mean - se, mean + se, color=color, alpha=0.2, lw=0)
            ax.axhline(
                np.nanmean(r[f"phi_{tag}"]), color=color, ls="--", lw=1, label=f"∠({name}, s) (mean over datasets)"
            )
        ax.set_xscale("log")
        ax.set_xlabel("init scale α")
        ax.set_ylabel("degrees")
        ax.set_title("OA > 0 where the half-angle is below ∠(axis, s)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Excess error decomposition at the stop L = η (mean ± s.e. over datasets × init seeds)")
    fa.save_figure(fig, out, "oa_of")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/oa_of")
    p = get_config(args.quick)
    timer = fa.Timer()
    results = []
    for s in p["settings"]:
        parts_all, ok_all, status_all, lambdas = [], [], [], []
        for k in s["data_seeds"]:
            cfg = gflow.Config.from_fields(
                mode=s["mode"],
                n=s["n"],
                d=s["d"],
                kappa=s["kappa"],
                sigma=s["sigma"],
                seed=k,
                n_test=p["n_test"],
                width=p["width"],
                target_loss=p["target_loss"],
                init_scales=p["init_scales"],
                n_seeds=p["n_seeds"],
            )
            geo = fa.geometry(cfg.data)
            lambdas.append(geo["separability"])
            arrays = fa.sweep(cfg, args.out, f"{s['name']}_data{k}")
            parts_all.append(decompose(arrays, geo, s["kappa"], s["sigma"]))
            ok_all.append(fa.ok_mask(arrays["status"]))
            status_all.append(arrays["status"])
        # units = (data seed, init seed) pairs, concatenated along the seed axis
        parts = {key: np.concatenate([pa[key] for pa in parts_all], axis=1) for key in parts_all[0]}
        ok = np.concatenate(ok_all, axis=1)
        r = analyze(np.asarray(p["init_scales"]), parts, ok)
        in_regime = bool(min(lambdas) > 0)  # the theory assumes orthogonal separability
        r.update(
            setting=s,
            alpha=np.asarray(p["init_scales"]),
            separability=lambdas,
            in_regime=in_regime,
            status_counts=fa.status_counts(np.concatenate(status_all, axis=1)),
            verdicts=trend_verdicts(p, parts, ok, in_regime),
        )
        results.append(r)
    plot(results, args.out)
    summary = {"preset": p, "results": results, "wall_s": timer.seconds(), "sweeps": timer.sweeps()}
    fa.write_summary(args.out, summary)
    for r in results:
        print(
            f"{r['setting']['name']}: identity dev {r['identity_max_abs_dev']:.1e}, corr(E(ŵ₊)−E*, net excess) "
            f"{r['corr_sum_vs_network_excess']:.3f}"
            f" (α < 1: {r['corr_sum_vs_network_excess_alpha_below_1']:.3f})"
        )
        for tag in ("xplus", "mu"):
            t = r[f"trend_{tag}"]
            print(
                f"   axis {tag}: spearman OA {t['spearman_OA_vs_alpha']:+.2f}, OF {t['spearman_OF_vs_alpha']:+.2f}; "
                f"OA first/last {np.round(t['OA_first_last'], 5).tolist()} OF first/last {np.round(t['OF_first_last'], 5).tolist()}"
            )
        for key, v in r["verdicts"].items():
            print(f"   {key} trend gap {v['gap']:.2e} {v['ci95']} → {v['label']}")
    print(f"wall {summary['wall_s']:.1f} s; figure {args.out}/oa_of.png")
    return summary


if __name__ == "__main__":
    main()
