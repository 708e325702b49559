"""Summaries of deep sweeps: seed means per (c, η), the best accuracy at each c, the optimal multiplier c*
and power-law fits of c* with bootstrap confidence intervals. Pure numpy; no plotting.

The summaries (`u_shape_summary`, `scaling_fit`) and the figures take a sweep either as a dict of numpy arrays
(`run_deep_sweep(...).arrays`) or as the run's `xarray.Dataset` (`gflow.load_run`); `as_arrays` turns the latter
into the former for the numpy helpers.

Selection: in a run with a validation set, the peak step of each run, the best η at each c and c* are
chosen on the validation accuracy (`peak_val_acc`), and the test accuracy is reported at the chosen point
(`test_acc_at_peak`). Runs saved before the validation split (no `peak_val_acc`), and runs with
data.n_val = −1, were selected on the test set (`peak_test_acc`); their summaries and figures say so
(`selection`).

Units: the arrays of a run directory hold accuracies as fractions (the raw records); every summary meant
to be read (`u_shape_summary`, figures, printed tables, summary.json) gives them in percent, and gains in
percentage points (pp). `json_safe` turns NaN and ±inf into null before anything is written as JSON.
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from ..runs.status import CODE as STATUS_CODE  # not .train: no jax for analysis
from ..runs.status import NAMES as STATUS_NAMES
from ..runs.status import RUNNING
from ..runs.store import arrays_of

# how a failed status reads in tables and figures
STATUS_SHORT = {"reached_target": "ok", "max_steps": "budget", "diverged": "diverged", "nonfinite": "nonfinite"}


def as_arrays(data) -> dict[str, np.ndarray]:
    """numpy arrays by name (variables and coordinates) of a run's Dataset; a dict is returned as it is."""
    return arrays_of(data) if hasattr(data, "data_vars") else data


def json_safe(obj):
    """`obj` with NaN and ±inf replaced by None (null) and numpy scalars/arrays by Python values."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def status_counts(status) -> dict[str, int]:
    """{status name: count} of the runs in `status` (codes), only the statuses that occur."""
    codes = np.asarray(status).ravel()
    return {name: int(np.sum(codes == k)) for k, name in enumerate(STATUS_NAMES) if np.any(codes == k)}


def invalid_reason(status) -> str:
    """Why a cell (or a c, over its η) has no valid mean: the commonest failed status among its runs,
    in the words of STATUS_SHORT ('budget' for runs stopped by their step budget); '' if all reached;
    'not run' if its only failures are `RUNNING` codes (the cells of a merged grid that no sweep ran)."""
    codes = np.asarray(status).ravel()
    bad = codes[codes != STATUS_CODE["reached_target"]]
    ran = bad[bad != RUNNING]
    if not bad.size:
        return ""
    if not ran.size:
        return "not run"
    name = STATUS_NAMES[int(np.bincount(ran).argmax())]
    return STATUS_SHORT.get(name, name)


SELECTION_NOTES = {
    "validation": "peak step, best η and c* chosen on the validation set; test accuracy reported at the chosen point",
    "test (saved before the validation split)": "peak step, best η and c* chosen on the TEST set (run saved before "
    "the validation split): optimistic",
    "test (no validation set)": "peak step, best η and c* chosen on the TEST set (data.n_val = -1): optimistic",
}


def selection(arrays: dict) -> str:
    """How a sweep's peaks were chosen: 'validation', or one of the two test-selected cases (a key of
    SELECTION_NOTES)."""
    arrays = as_arrays(arrays)
    if "peak_val_acc" in arrays and np.isfinite(np.asarray(arrays["peak_val_acc"], np.float64)).any():
        return "validation"
    return "test (no validation set)" if "test_acc_at_peak" in arrays else "test (saved before the validation split)"


def selection_metrics(arrays: dict) -> tuple[str, str]:
    """(the record the choices are made on, the record reported): ('peak_val_acc', 'test_acc_at_peak') with a
    validation set, else ('peak_test_acc', 'peak_test_acc')."""
    if selection(arrays) == "validation":
        return "peak_val_acc", "test_acc_at_peak"
    return "peak_test_acc", "peak_test_acc"


def _resample_seeds(arrays: dict, seeds) -> dict:
    return {
        **arrays,
        **{
            k: arrays[k][..., seeds]
            for k in ("status", "peak_test_acc", "peak_val_acc", "test_acc_at_peak")
            if k in arrays
        },
    }


def selected_best(arrays: dict) -> dict:
    """Per c the η chosen on the selection metric (`selection_metrics`) and the reported accuracy there:
    {'sel': best selection-metric mean over η, 'sel_se', 'idx': chosen η index (−1: none valid), 'rep':
    the reported metric's seed mean at the chosen η, 'rep_se', 'rep_cells': the reported metric's cell means
    [c, η], 'valid': [c, η]} (fractions)."""
    sel_name, rep_name = selection_metrics(arrays)
    sel_mean, sel_se, valid = cell_table(arrays, sel_name)
    rep_mean, rep_se, _ = cell_table(arrays, rep_name)
    best_sel, best_sel_se, idx = best_over_lr(sel_mean, sel_se)
    rows, k = np.arange(len(idx)), np.maximum(idx, 0)
    rep = np.where(idx >= 0, rep_mean[rows, k], np.nan)
    rep_err = np.where(idx >= 0, rep_se[rows, k], np.nan)
    return {
        "sel": best_sel,
        "sel_se": best_sel_se,
        "idx": idx,
        "rep": rep,
        "rep_se": rep_err,
        "rep_cells": rep_mean,
        "valid": valid,
    }


def cell_table(arrays: dict, metric: str = "peak_test_acc") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, standard error, valid) over seeds of `metric` for each (c, η) cell [c, η] (`gflow.stats.seed_mean`).

    A cell is valid only if every seed reached the target; others are NaN (diverged, nonfinite, or out of
    budget: their peak accuracy is not that of a trained net)."""
    ok = arrays["status"] == STATUS_CODE["reached_target"]
    valid = ok.all(axis=-1)
    mean, se, _ = stats.seed_mean(arrays[metric], ok)
    return np.where(valid, mean, np.nan), np.where(valid, se, np.nan), valid


