"""Figures of a deep sweep's run directory (from its `xarray.Dataset`, `gflow.load_run`), with matplotlib's
non-interactive Agg backend: the (c, η) heatmap of peak test accuracy (against η or against the step size η/c)
and the best accuracy vs c. Accuracies are in percent throughout."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.cm
import matplotlib.colors
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..runs.status import RUNNING  # noqa: E402
from ..runs.store import load_run  # noqa: E402
from .analysis import (STATUS_SHORT, as_arrays, best_over_lr, c_star, c_star_location, cell_table,  # noqa: E402
                       invalid_reason, status_counts)

C_LABEL = "output multiplier c  (small c: strong feature learning)"
LR_LABEL = "base learning rate η  (SGD step size η/c)"
STEP_LABEL = "SGD step size η/c"
NO_VALID = "no (c, η) cell reached the target with every seed"


def _edges(v):
    """Cell edges on a log axis: geometric midpoints, extended by half a step at the ends."""
    lv = np.log(np.asarray(v, np.float64))
    step = np.diff(lv) if len(lv) > 1 else np.array([np.log(10.0)])
    mids = (lv[:-1] + lv[1:]) / 2
    return np.exp(np.concatenate([[lv[0] - step[0] / 2], mids, [lv[-1] + step[-1] / 2]]))


def tick_label(v: float) -> str:
    """A grid value as a tick label: 2⁻⁶ style for powers of two (other than 1, 2, 4), else 3 digits."""
    k = np.log2(v)
    if abs(k - round(k)) < 1e-9 and not 0 <= round(k) <= 2:
        return f"$2^{{{int(round(k))}}}$"
    return f"{v:.3g}"


def grid_ticks(axis, values, label=tick_label) -> None:
    """Ticks at the grid values, labeled with them (a log axis would label only the decades); with
    many values the labels are rotated so they do not overlap."""
    axis.set_major_locator(matplotlib.ticker.FixedLocator(values))
    axis.set_major_formatter(matplotlib.ticker.FixedFormatter([label(v) for v in values]))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())
    if axis.axis_name == "x" and len(values) > 7:
        for label in axis.get_ticklabels():
            label.set_rotation(45)


def _title(ds, what: str) -> str:
    m = ds.attrs["config"]["model"]
    depth = f"-{m['depth']}" if m.get("depth") else ""
    return f"{ds.attrs['data']['name']}, {m['arch']}{depth}, {ds.sizes['seed']} seeds: {what}"


def _cell_labels(arrays, mean, valid):
    """Text per cell [c, η]: the mean in %, or each way its seeds failed with their share, e.g.
    'budget 1/2' over 'nonfinite 1/2' (a cell is valid only if every seed reached the target)."""
    n = arrays["status"].shape[-1]
    labels = np.empty(valid.shape, object)
    for i, j in np.ndindex(valid.shape):
        if valid[i, j]:
            labels[i, j] = f"{100 * mean[i, j]:.1f}"
        elif np.all(arrays["status"][i, j] == RUNNING):  # a cell of a merged grid that no sweep ran
            labels[i, j] = "not run"
        else:
            counts = status_counts(arrays["status"][i, j])
            labels[i, j] = "\n".join(f"{STATUS_SHORT[k]} {m}/{n}" for k, m in counts.items() if k != "reached_target")
    return labels


def heatmap_figure(ds, y: str = "lr"):
    """The heatmap figure of a deep run's Dataset (see `plot_heatmap`)."""
    arrays = as_arrays(ds)
    c, lr = np.asarray(arrays["multiplier"]), np.asarray(arrays["lr"])
    mean, _, valid = cell_table(arrays)
    pct = 100 * mean
    labels = _cell_labels(arrays, mean, valid)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(c) + 3.5), 0.6 * len(lr) + (3.5 if y == "step_size" else 2.5)),
                           constrained_layout=True)
    ax.set_facecolor("0.85")
    finite = pct[np.isfinite(pct)]
    norm = matplotlib.colors.Normalize(*(finite.min(), finite.max()) if finite.size else (0, 100))
    ce = _edges(c)
    mesh = None
    if y == "lr":
        mesh = ax.pcolormesh(ce, _edges(lr), np.ma.masked_invalid(pct.T), cmap="viridis", norm=norm, shading="flat")
        pos = [(ci, lj) for ci in c for lj in lr]
    elif y == "step_size":  # column i holds the cells (c_i, η_j / c_i)
        for i, ci in enumerate(c):
            mesh = ax.pcolormesh(ce[i : i + 2], _edges(lr) / ci, np.ma.masked_invalid(pct[i : i + 1].T), cmap="viridis",
                                 norm=norm, shading="flat")
        pos = [(ci, lj / ci) for ci in c for lj in lr]
        for i, ci in enumerate(c):  # grey background only behind the grid's cells
            ax.fill_between(ce[i : i + 2], _edges(lr)[0] / ci, _edges(lr)[-1] / ci, color="0.85", zorder=0)
        ax.set_facecolor("white")
        ax.set_ylim(_edges(lr)[0] / c.max(), _edges(lr)[-1] / c.min())
    else:
        raise ValueError(f"y: must be 'lr' or 'step_size', got {y!r}")
    if finite.size:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm, "viridis"), ax=ax,
                     label="peak test accuracy (%, mean over seeds)")
    mid = (norm.vmin + norm.vmax) / 2
    for (x0, y0), text, ok, v in zip(pos, labels.ravel(), valid.ravel(), pct.ravel()):
        ax.text(x0, y0, text, ha="center", va="center", fontsize=7,
                color=("white" if v < mid else "black") if ok else "0.25")
    if not finite.size:
        ax.text(0.5, 0.5, NO_VALID + "\n(grey cells: why, and how many seeds)", transform=ax.transAxes, ha="center",
                va="center", fontsize=10, color="tab:red", bbox={"facecolor": "white", "alpha": 0.8})
    ax.set(xscale="log", yscale="log", xlabel=C_LABEL, ylabel=LR_LABEL if y == "lr" else STEP_LABEL,
           title=_title(ds, "peak test accuracy (%)") +
           "\ngrey: seeds that missed the target (budget: stopped by its step budget)")
    grid_ticks(ax.xaxis, c)
    if y == "lr":
        grid_ticks(ax.yaxis, lr)
    return fig


