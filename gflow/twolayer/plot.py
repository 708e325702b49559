"""Figures from a run directory's `xarray.Dataset` (`gflow.load_run`). The library core never imports
matplotlib; this module does, with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..runs import status  # noqa: E402
from ..runs.store import (
    arrays_of,  # noqa: E402
    load_run,  # noqa: E402
)
from ..stats import seed_mean  # noqa: E402

STATUS_COLORS = {
    "reached_target": "tab:green",
    "reached_target_unrefined": "tab:olive",
    "target_at_init": "tab:cyan",
    "t_max": "tab:orange",
    "max_steps": "tab:red",
    "nonfinite": "black",
    "solver_error": "tab:purple",
}


def seed_stats(values: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard error and count over seeds (axis 1) of the runs with ok status only (`gflow.stats.seed_mean`)."""
    return seed_mean(values, ok, axis=1)


def ok_mask(ds) -> np.ndarray:
    """Whether each run of a run's Dataset stopped normally (`gflow.runs.status.OK`)."""
    return status.is_ok(ds["status"].values)


TIE_LABELS = {
    "error": "ties = error (f = 0 counted as an error)",
    "half": "ties = half (f = 0 counted as half an error)",
    "correct": "ties = correct: an abstention-adjusted error, not a test error",
}


def tie_weight_of(ds, index=()) -> float:
    """The weight with which the stored test errors of a run's Dataset count f = 0: its flow.ties, or, where
    flow.ties is a grid axis, the value of the combination `index` (of `leading_combos`)."""
    from .gm_error import tie_weight

    lead = [a for a in ds["status"].dims if a not in ("init_scale", "seed")]
    if "flow.ties" in lead:
        return tie_weight(str(ds["flow.ties"].values[index[lead.index("flow.ties")]]))
    return tie_weight(ds.attrs["config"]["flow"]["ties"])


def errors_by_tie_convention(ds, arrays, index=()) -> dict[str, np.ndarray]:
    """The Monte-Carlo test error of each run of combination `index` under 'error' and 'half' ([scale, seed]),
    and the tie mass ('tie': the fraction of test points with f = 0), from the stored error (which counts a
    tie with the run's flow.ties weight w) and tie fraction: err(w') = err − (w − w')·tie."""
    err, tie = (
        np.asarray(arrays["final_test_err"][index], np.float64),
        np.asarray(arrays["final_test_tie"][index], np.float64),
    )
    w = tie_weight_of(ds, index)
    return {"error": err + (1.0 - w) * tie, "half": err + (0.5 - w) * tie, "tie": tie}


def _band(ax, x, mean, se, label, color, marker="o"):
    ax.plot(x, mean, marker=marker, color=color, label=label, ms=4)
    ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.25, lw=0)


def leading_combos(ds):
    """(label, index) for every combination of the axes before [init_scale, seed] ("" and () if none)."""
    import itertools

    lead = [a for a in ds["status"].dims if a not in ("init_scale", "seed")]
    values = [ds[a].values for a in lead]
    for index in itertools.product(*(range(len(v)) for v in values)):
        label = ", ".join(f"{a}={v[i]:g}" for a, v, i in zip(lead, values, index))
        yield label, index


def plot_sweep(run_dir, out: str | Path | None = None, max_curves: int = 8) -> Path:
    """The sweep figure (see `sweep_figure`) of the run in `run_dir`, saved as a PNG (by default
    `run_dir/u_curve.png`). Returns the path of the PNG."""
    fig = sweep_figure(load_run(run_dir), max_curves)
    out = Path(out) if out is not None else Path(run_dir) / "u_curve.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


class _Panel(NamedTuple):
    """What every panel of the sweep figure reads."""

    ds: Any  # the run's xarray.Dataset
    arrays: dict
    alpha: np.ndarray
    ok_all: np.ndarray
    combos: list
    many: bool
    n_seeds: int
    colors: list


