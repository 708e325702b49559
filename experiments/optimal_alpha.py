"""Claim 4, the optimal-α law: α* ∝ 1/(n√h), i.e. c* = α*² ∝ n⁻² h⁻¹, on the default (non-separable) mixture.

    python experiments/optimal_alpha.py [--quick] [--out runs/optimal_alpha]

Per (n, h): one sweep over α × datasets × init seeds; the datasets of each n are independent draws
(`fls_analysis.data_seeds`), and the width scan at n = ref_n reuses the datasets of that n. α* by two rules:
the pooled rule (refined argmin of the curve averaged over datasets × seeds) and the per-dataset rule (median
of each dataset's refined argmin). Errors: the network's Monte-Carlo test error with ties (f = 0) counted as
errors and as half an error (the tie mass is reported beside it), and E(ŵ₊). Intervals: the hierarchical
bootstrap (datasets, then seeds), drawn jointly for settings that share datasets; exponents are refitted on
each joint replicate, and labelled by `gflow.stats.verdict_label`. Writes <out>/n<n>_h<h>/, summary.json,
optimal_alpha.png.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import gflow
from gflow import stats
from gflow.twolayer import theory

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa

TIES = ("error", "half")  # tie conventions of the network error's α* ('correct' is reported as a tie mass only)


def get_config(quick: bool = False) -> dict:
    preset = dict(
        d=100,
        kappa=1.0,
        sigma=0.5,  # the default Gaussian mixture (Bayes error 2.3%; not orthogonally separable)
        ref_n=40,
        ref_width=100,  # the setting both scans pass through
        n_values=(20, 40, 80, 160),  # n scan at h = ref_width
        width_values=(25, 100, 400),  # h scan at n = ref_n
        n_datasets=12,  # independent datasets per n (fa.data_seeds); the h scan shares those of ref_n
        n_test=10_000,  # Monte-Carlo test points at the stop
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-2.5, 0.5, 10)),  # α grid, 3 per decade around the default optimum 0.1
        n_seeds=2,  # init seeds per α and dataset
        n_boot=1000,  # bootstrap replicates
    )
    if quick:
        preset.update(
            d=5,
            n_values=(20, 40),
            width_values=(20, 40),
            ref_n=20,
            ref_width=20,
            n_datasets=2,
            n_test=2000,
            init_scales=(1e-3, 1e-2, 1e-1, 1.0),
            n_seeds=2,
            n_boot=20,
        )
    return preset


def setting(p: dict, n: int, width: int, out) -> dict:
    """The sweep of one (n, h) over α × datasets × seeds: arrays [α, dataset, seed] and the data geometry."""
    cfg = gflow.Config.from_fields(
        n=n,
        d=p["d"],
        kappa=p["kappa"],
        sigma=p["sigma"],
        data_seeds=fa.data_seeds(n, p["n_datasets"]),
        n_test=p["n_test"],
        width=width,
        target_loss=p["target_loss"],
        init_scales=p["init_scales"],
        n_seeds=p["n_seeds"],
    )
    arrays = fa.sweep(cfg, out, f"n{n}_h{width}")
    w_max = fa.unit_width_max(p["d"], width, range(p["n_seeds"]))
    zeta0 = []
    for k in cfg.sweep.data_seeds:
        geo = fa.geometry(dataclasses.replace(cfg.data, seed=k))
        zeta0.append(float(theory.alpha_zeta_zero(n, width, geo["x_max"], w_max, geo["xplus_norm"])))
    status = fa.by_dataset(arrays["status"])
    return {
        "n": n,
        "width": width,
        "err": fa.by_dataset(arrays["final_test_err"]),
        "tie": fa.by_dataset(arrays["final_test_tie"]),
        "lin": fa.by_dataset(arrays["final_lin_err"]),
        "ok": fa.ok_mask(status),
        "status_counts": fa.status_counts(status),
        "separability": np.asarray(arrays["separability"]).ravel(),
        "alpha_zeta_zero": float(np.mean(zeta0)),
    }


def scan(p, runs, xs, groups, key) -> dict:
    """α* of the network (ties 'error' and 'half') and of E(ŵ₊) across one scan, with exponents and labels."""
    alpha = [np.asarray(p["init_scales"])] * len(runs)
    oks = [r["ok"] for r in runs]
    out = {}
    for tag in (*TIES, "lin"):
        vals = [r["lin"] if tag == "lin" else fa.with_ties(r["err"], r["tie"], tag) for r in runs]
        entries = fa.alpha_star_scan(alpha, vals, oks, groups, n_boot=p["n_boot"], seed=7 + len(out))
        for e, r in zip(entries, runs):
            e["tie_mass"] = fa.dataset_curve(r["tie"], r["ok"])[0]
        theory_exp = theory.ALPHA_STAR_N_EXPONENT if key == "n" else theory.ALPHA_STAR_WIDTH_EXPONENT
        in_regime = bool(all((r["separability"] > 0).all() for r in runs))  # the theory assumes orthogonal separability
        fits = {rule: fa.scan_exponent(xs, entries, rule) for rule in ("pooled", "median")}
        for f in fits.values():
            f["label"] = stats.verdict_label(theory_exp, f["ci95"], in_regime=in_regime)
        out[tag] = {"entries": entries, "fits": fits, "theory_exponent": theory_exp, "in_regime": in_regime}
    return out


def plot(p, n_runs, h_runs, fits, out):
    plt = fa.plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), constrained_layout=True)
    alpha = np.asarray(p["init_scales"])
    for ax, runs, key, label in ((axes[0, 0], n_runs, "n", "n"), (axes[0, 1], h_runs, "width", "h")):
        cmap = plt.get_cmap("viridis")
        for k, (r, e, eh) in enumerate(zip(runs, fits[key]["error"]["entries"], fits[key]["half"]["entries"])):
            color = cmap(k / max(1, len(runs) - 1))
            m, se = np.asarray(e["mean"]), np.asarray(e["se"])
            ax.plot(
                alpha,
                m,
                "o-",
                ms=3,
                color=color,
                label=f"{label}={r[key]}: α*={e['alpha_star']:.3g} (ties = error), {eh['alpha_star']:.3g} (half)",
            )
            ax.fill_between(alpha, m - se, m + se, color=color, alpha=0.2, lw=0)
            ax.plot(alpha, eh["mean"], "--", color=color, lw=1)
            ax.plot(alpha, e["tie_mass"], ":", color=color, lw=1)
        ax.axhline(float(theory.bayes_error(p["kappa"], p["sigma"])), color="k", ls="--", lw=1, label="Bayes error")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("init scale α")
        ax.set_ylabel("network test error (band: ± s.e. over datasets)")
        ax.set_title(
            f"test error vs α across {label}: solid ties = error, dashed ties = half, dotted the tie mass P(f = 0)",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    for ax, runs, key, label, ref in (
        (axes[1, 0], n_runs, "n", "training points n", p["ref_n"]),
        (axes[1, 1], h_runs, "width", "width h", p["ref_width"]),
    ):
        xs = np.array([r[key] for r in runs], float)
        for tag, marker, color, name in (
            ("error", "o", "tab:blue", "network, ties = error"),
            ("half", "D", "tab:green", "network, ties = half"),
            ("lin", "s", "tab:orange", "E(ŵ₊)"),
        ):
            entries = fits[key][tag]["entries"]
            a = np.array([e["alpha_star"] for e in entries])
            ci = np.array([e["ci95"] for e in entries])
            f = fits[key][tag]["fits"]["pooled"]
            lab = (
                f"α* of {name}: exponent {f['exponent']:.2f} {np.round(f['ci95'], 2).tolist()}"
                if f["exponent"] is not None
                else f"α* of {name}: no fit"
            )
            ax.errorbar(
                xs,
                a,
                yerr=np.clip([a - ci[:, 0], ci[:, 1] - a], 0, None),
                fmt=marker + "-",
                color=color,
                capsize=3,
                label=lab,
            )
            if tag == "error":
                ax.plot(
                    xs,
                    [e["alpha_star_median"] for e in entries],
                    marker + ":",
                    color=color,
                    mfc="w",
                    label="median of per-dataset α* (ties = error)",
                )
        theory_exp = fits[key]["error"]["theory_exponent"]
        a_ref = [e["alpha_star"] for r, e in zip(runs, fits[key]["error"]["entries"]) if r[key] == ref][0]
        ax.plot(
            xs,
            a_ref * (xs / ref) ** theory_exp,
            "k--",
            lw=1,
            label=f"theory ∝ {label.split()[-1]}^{theory_exp:g} through the reference point",
        )
        ax.plot(
            xs, [r["alpha_zeta_zero"] for r in runs], ":", color="gray", label="α_ζ: where ζ(α) = 0 (no free constant)"
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("optimal init scale α*")
        ax.set_title("α* (pooled rule) with hierarchical bootstrap 95% intervals over datasets", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Optimal-α law: d={p['d']}, κ/σ={p['kappa'] / p['sigma']:g}, η={p['target_loss']:g}, {p['n_datasets']} independent "
        f"datasets per n × "
        f"{p['n_seeds']} init seeds (not orthogonally separable: outside the theory's regime)"
    )
    fa.save_figure(fig, out, "optimal_alpha")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/optimal_alpha")
    p = get_config(args.quick)
    timer = fa.Timer()
    cache = {}

    def get(n, h):
        if (n, h) not in cache:
            cache[(n, h)] = setting(p, n, h, args.out)
        return cache[(n, h)]

    n_runs = [get(n, p["ref_width"]) for n in p["n_values"]]
    h_runs = [get(p["ref_n"], h) for h in p["width_values"]]
    fits = {
        "n": scan(p, n_runs, list(p["n_values"]), list(p["n_values"]), "n"),
        "width": scan(p, h_runs, list(p["width_values"]), [p["ref_n"]] * len(h_runs), "width"),
    }
    plot(p, n_runs, h_runs, fits, args.out)
    runs = {
        f"n{r['n']}_h{r['width']}": {k: r[k] for k in ("status_counts", "separability", "alpha_zeta_zero")}
        for r in n_runs + h_runs
    }
    summary = {
        "preset": p,
        "runs": runs,
        "fits": fa.strip_boot(fits),
        "theory": {"n_exponent": theory.ALPHA_STAR_N_EXPONENT, "width_exponent": theory.ALPHA_STAR_WIDTH_EXPONENT},
        "wall_s": timer.seconds(),
        "sweeps": timer.sweeps(),
    }
    fa.write_summary(args.out, summary)
    for key, f in fits.items():
        for tag, v in f.items():
            a = [round(e["alpha_star"], 4) for e in v["entries"]]
            am = [round(e["alpha_star_median"], 4) for e in v["entries"]]
            print(
                f"α*({key}) {tag}: pooled {a} median {am}; "
                + "; ".join(
                    f"{rule} exponent {x['exponent']} CI {x['ci95']} → {x['label']}" for rule, x in v["fits"].items()
                ),
                flush=True,
            )
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