def plot_heatmap(run_dir, out=None, *, y: str = "lr") -> Path:
    """Peak test accuracy (%, mean over seeds) on the (c, η) grid (`y='lr'`) or against the actual step
    size η/c (`y='step_size'`: column c holds the cells at η/c). Cells where not every seed reached the
    target are grey and say why (budget, diverged, nonfinite) and for how many seeds; with no valid
    cell the figure says so instead of showing a colour bar."""
    fig = heatmap_figure(load_run(run_dir), y)
    out = Path(out) if out else Path(run_dir) / ("heatmap.png" if y == "lr" else "heatmap_step_size.png")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def best_vs_c_figure(ds):
    """The best-vs-c figure of a deep run's Dataset (see `plot_best_vs_c`)."""
    arrays = as_arrays(ds)
    c = np.asarray(arrays["multiplier"])
    mean, se, _ = cell_table(arrays)
    best, best_se, idx = best_over_lr(mean, se)
    cs, interior = c_star(c, best)
    where = c_star_location(c, best)
    fig, ax = plt.subplots(figsize=(0.45 * len(c) + 4, 4.2), constrained_layout=True)
    ok = idx >= 0
    ax.errorbar(c[ok], 100 * best[ok], yerr=100 * np.nan_to_num(best_se[ok]), marker="o", capsize=3,
                label="best over η (mean ± s.e. over seeds)")
    ax.set(xscale="log", xlim=(_edges(c)[0], _edges(c)[-1]), xlabel=C_LABEL, ylabel="peak test accuracy (%), best η",
           title=_title(ds, "best peak test accuracy vs c"))
    if ok.any():
        err = np.nan_to_num(best_se[ok])  # one seed: no standard error
        lo, hi = np.min(100 * (best[ok] - err)), np.max(100 * (best[ok] + err))
        pad = max(0.5, 0.1 * (hi - lo))
        ax.set_ylim(lo - 2 * pad, hi + pad)
    else:
        ax.set_ylim(0, 100)
        ax.text(0.5, 0.5, NO_VALID, transform=ax.transAxes, ha="center", va="center", color="tab:red")
    y_bad = ax.get_ylim()[0] + 0.05 * np.diff(ax.get_ylim())[0]
    for k in np.flatnonzero(~ok):  # every c stays on the axis: invalid ones marked with why
        ax.plot(c[k], y_bad, "x", color="tab:red", ms=8)
        ax.annotate(invalid_reason(arrays["status"][k]), (c[k], y_bad), xytext=(0, 7), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color="tab:red", rotation=90 if len(c) > 7 else 0)
    if (~ok).any():
        ax.plot([], [], "x", color="tab:red", label="no η with every seed at the target (why below)")
    if np.isfinite(cs):
        ax.axvline(cs, color="tab:red", ls="--",
                   label=f"c* = {cs:.3g}" + ("" if interior else f" (a bound: best c at the {where})"))
    grid_ticks(ax.xaxis, c)
    ax.legend(fontsize=8)
    return fig


def plot_best_vs_c(run_dir, out=None) -> Path:
    """Best peak test accuracy (%) over η at each c (mean ± s.e. over seeds at that η), with c* marked.
    Every c of the grid stays on the axis; a c where no η had every seed reach the target is marked ×
    with the reason (budget, diverged, nonfinite); with no valid cell at all the figure says so."""
    fig = best_vs_c_figure(load_run(run_dir))
    out = Path(out) if out else Path(run_dir) / "best_vs_c.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
