"""Statistics shared by the experiments, the sweep figures and the deep-net analysis: seed means and
standard errors over normal stops, the refined argmin of a curve on a grid (α*, c*) and where it lies,
bootstrap intervals over units (init seeds), the hierarchical bootstrap over datasets then seeds (jointly
across settings that share their datasets), power-law fits, and the one rule that labels a verdict.
Pure numpy.

Conventions
- Values have the grid on the first axis and units on the last (`seed_mean` takes any `axis`); runs
  masked out by `ok`, and non-finite values, are left out of every mean.
- The standard error is the sample standard deviation (ddof 1) over √count: NaN with fewer than 2 units.
- A bootstrap interval is the percentile interval of the replicates (NaN replicates dropped).
- A power law y = prefactor · x^exponent is fitted by least squares in log-log; `fit_power_law` returns
  `PowerLaw(exponent, prefactor)` (the prefactor, not its log).
- The optimum of a curve is an argmin; for a maximum (c* of an accuracy) pass −values.
- Hierarchical values have datasets and init seeds on their last two axes, [..., dataset, seed]. The
  hierarchical bootstrap draws datasets with replacement, then, within each drawn dataset, its seeds with
  replacement (two-stage). Settings that share their datasets (dataset k of one is dataset k of the other,
  e.g. several widths on one training set) are put in one group and resampled with the same draw.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# where the grid optimum lies (`argmin_location`): a refined estimate only in the interior
LOCATIONS = ("interior", "grid end", "next to a gap", "no valid cell")


def seed_mean(values, ok, axis=-1):
    """Mean, standard error and count over `axis` of the values of ok runs only (NaN where none).

    A mean needs one ok finite value, a standard error two (std with ddof 1, over √count)."""
    values = np.asarray(values, np.float64)
    v = np.where(np.asarray(ok) & np.isfinite(values), values, np.nan)
    count = np.sum(np.isfinite(v), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(v, axis=axis) / count
        var = np.nansum((v - np.expand_dims(mean, axis)) ** 2, axis=axis) / (count - 1)
        se = np.sqrt(var / count)
    return np.where(count > 0, mean, np.nan), np.where(count > 1, se, np.nan), count


def argmin_location(values) -> str:
    """Where the smallest finite value of a 1-D curve lies on its grid: 'interior' (both neighbours
    finite), 'grid end', 'next to a gap' (a neighbour is not finite) or 'no valid cell' (none finite)."""
    v = np.asarray(values, np.float64)
    if not np.isfinite(v).any():
        return "no valid cell"
    i = int(np.nanargmin(v))
    if i == 0 or i == len(v) - 1:
        return "grid end"
    return "interior" if np.isfinite(v[i - 1]) and np.isfinite(v[i + 1]) else "next to a gap"


def refine_argmin(grid, values, *, log_values: bool = True) -> tuple[float, bool]:
    """The argmin of `values` on a positive `grid` (α or c), refined by the parabola in log(grid) through
    the grid minimum and its two neighbours; returns (x*, at_edge).

    - `log_values`: fit log(values) where the three values are positive (errors spanning decades), else
      the values themselves; False: always the values (accuracies, or −accuracy for a maximum).
    - The vertex is kept within the grid minimum's cell (half-way to each neighbour in log grid). The
      vertex of a convex parabola whose middle point is the lowest of the three always lies there, so this
      only guards rounding.
    - Unrefined (x* = the grid point): at an end of the grid (at_edge True, a bound rather than an
      estimate), next to a non-finite value, or where the three points are not convex (at_edge False;
      `argmin_location` tells these apart). (NaN, True) when no value is finite.
    """
    lg = np.log(np.asarray(grid, np.float64))
    v = np.asarray(values, np.float64)
    if not np.any(np.isfinite(v)):
        return float("nan"), True
    i = int(np.nanargmin(v))
    if i == 0 or i == len(v) - 1:
        return float(np.exp(lg[i])), True
    w = v[i - 1 : i + 2]
    if not np.all(np.isfinite(w)):
        return float(np.exp(lg[i])), False
    c2, c1, _ = np.polyfit(lg[i - 1 : i + 2], np.log(w) if log_values and np.all(w > 0) else w, 2)
    if c2 <= 0:
        return float(np.exp(lg[i])), False
    lo, hi = (lg[i - 1] + lg[i]) / 2, (lg[i] + lg[i + 1]) / 2
    return float(np.exp(np.clip(-c1 / (2 * c2), lo, hi))), False


def bootstrap_argmin(grid, values, ok, n_boot=1000, seed=0) -> np.ndarray:
    """Bootstrap replicates of the refined argmin of the unit-averaged curve: units (last axis of the
    [grid, unit] `values`) are resampled with replacement, `n_boot` times (numpy Generator `seed`)."""
    rng = np.random.default_rng(seed)
    n_units = values.shape[-1]
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n_units, n_units)
        out[b] = refine_argmin(grid, seed_mean(values[:, idx], ok[:, idx])[0])[0]
    return out


class Argmin(NamedTuple):
    """The optimum of a unit-averaged curve with its bootstrap interval (`argmin_estimate`)."""

    mean: np.ndarray  # the curve: mean over ok units, per grid point
    se: np.ndarray  # its standard error
    count: np.ndarray  # type: ignore[assignment]  # ok units per grid point (shadows tuple.count)
    x: float  # refined argmin (α*, c*)
    at_edge: bool  # x is a grid end: a bound, not an estimate
    location: str  # one of LOCATIONS
    ci95: list  # 95% percentile interval of the bootstrap replicates
    boot: np.ndarray  # the replicates


def argmin_estimate(grid, values, ok, *, n_boot: int = 1000, seed: int = 0) -> Argmin:
    """Seed means of [grid, unit] `values` over ok units, their refined argmin, where it lies, and its
    bootstrap interval (units resampled)."""
    mean, se, count = seed_mean(values, ok)
    x, at_edge = refine_argmin(grid, mean)
    boot = bootstrap_argmin(grid, values, ok, n_boot=n_boot, seed=seed)
    return Argmin(mean, se, count, x, at_edge, argmin_location(mean), interval(boot), boot)


class PowerLaw(NamedTuple):
    """y = prefactor · x^exponent."""

    exponent: float
    prefactor: float


def fit_power_law(x, y) -> PowerLaw:
    """Least-squares fit of log y = exponent·log x + log prefactor over the points where x and y are finite
    and positive (others are left out); (NaN, NaN) with fewer than two such points."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    good = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.unique(x[good]).size < 2:
        return PowerLaw(float("nan"), float("nan"))
    slope, intercept = np.polyfit(np.log(x[good]), np.log(y[good]), 1)
    return PowerLaw(float(slope), float(np.exp(intercept)))


