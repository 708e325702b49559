"""Claim 6, phase diagrams: test error over the (α, n) and (α, κ/σ) planes, with the measured optimum
per row and the predicted α*(n) ∝ 1/n (through the measured α* at the reference n) drawn on top.

    python experiments/phase_diagram.py [--quick] [--out runs/phase_diagram]

One sweep per row (n or κ/σ); rows share the default problem otherwise. Also drawn: α_ζ, where the
Phase-1 quantity ζ(α) = 1 − 4αn√h x_max² W_max²/‖x₊‖ crosses zero (no free constant). Writes
<out>/n<n>_snr<κ/σ>/, summary.json, phase_diagram.png.
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
        d=100, kappa=1.0, width=100,  # the default problem (κ fixed; σ = κ/snr)
        ref_n=40, ref_snr=2.0,  # the row the two planes share, and the calibration point of α*(n) ∝ 1/n
        n_values=(10, 20, 40, 80, 160),  # rows of the (α, n) plane, at κ/σ = ref_snr
        snr_values=(1.0, 1.5, 2.0, 3.0, 4.0),  # rows of the (α, κ/σ) plane, at n = ref_n
        data_seed=0,  # one dataset per row
        n_test=10_000,  # Monte-Carlo test points at the stop
        target_loss=0.01,  # stop at training loss η
        init_scales=tuple(np.logspace(-4, 1, 11)),  # α grid (columns)
        n_seeds=4,  # init seeds per cell
        n_boot=1000,  # bootstrap replicates (over init seeds) for α* per row and the α*(n) exponent
    )
    if quick:
        preset.update(d=5, width=20, ref_n=20, n_values=(20, 40), snr_values=(2.0, 3.0), n_test=2000, init_scales=(1e-3, 1e-1, 3.0), n_seeds=2, n_boot=20)
    return preset


def row(p: dict, n: int, snr: float, out) -> dict:
    cfg = gflow.Config.from_fields(n=n, d=p["d"], kappa=p["kappa"], sigma=p["kappa"] / snr, seed=p["data_seed"], n_test=p["n_test"],
                                   width=p["width"], target_loss=p["target_loss"], init_scales=p["init_scales"], n_seeds=p["n_seeds"])
    arrays = fa.sweep(cfg, out, f"n{n}_snr{snr:g}")
    ok = fa.ok_mask(arrays["status"])
    o = stats.argmin_estimate(arrays["init_scale"], arrays["final_test_err"], ok, n_boot=p["n_boot"], seed=n + int(100 * snr))
    geo = fa.geometry(cfg.data)
    w_max = fa.unit_width_max(p["d"], p["width"], range(p["n_seeds"]))
    return {"n": n, "snr": snr, "mean": o.mean, "se": o.se, "n_ok": o.count, "alpha_star": o.x, "at_grid_edge": o.at_edge,
            "alpha_star_boot": o.boot, "ci95": o.ci95,
            "alpha_zeta_zero": float(theory.alpha_zeta_zero(n, p["width"], geo["x_max"], w_max, geo["xplus_norm"])),
            "separability": geo["separability"], "bayes_error": geo["bayes_error"], "status_counts": fa.status_counts(arrays["status"])}


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
        heatmap(axes[0, col], alpha, ys, z, ylabel, f"mean test error over (α, {ylabel}), {p['n_seeds']} init seeds per cell", "log₁₀ test error", fig)
        heatmap(axes[1, col], alpha, ys, np.maximum(rel, 1e-3), ylabel, "test error relative to the row's best: err/min − 1 (floored at 10⁻³)",
                "log₁₀(err/min − 1)", fig, cmap="viridis")
        a_star = np.array([r["alpha_star"] for r in rows])
        edge = np.array([r["at_grid_edge"] for r in rows])
        ci = np.log10(np.array([r["ci95"] for r in rows]))
        la_star = np.log10(a_star)
        for ax in axes[:, col]:
            for i, j in zip(*np.nonzero(n_ok < p["n_seeds"])):  # cells where some (or all) runs did not stop normally
                ax.add_patch(Rectangle((xe[j], ye[i]), xe[j + 1] - xe[j], ye[i + 1] - ye[i], fill=False, hatch="xx" if n_ok[i, j] == 0 else "//",
                                       ec="0.4", lw=0))
            good = ~edge
            ax.errorbar(la_star[good], ly[good], xerr=[la_star[good] - ci[good, 0], ci[good, 1] - la_star[good]], fmt="wo-", mec="k",
                        ecolor="w", elinewidth=1.5, capsize=3, ms=6)
            if edge.any():
                ax.plot(la_star[edge], ly[edge], "wX", mec="k", ms=9)
            ax.plot(np.log10([r["alpha_zeta_zero"] for r in rows]), ly, "c:", lw=2)
            handles = [Line2D([], [], color="w", marker="o", mec="k", mfc="w", ls="-", label="measured α* (refined argmin) with bootstrap 95% CI over init seeds"),
                       Line2D([], [], color="c", ls=":", lw=2, label="α_ζ, where the Phase-1 ζ(α) = 0 (no free constant)")]
            if edge.any():
                handles.append(Line2D([], [], color="w", marker="X", mec="k", ls="", ms=9, label="argmin at the grid edge: α* not resolved"))
            if key == "n":
                ref = [r["alpha_star"] for r in rows if r["n"] == p["ref_n"]][0]
                pred = theory.predicted_alpha_star(ys, p["width"], ref_alpha=ref, ref_n=p["ref_n"], ref_width=p["width"])
                ax.plot(np.log10(pred), ly, "r--", lw=2)
                handles.append(Line2D([], [], color="r", ls="--", lw=2, label=f"predicted α* ∝ 1/(n√h), through the measured α* at n={p['ref_n']}"))
            else:
                ref = [r["alpha_star"] for r in rows if r["snr"] == p["ref_snr"]][0]
                ax.axvline(np.log10(ref), color="r", ls="--", lw=2)
                handles.append(Line2D([], [], color="r", ls="--", lw=2, label=f"predicted: α* ∝ 1/(n√h) has no κ/σ dependence (through κ/σ={p['ref_snr']:g})"))
            if (n_ok < p["n_seeds"]).any():
                handles += [Patch(fill=False, hatch="//", ec="0.4", label="some runs did not reach η (t_max): mean of the others"),
                            Patch(fill=False, hatch="xx", ec="0.4", label="no run reached η: the loss stalled above η until t_max")]
            ax.set_yticks(ly, [f"{v:g}" for v in ys])
            ax.set_xlim(min(xe[0], np.nanmin(np.log10([r["alpha_zeta_zero"] for r in rows]))) - 0.2, xe[-1])
            ax.set_ylim(ye[0], ye[-1])
        axes[1, col].legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=1, frameon=False)
    fig.suptitle(f"Phase diagrams: d={p['d']}, h={p['width']}, η={p['target_loss']:g}, one dataset per row; (α, n) at κ/σ={p['ref_snr']:g}, "
                 f"(α, κ/σ) at n={p['ref_n']}")
    fa.save_figure(fig, out, "phase_diagram")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/phase_diagram")
    p = get_config(args.quick)
    timer = fa.Timer()
    n_rows = [row(p, n, p["ref_snr"], args.out) for n in p["n_values"]]
    s_rows = [row(p, p["ref_n"], snr, args.out) for snr in p["snr_values"]]
    plot(p, n_rows, s_rows, args.out)
    ns = np.array(p["n_values"], float)
    fit = stats.fit_power_law(ns, [r["alpha_star"] for r in n_rows])[0]
    _, fit_ci = stats.bootstrap_exponent(ns, np.stack([r["alpha_star_boot"] for r in n_rows]))
    for r in n_rows + s_rows:
        del r["alpha_star_boot"]
    summary = {"preset": p, "n_rows": n_rows, "snr_rows": s_rows, "alpha_star_n_exponent": fit, "alpha_star_n_exponent_ci95": fit_ci,
               "wall_s": timer.seconds(), "sweeps": timer.sweeps()}
    fa.write_summary(args.out, summary)
    for r in n_rows + s_rows:
        print(f"n={r['n']:>4} κ/σ={r['snr']:<4g} α*={r['alpha_star']:.3g} CI {np.round(r['ci95'], 4).tolist()} edge={r['at_grid_edge']} α_ζ={r['alpha_zeta_zero']:.2e} λ={r['separability']:+.2f}")
    print(f"α*(n) exponent (point fit) {fit:.3f} CI {np.round(fit_ci, 3).tolist()}; wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
