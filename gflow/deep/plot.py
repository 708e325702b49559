"""Figures of a deep sweep's run directory (from its `xarray.Dataset`, `gflow.load_run`), with matplotlib's
non-interactive Agg backend: the (c, η) heatmap of the reported test accuracy (against η or against the step
size η/c), the accuracy at the chosen η vs c, and the learning curves of one (c, η) cell. Accuracies are in
percent throughout. Every figure says how the peaks were selected (on validation, or on test for runs
saved before the validation split: `gflow.deep.analysis.selection`)."""

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
from .analysis import (
    STATUS_SHORT,
    as_arrays,
    c_star,
    c_star_location,
    invalid_reason,
    selected_best,  # noqa: E402
    selection,
    status_counts,
)

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


def _metric_label(arrays) -> str:
    """What the accuracies of a figure are, with how they were selected."""
    if selection(arrays) == "validation":
        return "test accuracy at the validation peak (%)"
    return f"peak test accuracy (%; selected on test: {selection(arrays)[6:-1]})"


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
    chosen = selected_best(arrays)
    mean, valid = chosen["rep_cells"], chosen["valid"]
    pct = 100 * mean
    labels = _cell_labels(arrays, mean, valid)
    fig, ax = plt.subplots(
        figsize=(max(7.0, 0.75 * len(c) + 3.5), 0.6 * len(lr) + (3.5 if y == "step_size" else 2.5)),
        constrained_layout=True,
    )
    ax.set_facecolor("0.85")
    finite = pct[np.isfinite(pct)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0, 100)  # the colour scale's ends
    norm = matplotlib.colors.Normalize(lo, hi)
    ce = _edges(c)
    if y == "lr":
        ax.pcolormesh(ce, _edges(lr), np.ma.masked_invalid(pct.T), cmap="viridis", norm=norm, shading="flat")
        pos = [(ci, lj) for ci in c for lj in lr]
    elif y == "step_size":  # column i holds the cells (c_i, η_j / c_i)
        for i, ci in enumerate(c):
            ax.pcolormesh(
                ce[i : i + 2],
                _edges(lr) / ci,
                np.ma.masked_invalid(pct[i : i + 1].T),
                cmap="viridis",
                norm=norm,
                shading="flat",
            )
        pos = [(ci, lj / ci) for ci in c for lj in lr]
        for i, ci in enumerate(c):  # grey background only behind the grid's cells
            ax.fill_between(ce[i : i + 2], _edges(lr)[0] / ci, _edges(lr)[-1] / ci, color="0.85", zorder=0)
        ax.set_facecolor("white")
        ax.set_ylim(_edges(lr)[0] / c.max(), _edges(lr)[-1] / c.min())
    else:
        raise ValueError(f"y: must be 'lr' or 'step_size', got {y!r}")
    if finite.size:
        fig.colorbar(
            matplotlib.cm.ScalarMappable(norm, "viridis"), ax=ax, label="test accuracy (%), seed mean"
        )  # at which step: the title says
    mid = (lo + hi) / 2
    for (x0, y0), text, ok, v in zip(pos, labels.ravel(), valid.ravel(), pct.ravel()):
        ax.text(
            x0,
            y0,
            text,
            ha="center",
            va="center",
            fontsize=7,
            color=("white" if v < mid else "black") if ok else "0.25",
        )
    if not finite.size:
        ax.text(
            0.5,
            0.5,
            NO_VALID + "\n(grey cells: why, and how many seeds)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color="tab:red",
            bbox={"facecolor": "white", "alpha": 0.8},
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=C_LABEL,
        ylabel=LR_LABEL if y == "lr" else STEP_LABEL,
        title=_title(ds, _metric_label(arrays))
        + "\ngrey: seeds that missed the target (budget: stopped by its step budget)",
    )
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
    chosen = selected_best(arrays)
    best, best_se, idx = chosen["rep"], chosen["rep_se"], chosen["idx"]
    validation = selection(arrays) == "validation"
    cs, interior = c_star(c, chosen["sel"])
    where = c_star_location(c, chosen["sel"])
    fig, ax = plt.subplots(figsize=(0.45 * len(c) + 4, 4.2), constrained_layout=True)
    ok = idx >= 0
    on = "validation" if validation else "test"
    ax.errorbar(
        c[ok],
        100 * best[ok],
        yerr=100 * np.nan_to_num(best_se[ok]),
        marker="o",
        capsize=3,
        label=f"test, at the η chosen on {on} (mean ± s.e. over seeds)",
    )
    if validation and ok.any():
        ax.plot(
            c[ok], 100 * chosen["sel"][ok], "s--", color="0.5", ms=4, label="validation (what η and c* are chosen on)"
        )
    ax.set(
        xscale="log",
        xlim=(_edges(c)[0], _edges(c)[-1]),
        xlabel=C_LABEL,
        ylabel=_metric_label(arrays),
        title=_title(ds, "accuracy at the best η vs c") + f"\n(η and c* chosen on {on})",
    )
    if ok.any():
        err = np.nan_to_num(best_se[ok])  # one seed: no standard error
        shown = np.concatenate([best[ok] - err, best[ok] + err] + ([chosen["sel"][ok]] if validation else []))
        lo, hi = np.min(100 * shown), np.max(100 * shown)
        pad = max(0.5, 0.1 * (hi - lo))
        ax.set_ylim(lo - 2 * pad, hi + pad)
    else:
        ax.set_ylim(0, 100)
        ax.text(0.5, 0.5, NO_VALID, transform=ax.transAxes, ha="center", va="center", color="tab:red")
    y_bad = ax.get_ylim()[0] + 0.05 * np.diff(ax.get_ylim())[0]
    for k in np.flatnonzero(~ok):  # every c stays on the axis: invalid ones marked with why
        ax.plot(c[k], y_bad, "x", color="tab:red", ms=8)
        ax.annotate(
            invalid_reason(arrays["status"][k]),
            (c[k], y_bad),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
            color="tab:red",
            rotation=90 if len(c) > 7 else 0,
        )
    if (~ok).any():
        ax.plot([], [], "x", color="tab:red", label="no η with every seed at the target (why below)")
    if np.isfinite(cs):
        ax.axvline(
            cs,
            color="tab:red",
            ls="--",
            label=f"c* = {cs:.3g}, chosen on {on}" + ("" if interior else f" (a bound: best c at the {where})"),
        )
    grid_ticks(ax.xaxis, c)
    ax.legend(fontsize=8)
    return fig