def sweep_figure(ds, max_curves: int = 8):
    """The sweep figure of a run's Dataset: test error vs α (mean ± s.e. over seeds, Bayes error),
    alignments vs α, t_η vs α, and the status of every run. Grid axes beyond [scale, seed] give one
    curve per combination (the first `max_curves`). Returns the matplotlib Figure (2 × 2 axes)."""
    manifest, arrays = ds.attrs, arrays_of(ds)
    combos = list(leading_combos(ds))[:max_curves]
    p = _Panel(
        ds=ds,
        arrays=arrays,
        alpha=arrays["init_scale"],
        ok_all=ok_mask(ds),
        combos=combos,
        many=len(combos) > 1,
        n_seeds=arrays["status"].shape[-1],
        colors=plt.rcParams["axes.prop_cycle"].by_key()["color"],
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    _error_panel(axes[0, 0], p)
    _alignment_panel(axes[0, 1], p)
    eta = manifest["config"]["flow"]["target_loss"]
    _time_panel(axes[1, 0], p, eta)
    _status_panel(axes[1, 1], p, manifest["statuses"])
    cfg = manifest["config"]
    d = cfg["data"]
    swept = ", ".join(a for a in ds["status"].dims if a not in ("init_scale", "seed"))
    fig.suptitle(
        f"gflow sweep: n={d['n']}, d={d['d']}, κ={d['kappa']}, σ={d['sigma']}, h={cfg['model']['width']}, "
        f"η={eta:g}, {cfg['flow']['solver']} rtol={cfg['flow']['rtol']:g}, {cfg['flow']['dtype']}"
        + (f"; swept: {swept}" if swept else "")
    )
    return fig


def _error_panel(ax, p: _Panel) -> None:
    """Test error vs α under ties = error (band) and half (dashed), the tie mass, E(ŵ₊), the best α, Bayes."""
    alpha, many, colors = p.alpha, p.many, p.colors
    for k, (label, index) in enumerate(p.combos):
        ok = p.ok_all[index]
        by_tie = errors_by_tie_convention(p.ds, p.arrays, index)
        m, se, _ = seed_stats(by_tie["error"], ok)
        color = colors[(2 * k) % len(colors)]
        _band(
            ax,
            alpha,
            m,
            se,
            f"network {label}, {TIE_LABELS['error']}" if many else f"network, {TIE_LABELS['error']}",
            color,
        )
        mh, _, _ = seed_stats(by_tie["half"], ok)
        ax.plot(
            alpha,
            mh,
            "--",
            color=color,
            lw=1.2,
            label=f"network {label}, {TIE_LABELS['half']}" if many else f"network, {TIE_LABELS['half']}",
        )
        mt, _, _ = seed_stats(by_tie["tie"], ok)
        if np.any(mt > 0):
            ax.plot(
                alpha,
                mt,
                ":",
                color=color,
                lw=1.2,
                label=f"tie mass P(f = 0) {label}" if many else "tie mass P(f = 0) (the gap between them, ×2)",
            )
        m2, se2, _ = seed_stats(p.arrays["final_lin_err"][index], ok)
        if np.any(np.isfinite(m2)):
            _band(
                ax,
                alpha,
                m2,
                se2,
                f"E(ŵ₊) {label}" if many else "effective predictor E(ŵ₊) (analytic)",
                colors[(2 * k + 1) % len(colors)],
                marker="s",
            )
        if not many and np.any(np.isfinite(m)):
            best = int(np.nanargmin(m))
            ax.axvline(alpha[best], color="0.5", ls="-.", lw=1, label=f"best α = {alpha[best]:.2g} (ties = error)")
    bayes = p.arrays.get("bayes_error")
    for b in np.unique(bayes[np.isfinite(bayes)]) if bayes is not None else []:
        ax.axhline(b, color="k", ls="--", lw=1, label=f"Bayes error {b:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale α  (small α: strong feature learning)")
    ax.set_ylabel("test error at the stop")
    ax.set_title(f"Monte-Carlo test error vs α (mean ± s.e. over {p.n_seeds} seeds; failed runs excluded)", fontsize=9)
    ax.legend(fontsize=7)


def _alignment_panel(ax, p: _Panel) -> None:
    """Alignments of the effective predictor at the stop vs α (Ψ only when there are several curves)."""
    for k, (label, index) in enumerate(p.combos):
        ok = p.ok_all[index]
        for key, name, color in (
            ("final_Psi", "Ψ = cos(ŵ₊, x₊)", "tab:purple"),
            ("final_Psi_mu", "cos(ŵ₊, μ₊) (positive-class mean)", "tab:pink"),
            ("final_cos_s", "cos(ŵ₊, s) (Bayes direction)", "tab:green"),
        ):
            mm, ss, _ = seed_stats(p.arrays[key][index], ok)
            if np.any(np.isfinite(mm)):
                _band(
                    ax,
                    p.alpha,
                    mm,
                    ss,
                    f"{name} {label}" if p.many else name,
                    p.colors[(3 * k) % len(p.colors)] if p.many else color,
                )
            if p.many:
                break  # one alignment curve (Ψ) per combination keeps the panel readable
    ax.set_xscale("log")
    ax.set_xlabel("init scale α")
    ax.set_ylabel("cosine")
    ax.set_title("alignment of the effective predictor at the stop" + (" (Ψ)" if p.many else ""))
    ax.legend(fontsize=7)


def _time_panel(ax, p: _Panel, eta: float) -> None:
    """t_η of every ok run and its seed mean vs α."""
    colors = p.colors
    for k, (label, index) in enumerate(p.combos):
        ok = p.ok_all[index]
        t = np.where(ok, p.arrays["t_stop"][index], np.nan)
        for j in range(p.n_seeds):
            ax.scatter(p.alpha, t[:, j], s=8, color=colors[k % len(colors)] if p.many else "tab:gray", alpha=0.4)
        mt, _, _ = seed_stats(p.arrays["t_stop"][index], ok)
        ax.plot(
            p.alpha, mt, "o-", color=colors[k % len(colors)] if p.many else "k", ms=4, label=label or "mean over seeds"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale α")
    ax.set_ylabel("t_η (gradient-flow time to reach η)")
    ax.set_title(
        f"time to reach the target loss η = {eta:g}"
        if "flow.target_loss" not in p.ds["status"].dims
        else "time to reach η"
    )
    ax.legend(fontsize=7)


def _status_panel(ax, p: _Panel, statuses: dict) -> None:
    """The status of every run, stacked per α."""
    alpha = p.alpha
    codes = p.ds["status"].transpose("init_scale", ...).values.reshape(len(alpha), -1)
    bottom = np.zeros(len(alpha))
    xs = np.arange(len(alpha))
    for name, info in statuses.items():
        counts = np.sum(codes == info["code"], axis=1)
        if counts.any():
            ax.bar(xs, counts, bottom=bottom, color=STATUS_COLORS.get(name, "gray"), label=f"{name} ({counts.sum()})")
            bottom += counts
    ax.set_xticks(xs, [f"{a:.0e}" for a in alpha], rotation=60, fontsize=7)
    ax.set_xlabel("init scale α")
    ax.set_ylabel("runs")
    ax.set_ylim(0, 1.35 * codes.shape[1])
    ax.set_title("status of every run")
    ax.legend(fontsize=8, loc="upper left", ncol=2)