def interval(samples, level=0.95) -> list[float]:
    """Percentile interval of bootstrap samples (NaNs dropped; [NaN, NaN] if none is left)."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if not s.size:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def bootstrap_exponent(xs, samples) -> tuple[np.ndarray, list[float]]:
    """Power-law exponents fitted to each bootstrap replicate, and their 95% interval: `samples` has
    shape (len(xs), n_boot), e.g. the `bootstrap_argmin` replicates of each x stacked."""
    slopes = np.array([fit_power_law(xs, samples[:, b]).exponent for b in range(samples.shape[1])])
    return slopes, interval(slopes)


def hierarchical_indices(rng, n_datasets: int, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the two-stage bootstrap: datasets (shape [n_datasets]) with replacement, then for each
    drawn dataset its seeds (row of the [n_datasets, n_seeds] array) with replacement."""
    datasets = rng.integers(0, n_datasets, n_datasets)
    seeds = rng.integers(0, n_seeds, (n_datasets, n_seeds))
    return datasets, seeds


def hierarchical_take(v, datasets, seeds) -> np.ndarray:
    """The [..., dataset, seed] array `v` at the indices of `hierarchical_indices` (same shape)."""
    return np.asarray(v)[..., datasets[:, None], seeds]


def hierarchical_bootstrap(
    statistic, settings, *, groups=None, n_boot: int = 1000, seed: int = 0, with_indices: bool = False
) -> np.ndarray:
    """Replicates [n_settings, n_boot] of `statistic(i, *arrays)` under the two-stage bootstrap.

    - `settings`: one tuple of arrays per setting, each array [..., dataset, seed] with the setting's
      dataset and seed counts (values, ok masks, ...); all arrays of a tuple are resampled alike.
    - `groups`: a label per setting; settings with the same label share their datasets and get the same
      draw in every replicate (joint resampling; they must have equal dataset and seed counts). None:
      every setting is its own group (independent datasets).
    - `statistic(i, *resampled)` → a float for setting i (e.g. the refined argmin of its mean curve); with
      `with_indices`, `statistic(i, datasets, seeds, *arrays)` gets the draw (`hierarchical_indices`) and the
      original arrays instead, so that it can cache per-dataset work.
    Replicates use the numpy Generator `seed`; the draws of one group do not depend on the other groups.
    The variance of a mean under this scheme is B/D + W/(D·S) (B: ddof-0 variance of the dataset means, W:
    mean ddof-0 variance within a dataset): the between-dataset part is kept, where a flat bootstrap over the
    D·S units loses it, and the within part is counted up to twice, so the interval errs wide, not narrow.
    """
    settings = [tuple(np.asarray(a) for a in arrays) for arrays in settings]
    groups = list(range(len(settings))) if groups is None else list(groups)
    if len(groups) != len(settings):
        raise ValueError(f"groups: {len(groups)} labels for {len(settings)} settings")
    shapes: dict[int, tuple] = {}
    for i, arrays in enumerate(settings):
        for a in arrays:
            if a.ndim < 2:
                raise ValueError(f"settings[{i}]: arrays need [..., dataset, seed] axes, got shape {a.shape}")
        dims = {a.shape[-2:] for a in arrays}
        if len(dims) != 1:
            raise ValueError(f"settings[{i}]: arrays disagree on [dataset, seed] sizes {sorted(dims)}")
        dim = dims.pop()
        if shapes.setdefault(groups[i], dim) != dim:
            raise ValueError(
                f"groups: settings sharing group {groups[i]!r} have [dataset, seed] sizes {shapes[groups[i]]} and {dim}"
            )
    labels = list(dict.fromkeys(groups))
    rngs = {g: np.random.default_rng([seed, k]) for k, g in enumerate(labels)}
    out = np.empty((len(settings), n_boot))
    for b in range(n_boot):
        draws = {g: hierarchical_indices(rngs[g], *shapes[g]) for g in labels}
        for i, arrays in enumerate(settings):
            if with_indices:
                out[i, b] = statistic(i, *draws[groups[i]], *arrays)
            else:
                out[i, b] = statistic(i, *(hierarchical_take(a, *draws[groups[i]]) for a in arrays))
    return out


