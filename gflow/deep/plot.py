"""Figures of a deep sweep's run directory (reads only manifest.json and arrays.npz), with matplotlib's
non-interactive Agg backend: the (c, η) heatmap of peak test accuracy and the best accuracy vs c."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..store import load_run  # noqa: E402
from .analysis import best_over_lr, cell_table, c_star  # noqa: E402
from .train import STATUS_CODE  # noqa: E402

C_LABEL = "output multiplier c  (small c: strong feature learning)"
LR_LABEL = "base learning rate η  (SGD step size η/c)"


def _edges(v):
    """Cell edges on a log axis: geometric midpoints, extended by half a step at the ends."""
    lv = np.log(np.asarray(v, np.float64))
    step = np.diff(lv) if len(lv) > 1 else np.array([np.log(10.0)])
    mids = (lv[:-1] + lv[1:]) / 2
    return np.exp(np.concatenate([[lv[0] - step[0] / 2], mids, [lv[-1] + step[-1] / 2]]))


def _grid_ticks(axis, values) -> None:
    """Ticks at the grid values, labeled with them (a log axis would label only the decades)."""
    axis.set_major_locator(matplotlib.ticker.FixedLocator(values))
    axis.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{v:.3g}" for v in values]))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


def plot_heatmap(run_dir, out=None) -> Path:
    """Peak test accuracy (mean over seeds) on the (c, η) grid; cells where not every seed reached the
    target are grey and labeled with the commonest failure (div, nan, max)."""
    manifest, arrays = load_run(run_dir)
    c, lr = arrays["multiplier"], arrays["lr"]
    mean, _, valid = cell_table(arrays)
    fig, ax = plt.subplots(figsize=(1.1 * len(c) + 3, 0.6 * len(lr) + 2.5), constrained_layout=True)
    ax.set_facecolor("0.85")
    mesh = ax.pcolormesh(_edges(c), _edges(lr), np.ma.masked_invalid(mean.T), cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="peak test accuracy (mean over seeds)")
    short = {STATUS_CODE["diverged"]: "div", STATUS_CODE["nonfinite"]: "nan", STATUS_CODE["max_steps"]: "max"}
    for i, ci in enumerate(c):
        for j, lj in enumerate(lr):
            if valid[i, j]:
                text, color = f"{100 * mean[i, j]:.1f}", "white" if mean[i, j] < np.nanmean(mean) else "black"
            else:
                bad = arrays["status"][i, j][arrays["status"][i, j] != STATUS_CODE["reached_target"]]
                text, color = short.get(int(np.bincount(bad).argmax()), "?"), "0.3"
            ax.text(ci, lj, text, ha="center", va="center", fontsize=8, color=color)
    ax.set(xscale="log", yscale="log", xlabel=C_LABEL, ylabel=LR_LABEL,
           title=f"{manifest['data']['name']}, {manifest['config']['model']['arch']}: peak test accuracy (%)")
    _grid_ticks(ax.xaxis, c)
    _grid_ticks(ax.yaxis, lr)
    out = Path(out) if out else Path(run_dir) / "heatmap.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_best_vs_c(run_dir, out=None) -> Path:
    """Best peak test accuracy over η at each c (mean ± s.e. over seeds at that η), with c* marked."""
    manifest, arrays = load_run(run_dir)
    c = arrays["multiplier"]
    mean, se, _ = cell_table(arrays)
    best, best_se, idx = best_over_lr(mean, se)
    cs, interior = c_star(c, best)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.errorbar(c, best, yerr=np.nan_to_num(best_se), marker="o", capsize=3, label="best over η")
    if np.isfinite(cs):
        ax.axvline(cs, color="tab:red", ls="--", label=f"c* = {cs:.3g}" + ("" if interior else " (a bound: grid end or next to a gap)"))
    ax.set(xscale="log", xlabel=C_LABEL, ylabel="peak test accuracy (best η)",
           title=f"{manifest['data']['name']}, {manifest['config']['model']['arch']}, "
                 f"{arrays['status'].shape[-1]} seeds")
    _grid_ticks(ax.xaxis, c)
    ax.legend()
    out = Path(out) if out else Path(run_dir) / "best_vs_c.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