def plot_best_vs_c(run_dir, out=None) -> Path:
    """At each c, the test accuracy (%) at the η chosen on validation (mean ± s.e. over seeds at that η) and
    the validation accuracy it was chosen on, with c* (chosen on validation) marked.
    Every c of the grid stays on the axis; a c where no η had every seed reach the target is marked ×
    with the reason (budget, diverged, nonfinite); with no valid cell at all the figure says so."""
    fig = best_vs_c_figure(load_run(run_dir))
    out = Path(out) if out else Path(run_dir) / "best_vs_c.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def curves_figure(ds, multiplier: float, lr: float):
    """Learning curves of the cell (c, η) of a deep run's Dataset: loss and accuracy of every seed on the
    training, validation and test sets at every check, the selected peak step of each seed marked."""
    c, lrs = np.asarray(ds["multiplier"]), np.asarray(ds["lr"])
    i, j = int(np.argmin(np.abs(np.log(c / multiplier)))), int(np.argmin(np.abs(np.log(lrs / lr))))
    if not (np.isclose(c[i], multiplier, rtol=1e-6) and np.isclose(lrs[j], lr, rtol=1e-6)):
        raise ValueError(
            f"--curves: no cell c = {multiplier:g}, η = {lr:g} in this run (c: "
            f"{', '.join(f'{v:g}' for v in c)}; η: {', '.join(f'{v:g}' for v in lrs)})"
        )
    if "curve_train_loss" not in ds:
        raise ValueError("--curves: this run directory holds no learning curves (saved before they were recorded)")
    steps = np.asarray(ds["step"])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    names = {"train": "train", "val": "validation", "test": "test"}
    for s in range(ds.sizes["seed"]):
        style = ["-", "--", ":", "-."][s % 4]
        for split, color in colors.items():
            loss = np.asarray(ds[f"curve_{split}_loss"][i, j, s], np.float64)
            acc = 100 * np.asarray(ds[f"curve_{split}_acc"][i, j, s], np.float64)
            if not np.isfinite(acc).any():
                continue
            label = f"{names[split]}, seed {s}"
            ax_loss.plot(steps, loss, style, color=color, label=label)
            ax_acc.plot(steps, acc, style, color=color, label=label)
        peak = int(ds["peak_step"][i, j, s])
        ax_acc.axvline(peak, color="0.4", ls=style, lw=0.8)
    ax_loss.set(yscale="log", xlabel="SGD step", ylabel="loss", title="loss")
    ax_acc.set(
        xlabel="SGD step",
        ylabel="accuracy (%)",
        title=f"accuracy (grey: the selected peak step, on {'validation' if selection(as_arrays(ds)) == 'validation' else 'test'})",
    )
    ax_acc.legend(fontsize=7)
    fig.suptitle(_title(ds, f"learning curves at c = {c[i]:.3g}, η = {lrs[j]:.3g} (η/c = {lrs[j] / c[i]:.3g})"))
    return fig


def plot_curves(run_dir, multiplier: float, lr: float, out=None) -> Path:
    """The learning curves of the (c, η) cell of a run directory (`curves_figure`), as
    RUN_DIR/curves_c<c>_lr<η>.png unless `out` is given."""
    fig = curves_figure(load_run(run_dir), multiplier, lr)
    out = Path(out) if out else Path(run_dir) / f"curves_c{multiplier:g}_lr{lr:g}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