def pooled_argmin(grid, values, ok) -> float:
    """The refined argmin of the curve averaged over all (dataset, seed) units of [grid, dataset, seed]
    `values` (ok runs only): the pooled-curve rule."""
    v, o = np.asarray(values, np.float64), np.asarray(ok)
    return refine_argmin(grid, seed_mean(v.reshape(v.shape[0], -1), o.reshape(o.shape[0], -1))[0])[0]


def per_dataset_argmin(grid, values, ok) -> np.ndarray:
    """The refined argmin of each dataset's seed-averaged curve ([dataset]) of [grid, dataset, seed] values;
    NaN where that curve's minimum is at a grid end (a bound, not an estimate) or no value is finite."""
    v, o = np.asarray(values, np.float64), np.asarray(ok)
    out = np.full(v.shape[1], np.nan)
    for k in range(v.shape[1]):
        x, at_edge = refine_argmin(grid, seed_mean(v[:, k], o[:, k])[0])
        out[k] = np.nan if at_edge else x
    return out


def median_per_dataset_argmin(grid, values, ok) -> float:
    """The median over datasets of `per_dataset_argmin` (datasets with an edge minimum left out): the
    per-dataset rule."""
    a = per_dataset_argmin(grid, values, ok)
    return float(np.median(a[np.isfinite(a)])) if np.isfinite(a).any() else float("nan")


# The one labelling rule of every verdict (`verdict_label`).
VERDICT_LABELS = ("holds", "does not hold", "not tested in regime", "consistency check", "not resolved")


def verdict_label(theory_value, ci95, *, in_regime: bool, identity: bool = False) -> str:
    """The label of a verdict that compares a measured figure's 95% interval `ci95` with the theory's value.

    `theory_value` is a number (an exponent), or "> 0" for a sign claim (an arm of the U exists): then the
    interval must lie above 0 to hold, and lie at or below 0 for 'does not hold' / 'not tested in regime';
    an interval that straddles 0 is 'not resolved'.

    - 'consistency check': the figure is an identity of the model (e.g. c* = α*² by homogeneity), whatever
      its interval; it tests the engine, not the theory;
    - 'not resolved': no interval (no interior optimum, too few points to fit);
    - 'holds': the theory's value lies inside the interval (ends included);
    - 'does not hold': the interval excludes it and the setting is in the theory's regime;
    - 'not tested in regime': the interval excludes it and the setting is outside the theory's regime.
    """
    if identity:
        return "consistency check"
    if ci95 is None or len(ci95) != 2 or not np.all(np.isfinite(np.asarray(ci95, np.float64))):
        return "not resolved"
    lo, hi = sorted(float(c) for c in ci95)
    if isinstance(theory_value, str):
        if theory_value.replace(" ", "") != ">0":
            raise ValueError(f"theory_value: a number or '> 0', got {theory_value!r}")
        if lo > 0:
            return "holds"
        if hi > 0:
            return "not resolved"
    elif lo <= float(theory_value) <= hi:
        return "holds"
    return "does not hold" if in_regime else "not tested in regime"
