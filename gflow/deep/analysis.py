"""Summaries of deep sweeps: seed means per (c, η), the best accuracy at each c, the optimal multiplier c*
and power-law fits of c* with bootstrap confidence intervals. Pure numpy; no plotting."""

from __future__ import annotations

import numpy as np

from .train import STATUS_CODE


def cell_table(arrays: dict, metric: str = "peak_test_acc") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, standard error, valid) over seeds of `metric` for each (c, η) cell [c, η].

    A cell is valid only if every seed reached the target; others are NaN (diverged, nonfinite, or out of
    budget: their peak accuracy is not that of a trained net)."""
    ok = arrays["status"] == STATUS_CODE["reached_target"]
    valid = ok.all(axis=-1)
    v = np.where(ok, arrays[metric], np.nan)
    n = v.shape[-1]
    mean = np.where(valid, np.nanmean(np.where(valid[..., None], v, 0.0), axis=-1), np.nan)
    se = np.where(valid & (n > 1), np.std(np.where(valid[..., None], v, 0.0), axis=-1, ddof=min(1, n - 1)) / np.sqrt(n), np.nan)
    return mean, se, valid


def best_over_lr(mean: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each c: (best mean over η, its standard error, index of that η; −1 where no η is valid)."""
    has = np.isfinite(mean).any(axis=1)
    idx = np.where(has, np.argmax(np.where(np.isfinite(mean), mean, -np.inf), axis=1), -1)
    rows = np.arange(len(mean))
    best = np.where(has, mean[rows, np.maximum(idx, 0)], np.nan)
    best_se = np.where(has, se[rows, np.maximum(idx, 0)], np.nan)
    return best, best_se, idx


def c_star(multipliers, acc) -> tuple[float, bool]:
    """(c*, interior): the multiplier of the highest `acc`, refined by a parabola in log c through the
    best grid point and its two neighbours. `interior` is False when the best point is at an end of the
    grid (or next to a missing value); c* is then that grid point, a bound rather than an estimate."""
    logc = np.log(np.asarray(multipliers, np.float64))
    acc = np.asarray(acc, np.float64)
    if not np.isfinite(acc).any():
        return float("nan"), False
    i = int(np.nanargmax(acc))
    if i == 0 or i == len(acc) - 1 or not np.isfinite(acc[i - 1]) or not np.isfinite(acc[i + 1]):
        return float(np.exp(logc[i])), False
    x, y = logc[i - 1 : i + 2], acc[i - 1 : i + 2]
    a, b, _ = np.polyfit(x, y, 2)
    vertex = -b / (2 * a) if a < 0 else logc[i]
    return float(np.exp(np.clip(vertex, x[0], x[2]))), True


def fit_power_law(xs, ys) -> tuple[float, float]:
    """(exponent, prefactor) of the least-squares fit log y = exponent·log x + log prefactor."""
    slope, intercept = np.polyfit(np.log(np.asarray(xs, np.float64)), np.log(np.asarray(ys, np.float64)), 1)
    return float(slope), float(np.exp(intercept))


def c_star_of_sweep(arrays: dict, seeds=None) -> tuple[float, bool]:
    """c* of one sweep's arrays (optionally on a resample `seeds` of the seed axis)."""
    if seeds is not None:
        arrays = {**arrays, "status": arrays["status"][..., seeds], "peak_test_acc": arrays["peak_test_acc"][..., seeds]}
    mean, se, _ = cell_table(arrays)
    best, _, _ = best_over_lr(mean, se)
    return c_star(arrays["multiplier"], best)


def scaling_fit(xs, sweeps: list[dict], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Fit c* ∝ x^exponent over sweeps taken at the values `xs` (e.g. widths), with a bootstrap CI.

    The bootstrap resamples the init seeds of each sweep independently (with replacement) and refits.
    Returns the exponent, the 95% percentile interval, the c* values and whether each is interior; points
    whose c* lies at the grid's end are bounds and are left out of the fit (listed in `excluded`)."""
    stars = [c_star_of_sweep(a) for a in sweeps]
    use = [i for i, (c, interior) in enumerate(stars) if interior and np.isfinite(c)]
    out = {"x": list(map(float, xs)), "c_star": [s[0] for s in stars], "interior": [s[1] for s in stars],
           "excluded": [float(xs[i]) for i in range(len(xs)) if i not in use]}
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
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
    return {**out, "exponent": exponent, "prefactor": prefactor, "ci95": [float(lo), float(hi)], "n_boot_used": len(boots)}


def u_shape_summary(arrays: dict) -> dict:
    """Does the best accuracy over η peak at an interior c? Compares the best c with both ends of the grid
    (differences in units of the standard error of the difference, from the seed spread)."""
    mean, se, _ = cell_table(arrays)
    best, best_se, idx = best_over_lr(mean, se)
    c = arrays["multiplier"]
    cs, interior = c_star(c, best)
    finite = np.flatnonzero(np.isfinite(best))
    out = {"multiplier": c.tolist(), "best_acc": best.tolist(), "best_acc_se": best_se.tolist(),
           "best_lr": [float(arrays["lr"][i]) if i >= 0 else None for i in idx], "c_star": cs, "interior": interior}
    if len(finite):
        i = int(np.nanargmax(best))
        for end, j in (("small_c", finite[0]), ("large_c", finite[-1])):
            gap = best[i] - best[j]
            s = float(np.hypot(best_se[i], best_se[j]))
            out[f"gain_over_{end}"] = {"c": float(c[j]), "gain": float(gap), "se": s, "z": float(gap / s) if s > 0 else None}
    return out
