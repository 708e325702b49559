"""Statistics shared by the experiments: seed means and standard errors over normal stops, α* as a refined
argmin on a grid, bootstrap intervals over units (init seeds, or dataset × seed pairs), power-law fits.

Conventions: values have the grid on the first axis and units on the last; non-finite values and runs
masked out by `ok` are left out of every mean; bootstrap intervals are percentile intervals.
"""

from __future__ import annotations

import numpy as np


def seed_mean(values, ok, axis=-1):
    """Mean, standard error and count over `axis` of the values of ok runs only (NaN where none)."""
    v = np.where(ok & np.isfinite(values), values, np.nan)
    count = np.sum(np.isfinite(v), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.nan_to_num(v), axis=axis) / count
        var = np.nansum(np.nan_to_num(v - np.expand_dims(mean, axis)) ** 2, axis=axis) / (count - 1)
        se = np.sqrt(var / count)
    return np.where(count > 0, mean, np.nan), np.where(count > 1, se, np.nan), count


def refine_argmin(alphas, values) -> tuple[float, bool]:
    """α* = argmin of `values` on the α grid, refined by a parabola in (log α, log value) through the grid
    minimum and its two neighbours; the vertex is kept within half a grid step of the grid minimum (where
    it always lies on an even grid). Returns (α*, at_edge): at the edge of the grid nothing is refined."""
    la = np.log(np.asarray(alphas, np.float64))
    v = np.asarray(values, np.float64)
    if not np.any(np.isfinite(v)):
        return float("nan"), True
    i = int(np.nanargmin(v))
    if i == 0 or i == len(v) - 1:
        return float(np.exp(la[i])), True
    w = v[i - 1 : i + 2]
    if not np.all(np.isfinite(w)):
        return float(np.exp(la[i])), False
    c2, c1, _ = np.polyfit(la[i - 1 : i + 2], np.log(w) if np.all(w > 0) else w, 2)
    if c2 <= 0:
        return float(np.exp(la[i])), False
    lo, hi = (la[i - 1] + la[i]) / 2, (la[i] + la[i + 1]) / 2
    return float(np.exp(np.clip(-c1 / (2 * c2), lo, hi))), False


def bootstrap_argmin(alphas, values, ok, n_boot=1000, seed=0) -> np.ndarray:
    """Bootstrap samples of α* (refine_argmin of the unit-averaged curve), resampling units (last axis)."""
    rng = np.random.default_rng(seed)
    n_units = values.shape[-1]
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n_units, n_units)
        out[b] = refine_argmin(alphas, seed_mean(values[:, idx], ok[:, idx])[0])[0]
    return out


def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of log y = slope·log x + intercept over finite positive points: (slope, intercept)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    good = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    slope, intercept = np.polyfit(np.log(x[good]), np.log(y[good]), 1)
    return float(slope), float(intercept)


def interval(samples, level=0.95) -> list[float]:
    """Percentile interval of bootstrap samples (NaNs dropped)."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def bootstrap_exponent(xs, samples) -> tuple[np.ndarray, list[float]]:
    """Power-law exponents fitted to each bootstrap replicate: samples has shape (len(xs), n_boot)."""
    slopes = np.array([fit_power_law(xs, samples[:, b])[0] for b in range(samples.shape[1])])
    return slopes, interval(slopes)
