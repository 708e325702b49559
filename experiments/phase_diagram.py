"""Claim 6, phase diagrams: test error over the (α, n) and (α, κ/σ) planes, with the measured optimum
per row and the predicted α*(n) ∝ 1/n (through the measured α* at the reference n) drawn on top.

    python experiments/phase_diagram.py [--quick] [--out runs/phase_diagram]

One sweep per row (n or κ/σ) over α × datasets × init seeds; rows share the default problem otherwise.
The datasets of each n are independent draws (`fls_analysis.data_seeds`); the κ/σ rows use the first
`snr_datasets` data seeds of n = ref_n (paired across κ/σ). α* per row by the pooled rule (refined argmin of
the curve averaged over datasets × seeds) and the per-dataset rule (median of each dataset's argmin), with
hierarchical bootstrap intervals (datasets, then seeds; the κ/σ rows resampled jointly); the α*(n) exponent is
labelled by `gflow.stats.verdict_label`. The error counts ties (f = 0) as errors; 'half' and the tie mass are
reported beside it. Also drawn: α_ζ, where the Phase-1 quantity ζ(α) = 1 − 4αn√h x_max² W_max²/‖x₊‖
crosses zero (no free constant). Writes <out>/n<n>_snr<κ/σ>/, summary.json, phase_diagram.png.
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


def get_config(quick: bool = False) -> dict:
    preset = dict(
        d=100,
        kappa=1.0,
        width=100,  # the default problem (κ fixed; σ = κ/snr)
        ref_n=40,
        ref_snr=2.0,  # the row the two planes share, and the calibration point of α*(n) ∝ 1/n
        n_values=(10, 20, 40, 80, 160),  # rows of the (α, n) plane, at κ/σ = ref_snr
        snr_values=(1.0, 1.5, 2.0, 3.0, 4.0),  # rows of the (α, κ/σ) plane, at n = ref_n
        n_datasets=12,  # independent datasets per n row (fa.data_seeds)
        snr_datasets=4,  # datasets of each κ/σ row (the first data seeds of ref_n: paired across κ/σ)
        n_test=10_000,  # Monte-Carlo test points at the stop
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-3, 1, 9)),  # α grid (columns), 2 per decade
        n_seeds=2,  # init seeds per cell and dataset
        n_boot=1000,  # hierarchical bootstrap replicates for α* per row and the α*(n) exponent
    )
    if quick:
        preset.update(
            d=5,
            width=20,
            ref_n=20,
            n_values=(20, 40),
            snr_values=(2.0, 3.0),
            n_test=2000,
            init_scales=(1e-3, 1e-1, 3.0),
            n_datasets=2,
            snr_datasets=2,
            n_seeds=2,
            n_boot=20,
        )
    return preset


def row(p: dict, n: int, snr: float, out) -> dict:
    """The sweep of one row: arrays [α, dataset, seed], the data geometry, α_ζ (mean over datasets)."""
    count = p["n_datasets"] if snr == p["ref_snr"] else p["snr_datasets"]
    cfg = gflow.Config.from_fields(
        n=n,
        d=p["d"],
        kappa=p["kappa"],
        sigma=p["kappa"] / snr,
        data_seeds=fa.data_seeds(n, count),
        n_test=p["n_test"],
        width=p["width"],
        target_loss=p["target_loss"],
        init_scales=p["init_scales"],
        n_seeds=p["n_seeds"],
    )
    arrays = fa.sweep(cfg, out, f"n{n}_snr{snr:g}")
    w_max = fa.unit_width_max(p["d"], p["width"], range(p["n_seeds"]))
    zeta0 = []
    for k in cfg.sweep.data_seeds:
        geo = fa.geometry(dataclasses.replace(cfg.data, seed=k))
        zeta0.append(float(theory.alpha_zeta_zero(n, p["width"], geo["x_max"], w_max, geo["xplus_norm"])))
    status = fa.by_dataset(arrays["status"])
    return {
        "n": n,
        "snr": snr,
        "err": fa.by_dataset(arrays["final_test_err"]),
        "tie": fa.by_dataset(arrays["final_test_tie"]),
        "ok": fa.ok_mask(status),
        "alpha_zeta_zero": float(np.mean(zeta0)),
        "separability": np.asarray(arrays["separability"]).ravel(),
        "bayes_error": float(np.asarray(arrays["bayes_error"]).flat[0]),
        "status_counts": fa.status_counts(status),
    }


def analyse(p, rows, groups, ties) -> list[dict]:
    """α* of each row under a tie convention (pooled and per-dataset rules, hierarchical intervals), merged
    into copies of the rows with the mean curve, its s.e. over datasets, the ok units per cell, the tie mass."""
    alpha = np.asarray(p["init_scales"])
    entries = fa.alpha_star_scan(
        [alpha] * len(rows),
        [fa.with_ties(r["err"], r["tie"], ties) for r in rows],
        [r["ok"] for r in rows],
        groups,
        n_boot=p["n_boot"],
        seed=11,
    )
    out = []
    for r, e in zip(rows, entries):
        ok = r["ok"].reshape(len(alpha), -1)
        out.append(
            {
                **{k: v for k, v in r.items() if k not in ("err", "tie", "ok")},
                **e,
                "n_ok": ok.sum(1),
                "units": ok.shape[1],
                "tie_mass": fa.dataset_curve(r["tie"], r["ok"])[0],
            }
        )
    return out


def _edges(centers):
    """Cell edges around (log-)centers: midpoints, extended by half a step at both ends."""
    c = np.asarray(centers, float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def heatmap(ax, alpha, ys, z, ylabel, title, cbar_label, fig, cmap="magma_r"):
    """log₁₀ z over cells centred at (log₁₀ α, log₁₀ y)."""
    mesh = ax.pcolormesh(_edges(np.log10(alpha)), _edges(np.log10(ys)), np.log10(z), cmap=cmap, shading="flat")
    fig.colorbar(mesh, ax=ax, label=cbar_label)
    ax.set_xlabel("log₁₀ init scale α")
    ax.set_ylabel(f"{ylabel} (log scale)")
    ax.set_title(title, fontsize=9)


def plot(p, n_rows, s_rows, out):
    plt = fa.plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    alpha = np.asarray(p["init_scales"])
    la = np.log10(alpha)
    xe = _edges(la)
    fig, axes = plt.subplots(2, 2, figsize=(14, 12), constrained_layout=True)
    for col, rows, key, ylabel in ((0, n_rows, "n", "training points n"), (1, s_rows, "snr", "signal-to-noise κ/σ")):
        ys = np.array([r[key] for r in rows], float)
        ly = np.log10(ys)
        ye = _edges(ly)
        z = np.stack([r["mean"] for r in rows])
        n_ok = np.stack([r["n_ok"] for r in rows])
        rel = z / np.nanmin(z, axis=1, keepdims=True) - 1
        heatmap(
            axes[0, col],
            alpha,
            ys,
            z,
            ylabel,
            f"mean test error (ties = error) over (α, {ylabel}), datasets × {p['n_seeds']} init seeds per cell",
            "log₁₀ test error",
            fig,
        )
        heatmap(
            axes[1, col],
            alpha,
            ys,
            np.maximum(rel, 1e-3),
            ylabel,
            "test error relative to the row's best: err/min − 1 (floored at 10⁻³)",
            "log₁₀(err/min − 1)",
            fig,
            cmap="viridis",
        )
        a_star = np.array([r["alpha_star"] for r in rows])
        edge = np.array([r["at_grid_edge"] for r in rows])
        ci = np.log10(np.array([r["ci95"] for r in rows]))
        la_star = np.log10(a_star)
        for ax in axes[:, col]:
            for i, j in zip(
                *np.nonzero(n_ok < np.array([[r["units"]] for r in rows]))
            ):  # cells where some (or all) runs did not stop normally
                ax.add_patch(
                    Rectangle(
                        (xe[j], ye[i]),
                        xe[j + 1] - xe[j],
                        ye[i + 1] - ye[i],
                        fill=False,
                        hatch="xx" if n_ok[i, j] == 0 else "//",
                        ec="0.4",
                        lw=0,
                    )
                )
            good = ~edge
            ax.errorbar(
                la_star[good],
                ly[good],
                xerr=np.clip([la_star[good] - ci[good, 0], ci[good, 1] - la_star[good]], 0, None),
                fmt="wo-",
                mec="k",
                ecolor="w",
                elinewidth=1.5,
                capsize=3,
                ms=6,
            )
            if edge.any():
                ax.plot(la_star[edge], ly[edge], "wX", mec="k", ms=9)
            ax.plot(np.log10([r["alpha_zeta_zero"] for r in rows]), ly, "c:", lw=2)
            handles = [
                Line2D(
                    [],
                    [],
                    color="w",
                    marker="o",
                    mec="k",
                    mfc="w",
                    ls="-",
                    label="measured α* (pooled rule) with hierarchical bootstrap 95% CI over datasets",
                ),
                Line2D([], [], color="c", ls=":", lw=2, label="α_ζ, where the Phase-1 ζ(α) = 0 (no free constant)"),
            ]
            if edge.any():
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="w",
                        marker="X",
                        mec="k",
                        ls="",
                        ms=9,
                        label="argmin at the grid edge: α* not resolved",
                    )
                )
            if key == "n":
                ref = [r["alpha_star"] for r in rows if r["n"] == p["ref_n"]][0]
                pred = theory.predicted_alpha_star(
                    ys, p["width"], ref_alpha=ref, ref_n=p["ref_n"], ref_width=p["width"]
                )
                ax.plot(np.log10(pred), ly, "r--", lw=2)
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="r",
                        ls="--",
                        lw=2,
                        label=f"predicted α* ∝ 1/(n√h), through the measured α* at n={p['ref_n']}",
                    )
                )
            else:
                ref = [r["alpha_star"] for r in rows if r["snr"] == p["ref_snr"]][0]
                ax.axvline(np.log10(ref), color="r", ls="--", lw=2)
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="r",
                        ls="--",
                        lw=2,
                        label=f"predicted: α* ∝ 1/(n√h) has no κ/σ dependence (through κ/σ={p['ref_snr']:g})",
                    )
                )
            if (n_ok < np.array([[r["units"]] for r in rows])).any():
                handles += [
                    Patch(
                        fill=False, hatch="//", ec="0.4", label="some runs did not reach η (t_max): mean of the others"
                    ),
                    Patch(
                        fill=False, hatch="xx", ec="0.4", label="no run reached η: the loss stalled above η until t_max"
                    ),
                ]
            ax.set_yticks(ly, [f"{v:g}" for v in ys])
            ax.set_xlim(min(xe[0], np.nanmin(np.log10([r["alpha_zeta_zero"] for r in rows]))) - 0.2, xe[-1])
            ax.set_ylim(ye[0], ye[-1])
        axes[1, col].legend(
            handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=1, frameon=False
        )
    fig.suptitle(
        f"Phase diagrams: d={p['d']}, h={p['width']}, η={p['target_loss']:g}; (α, n) at κ/σ={p['ref_snr']:g}, {p['n_datasets']} "
        f"independent "
        f"datasets per n; (α, κ/σ) at n={p['ref_n']}, {p['snr_datasets']} datasets shared across κ/σ; ties (f = 0) counted as errors"
    )
    fa.save_figure(fig, out, "phase_diagram")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/phase_diagram")
    p = get_config(args.quick)
    timer = fa.Timer()
    n_raw = [row(p, n, p["ref_snr"], args.out) for n in p["n_values"]]
    s_raw = [row(p, p["ref_n"], snr, args.out) if snr != p["ref_snr"] else None for snr in p["snr_values"]]
    ref = n_raw[list(p["n_values"]).index(p["ref_n"])]
    k = p["snr_datasets"]
    s_raw = [
        r if r is not None else {**ref, "err": ref["err"][:, :k], "tie": ref["tie"][:, :k], "ok": ref["ok"][:, :k]}
        for r in s_raw
    ]
    ns = np.array(p["n_values"], float)
    in_regime = bool(all((r["separability"] > 0).all() for r in n_raw))  # the theory assumes orthogonal separability
    result = {}
    for ties in ("error", "half"):
        n_rows = analyse(p, n_raw, list(p["n_values"]), ties)
        s_rows = analyse(p, s_raw, ["snr"] * len(s_raw), ties)
        fits = {rule: fa.scan_exponent(list(ns), n_rows, rule) for rule in ("pooled", "median")}
        for f in fits.values():
            f["label"] = stats.verdict_label(theory.ALPHA_STAR_N_EXPONENT, f["ci95"], in_regime=in_regime)
        result[ties] = {"n_rows": n_rows, "snr_rows": s_rows, "n_exponent": fits}
        if ties == "error":
            plot(p, n_rows, s_rows, args.out)
    summary = {
        "preset": p,
        "in_regime": in_regime,
        "theory_n_exponent": theory.ALPHA_STAR_N_EXPONENT,
        **fa.strip_boot(result),
        "wall_s": timer.seconds(),
        "sweeps": timer.sweeps(),
    }
    fa.write_summary(args.out, summary)
    for ties, res in result.items():
        for r in res["n_rows"] + res["snr_rows"]:
            print(
                f"[{ties}] n={r['n']:>4} κ/σ={r['snr']:<4g} α*={r['alpha_star']:.3g} CI {np.round(r['ci95'], 4).tolist()} median "
                f"{r['alpha_star_median']:.3g} "
                f"CI {np.round(r['ci95_median'], 4).tolist()} edge={r['at_grid_edge']} α_ζ={r['alpha_zeta_zero']:.2e} λ max "
                f"{r['separability'].max():+.2f}"
            )
        for rule, f in res["n_exponent"].items():
            print(f"[{ties}] α*(n) exponent, {rule} rule: {f['exponent']} CI {f['ci95']} → {f['label']}")
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
