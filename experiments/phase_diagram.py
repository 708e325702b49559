"""Claim 6, phase diagrams: test error over the (α, n) and (α, κ/σ) planes, with the measured optimum
per row and the predicted α*(n) ∝ 1/n (through the measured α* at the reference n) drawn on top.

    python experiments/phase_diagram.py [--quick] [--out runs/phase_diagram]

One sweep per row (n or κ/σ); rows share the default problem otherwise. Also drawn: α_ζ, where the
Phase-1 quantity ζ(α) = 1 − 4αn√h x_max² W_max²/‖x₊‖ crosses zero (no free constant). Writes
<out>/n<n>_snr<κ/σ>/, summary.json, phase_diagram.png.
"""

from __future__ import annotations

import numpy as np

import fls_analysis as fa
import gflow
from gflow import theory


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
    )
    if quick:
        preset.update(d=5, width=20, ref_n=20, n_values=(20, 40), snr_values=(2.0, 3.0), n_test=2000, init_scales=(1e-3, 1e-1, 3.0), n_seeds=2)
    return preset


def make_config(p: dict, n: int, snr: float) -> gflow.Config:
    return gflow.Config(
        data=gflow.DataConfig(n=n, d=p["d"], kappa=p["kappa"], sigma=p["kappa"] / snr, seed=p["data_seed"], n_test=p["n_test"]),
        model=gflow.ModelConfig(width=p["width"]),
        flow=gflow.FlowConfig(target_loss=p["target_loss"]),
        sweep=gflow.SweepConfig(init_scales=tuple(p["init_scales"]), n_seeds=p["n_seeds"]),
    )


def row(p: dict, n: int, snr: float, out) -> dict:
    cfg = make_config(p, n, snr)
    arrays, _ = fa.sweep(cfg, out, f"n{n}_snr{snr:g}")
    ok = fa.ok_mask(arrays["status"])
    mean, se, _ = fa.seed_mean(arrays["final_test_err"], ok)
    geo = fa.geometry(cfg.data)
    w_max = fa.unit_width_max(p["d"], p["width"], range(p["n_seeds"]))
    a_star, edge = fa.refine_argmin(arrays["init_scale"], mean)
    return {"n": n, "snr": snr, "mean": mean, "se": se, "alpha_star": a_star, "at_grid_edge": edge,
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
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


def plot(p, n_rows, s_rows, out):
    plt = fa.plt
    alpha = np.asarray(p["init_scales"])
    la = np.log10(alpha)
    fig, axes = plt.subplots(2, 2, figsize=(14, 10), constrained_layout=True)
    for col, rows, key, ylabel in ((0, n_rows, "n", "training points n"), (1, s_rows, "snr", "signal-to-noise κ/σ")):
        ys = np.array([r[key] for r in rows], float)
        z = np.stack([r["mean"] for r in rows])
        rel = z / np.nanmin(z, axis=1, keepdims=True) - 1
        heatmap(axes[0, col], alpha, ys, z, f"log₁₀ {ylabel}", f"mean test error over (α, {key}) ({p['n_seeds']} seeds per cell)", "log₁₀ test error", fig)
        heatmap(axes[1, col], alpha, ys, np.maximum(rel, 1e-3), f"log₁₀ {ylabel}", "test error relative to the row's best: err/min − 1", "log₁₀(err/min − 1)", fig, cmap="viridis")
        for ax in axes[:, col]:
            ly = np.log10(ys)
            a_star = np.array([r["alpha_star"] for r in rows])
            ax.plot(np.log10(a_star), ly, "wo-", mec="k", ms=6, label="measured α* (refined argmin)")
            ax.plot(np.log10([r["alpha_zeta_zero"] for r in rows]), ly, "c:", lw=2, label="α_ζ (ζ = 0)")
            if key == "n":
                ref = [r["alpha_star"] for r in rows if r["n"] == p["ref_n"]][0]
                pred = theory.predicted_alpha_star(ys, p["width"], ref_alpha=ref, ref_n=p["ref_n"], ref_width=p["width"])
                ax.plot(np.log10(pred), ly, "r--", lw=2, label=f"predicted α* ∝ 1/n through n={p['ref_n']}")
            else:
                ref = [r["alpha_star"] for r in rows if r["snr"] == p["ref_snr"]][0]
                ax.axvline(np.log10(ref), color="r", ls="--", lw=2, label="α* ∝ 1/(n√h): no κ/σ dependence")
            ax.set_xlim(la[0] - 0.3, la[-1] + 0.3)
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Phase diagrams: d={p['d']}, h={p['width']}, η={p['target_loss']:g}; (α, n) at κ/σ={p['ref_snr']:g}, (α, κ/σ) at n={p['ref_n']}")
    fa.save_figure(fig, out, "phase_diagram")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/phase_diagram")
    p = get_config(args.quick)
    timer = fa.Timer()
    n_rows = [row(p, n, p["ref_snr"], args.out) for n in p["n_values"]]
    s_rows = [row(p, p["ref_n"], snr, args.out) for snr in p["snr_values"]]
    plot(p, n_rows, s_rows, args.out)
    ns = np.array(p["n_values"], float)
    fit = fa.fit_power_law(ns, [r["alpha_star"] for r in n_rows])[0]
    summary = {"preset": p, "n_rows": n_rows, "snr_rows": s_rows, "alpha_star_n_exponent": fit, "wall_s": timer.seconds(), "sweeps": timer.sweeps()}
    fa.write_summary(args.out, summary)
    for r in n_rows + s_rows:
        print(f"n={r['n']:>4} κ/σ={r['snr']:<4g} α*={r['alpha_star']:.3g} edge={r['at_grid_edge']} α_ζ={r['alpha_zeta_zero']:.2e} λ={r['separability']:+.2f}")
    print(f"α*(n) exponent (point fit) {fit:.3f}; wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