def best_over_lr(mean: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each c: (best mean over η, its standard error, index of that η; −1 where no η is valid)."""
    has = np.isfinite(mean).any(axis=1)
    idx = np.where(has, np.argmax(np.where(np.isfinite(mean), mean, -np.inf), axis=1), -1)
    rows = np.arange(len(mean))
    best = np.where(has, mean[rows, np.maximum(idx, 0)], np.nan)
    best_se = np.where(has, se[rows, np.maximum(idx, 0)], np.nan)
    return best, best_se, idx


def c_star_location(multipliers, acc) -> str:
    """Where the best finite `acc` lies: 'interior', 'grid end', 'next to a gap' (a neighbour has no
    valid value) or 'no valid cell' (`gflow.stats.argmin_location` of −acc)."""
    return stats.argmin_location(-np.asarray(acc, np.float64))


def c_star(multipliers, acc) -> tuple[float, bool]:
    """(c*, interior): the multiplier of the highest `acc`, refined by a parabola in log c through the
    best grid point and its two neighbours (`gflow.stats.refine_argmin` of −acc, in acc's own units).
    `interior` is False when the best point is at an end of the grid (or next to a missing value); c* is
    then that grid point, a bound rather than an estimate."""
    neg = -np.asarray(acc, np.float64)
    cs, _ = stats.refine_argmin(multipliers, neg, log_values=False)
    return cs, stats.argmin_location(neg) == "interior"


def fit_power_law(xs, ys) -> tuple[float, float]:
    """(exponent, prefactor) of the least-squares fit log y = exponent·log x + log prefactor (`gflow.stats`)."""
    return stats.fit_power_law(xs, ys)


def c_star_of_sweep(arrays: dict, seeds=None) -> tuple[float, bool]:
    """c* of one sweep's arrays, chosen on the selection metric (`selection_metrics`; optionally on a
    resample `seeds` of the seed axis)."""
    if seeds is not None:
        arrays = _resample_seeds(arrays, seeds)
    return c_star(arrays["multiplier"], selected_best(arrays)["sel"])


def scaling_fit(xs, sweeps: list[dict], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Fit c* ∝ x^exponent over sweeps taken at the values `xs` (e.g. widths), with a bootstrap CI.

    The bootstrap resamples the init seeds of each sweep independently (with replacement) and refits.
    Returns the exponent, the 95% percentile interval, the c* values and whether each is interior; points
    whose c* lies at the grid's end are bounds and are left out of the fit (listed in `excluded`)."""
    sweeps = [as_arrays(a) for a in sweeps]
    stars = [c_star_of_sweep(a) for a in sweeps]
    use = [i for i, (c, interior) in enumerate(stars) if interior and np.isfinite(c)]
    where = [c_star_location(a["multiplier"], selected_best(a)["sel"]) for a in sweeps]
    out = {
        "selection": [selection(a) for a in sweeps],
        "x": list(map(float, xs)),
        "c_star": [s[0] for s in stars],
        "interior": [s[1] for s in stars],
        "where": where,
        "excluded": [float(xs[i]) for i in range(len(xs)) if i not in use],
    }
    if len(use) < 2:
        return {**out, "exponent": float("nan"), "ci95": [float("nan"), float("nan")], "n_boot_used": 0}
    exponent, prefactor = fit_power_law([xs[i] for i in use], [stars[i][0] for i in use])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        cs = []
        for i in use:
            n_seeds = sweeps[i]["status"].shape[-1]
            cs.append(c_star_of_sweep(sweeps[i], rng.integers(0, n_seeds, n_seeds))[0])
        if np.all(np.isfinite(cs)):
            boots.append(fit_power_law([xs[i] for i in use], cs)[0])
    return {
        **out,
        "exponent": exponent,
        "prefactor": prefactor,
        "ci95": stats.interval(boots),
        "n_boot_used": len(boots),
    }


def u_shape_summary(arrays: dict) -> dict:
    """Does the accuracy at the best η peak at an interior c? For each c the η chosen on the selection
    metric (validation accuracy; see the module docstring) and the test accuracy there, in percent; c*
    chosen on the selection metric; the statuses of each c's runs (all η and seeds) and, where no η is
    valid, why ('budget', 'diverged', …). Compares the chosen c with the smallest and largest valid c in
    reported test accuracy (gains in pp, in units of the standard error of the difference, from the seed spread)."""
    arrays = as_arrays(arrays)
    sel = selection(arrays)
    b = selected_best(arrays)
    best, best_se, idx = b["rep"], b["rep_se"], b["idx"]
    c, lr = np.asarray(arrays["multiplier"]), np.asarray(arrays["lr"])
    cs, interior = c_star(c, b["sel"])
    finite = np.flatnonzero(np.isfinite(b["sel"]))
    out = {
        "unit": "percent (test accuracies); gains in percentage points",
        "selection": sel,
        "selection_note": SELECTION_NOTES[sel],
        "multiplier": c.tolist(),
        "best_test_acc": (100 * best).tolist(),
        "best_test_acc_se": (100 * best_se).tolist(),
    }
    if sel == "validation":
        out["best_val_acc"] = (100 * b["sel"]).tolist()
        out["best_val_acc_se"] = (100 * b["sel_se"]).tolist()
    out.update(
        {
            "best_lr": [float(lr[i]) if i >= 0 else None for i in idx],
            "best_step_size": [float(lr[i] / c[k]) if i >= 0 else None for k, i in enumerate(idx)],
            "statuses": [status_counts(arrays["status"][k]) for k in range(len(c))],
            "invalid_reason": [None if i >= 0 else invalid_reason(arrays["status"][k]) for k, i in enumerate(idx)],
            "c_star": cs,
            "c_star_where": c_star_location(c, b["sel"]),
            "interior": interior,
        }
    )
    if "budget" in arrays:
        out["budget"] = [int(np.max(arrays["budget"][k])) for k in range(len(c))]
    if len(finite):
        i = int(np.nanargmax(b["sel"]))  # the grid c chosen on the selection metric
        out["test_acc_at_chosen_c"] = {"c": float(c[i]), "acc": float(100 * best[i]), "se": float(100 * best_se[i])}
        for end, j in (("small_c", finite[0]), ("large_c", finite[-1])):
            gap = 100 * (best[i] - best[j])
            s = float(100 * np.hypot(best_se[i], best_se[j]))
            out[f"gain_over_{end}"] = {
                "c": float(c[j]),
                "gain_pp": float(gap),
                "se_pp": s,
                "z": float(gap / s) if s > 0 else None,
            }
    return json_safe(out)


def summary_table(summary: dict) -> str:
    """`u_shape_summary` as a printed table: per c the test accuracy (%) at the η chosen on the selection
    metric, with that η, η/c, the step budget and the run statuses; then c* and the gains of the chosen c
    over the smallest and largest valid c."""
    validation = summary.get("selection", "test (saved before the validation split)") == "validation"
    head = "test acc (%) at chosen η" if validation else "best peak test acc (%)"
    rows = [
        f"selection: {summary.get('selection_note', SELECTION_NOTES['test (saved before the validation split)'])}",
        f"{'c':>9} {head:>24} {'val acc (%)':>11} {'at η':>6} {'η/c':>8} {'budget':>7}  runs by status",
    ]
    budgets = summary.get("budget", [None] * len(summary["multiplier"]))
    vals = summary.get("best_val_acc", [None] * len(summary["multiplier"]))
    for c, acc, se, val, lr, step, why, counts, budget in zip(
        summary["multiplier"],
        summary["best_test_acc"],
        summary["best_test_acc_se"],
        vals,
        summary["best_lr"],
        summary["best_step_size"],
        summary["invalid_reason"],
        summary["statuses"],
        budgets,
    ):
        text = f"none valid ({why})" if lr is None else f"{acc:.2f} ± {se:.2f}" if se is not None else f"{acc:.2f}"
        runs = ", ".join(f"{STATUS_SHORT[k]} {v}" for k, v in counts.items())
        rows.append(
            f"{c:9.4g} {text:>24} {'' if val is None else f'{val:.2f}':>11} {'' if lr is None else f'{lr:6.3g}'} "
            f"{'' if step is None else f'{step:8.3g}':>8} {budget if budget is not None else '':>7}  {runs}"
        )
    if summary["c_star"] is None:
        rows.append("c*: none (no valid cell)")
    else:
        on = "validation" if validation else "test"
        rows.append(f"c* = {summary['c_star']:.3g} ({summary['c_star_where']}; chosen on {on} accuracy)")
    for end in ("small_c", "large_c"):
        g = summary.get(f"gain_over_{end}")
        if g:
            z = f" = {g['z']:.1f} s.e." if g["z"] is not None else ""
            rows.append(f"chosen c − (c = {g['c']:.3g}), test accuracy: {g['gain_pp']:+.2f} pp{z}")
    return "\n".join(rows)
