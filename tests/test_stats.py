"""gflow.stats against independent references: scipy.stats (sem, bootstrap, linregress), closed-form
parabola vertices, exact power laws. Pure numpy; milliseconds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from gflow import stats


def test_seed_mean_matches_scipy_on_the_ok_finite_runs():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 9))
    v[1, 3] = np.nan
    v[2, :] = np.inf  # no finite value at all
    ok = rng.random((6, 9)) > 0.3
    ok[4, :] = False  # no ok run
    ok[5, :] = False
    ok[5, 0] = True  # one ok run: a mean, no standard error
    mean, se, count = stats.seed_mean(v, ok)
    for i in range(6):
        use = v[i][ok[i] & np.isfinite(v[i])]
        assert count[i] == use.size
        if use.size == 0:
            assert np.isnan(mean[i]) and np.isnan(se[i])
        elif use.size == 1:
            assert mean[i] == use[0] and np.isnan(se[i])
        else:
            np.testing.assert_allclose(mean[i], np.mean(use), rtol=1e-14)
            np.testing.assert_allclose(se[i], sps.sem(use), rtol=1e-12)
    # any axis: the same numbers with units first
    m0, s0, c0 = stats.seed_mean(v.T, ok.T, axis=0)
    np.testing.assert_array_equal(c0, count)
    np.testing.assert_allclose(m0, mean, rtol=1e-14)
    np.testing.assert_allclose(s0, se, rtol=1e-14)


def test_seed_mean_leaves_out_failed_runs():
    v = np.array([[1.0, 2.0, 100.0], [3.0, np.nan, 5.0]])
    ok = np.array([[True, True, False], [True, True, True]])
    mean, se, count = stats.seed_mean(v, ok)
    np.testing.assert_allclose(mean, [1.5, 4.0])
    np.testing.assert_allclose(se, [0.5, 1.0])
    np.testing.assert_array_equal(count, [2, 2])


def _vertex(x0, x1, x2, y0, y1, y2):
    """Vertex of the parabola through three points (Lagrange form, closed form)."""
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    return x1 - 0.5 * num / den


@pytest.mark.parametrize("true", [3e-3, 1e-2, 2.2e-2])
def test_refine_argmin_recovers_the_vertex_of_a_parabola(true):
    even = np.logspace(-4, 0, 9)
    uneven = np.exp(np.sort(np.log(even) + np.random.default_rng(1).uniform(-0.3, 0.3, 9)))
    for grid in (even, uneven):
        err = 0.05 * np.exp(0.3 * (np.log(grid) - np.log(true)) ** 2)  # a parabola in (log α, log err)
        x, at_edge = stats.refine_argmin(grid, err)
        np.testing.assert_allclose(x, true, rtol=1e-8)
        assert not at_edge and stats.argmin_location(err) == "interior"
        acc = 0.9 - (np.log(grid) - np.log(true)) ** 2  # a parabola in (log c, accuracy): the maximum
        x, _ = stats.refine_argmin(grid, -acc, log_values=False)
        np.testing.assert_allclose(x, true, rtol=1e-8)


def test_refine_argmin_on_data_is_the_closed_form_vertex_through_three_points():
    rng = np.random.default_rng(2)
    grid = np.logspace(-3, 1, 7)
    lg = np.log(grid)
    for _ in range(20):
        v = rng.uniform(0.1, 1.0, 7)
        i = int(np.argmin(v))
        x, at_edge = stats.refine_argmin(grid, v, log_values=False)
        if i in (0, 6):
            assert at_edge and x == pytest.approx(grid[i], rel=1e-12)
            continue
        want = _vertex(*lg[i - 1 : i + 2], *v[i - 1 : i + 2])
        assert (
            (lg[i - 1] + lg[i]) / 2 - 1e-12 <= want <= (lg[i] + lg[i + 1]) / 2 + 1e-12
        )  # inside the cell: no clipping
        np.testing.assert_allclose(np.log(x), want, rtol=1e-10, atol=1e-12)
        xl, _ = stats.refine_argmin(grid, v)  # log values: the vertex of the parabola through log v
        np.testing.assert_allclose(
            np.log(xl), _vertex(*lg[i - 1 : i + 2], *np.log(v[i - 1 : i + 2])), rtol=1e-10, atol=1e-12
        )


def test_argmin_at_grid_end_gap_and_nowhere():
    grid = np.array([0.1, 0.3, 1.0, 3.0, 10.0])
    assert stats.refine_argmin(grid, np.linspace(1, 2, 5)) == (pytest.approx(0.1), True)
    assert stats.argmin_location(np.linspace(1, 2, 5)) == "grid end"
    gap = np.array([np.nan, 0.5, 0.1, np.nan, 0.8])
    assert stats.refine_argmin(grid, gap) == (pytest.approx(1.0), False)
    assert stats.argmin_location(gap) == "next to a gap"
    x, at_edge = stats.refine_argmin(grid, np.full(5, np.nan))
    assert np.isnan(x) and at_edge and stats.argmin_location(np.full(5, np.nan)) == "no valid cell"
    tie = np.array([1.0, 0.5, 0.5, 0.7, 1.0])  # a tie with the right neighbour: the vertex is half-way (in log)
    assert stats.refine_argmin(grid, tie, log_values=False) == (pytest.approx(np.sqrt(0.3 * 1.0), rel=1e-12), False)


def test_fit_power_law_recovers_an_exact_law_and_matches_linregress():
    x = np.array([10.0, 20, 40, 80, 160])
    fit = stats.fit_power_law(x, 3.0 * x**-0.5)
    np.testing.assert_allclose(fit, (-0.5, 3.0), rtol=1e-12)
    assert fit.exponent == fit[0] and fit.prefactor == fit[1]
    y = 2.0 * x**1.3 * np.exp(np.random.default_rng(3).normal(0, 0.1, x.size))
    ref = sps.linregress(np.log(x), np.log(y))
    np.testing.assert_allclose(stats.fit_power_law(x, y), (ref.slope, np.exp(ref.intercept)), rtol=1e-12)
    # non-finite or non-positive points are left out; fewer than two points left: NaN
    np.testing.assert_allclose(
        stats.fit_power_law(np.append(x, [1.0, 2.0]), np.append(3.0 * x**-0.5, [np.nan, 0.0])), (-0.5, 3.0), rtol=1e-12
    )
    assert np.all(np.isnan(stats.fit_power_law([1.0, 2.0], [1.0, np.nan])))


def test_bootstrap_argmin_interval_covers_the_true_optimum():
    alphas = np.logspace(-3, 0, 7)
    rng = np.random.default_rng(1)
    clean = 0.05 + 0.01 * (np.log10(alphas) + 1.5) ** 2
    v = clean[:, None] + 0.001 * rng.normal(size=(7, 12))
    ok = np.ones_like(v, bool)
    est = stats.argmin_estimate(alphas, v, ok, n_boot=200, seed=0)
    np.testing.assert_array_equal(est.boot, stats.bootstrap_argmin(alphas, v, ok, n_boot=200, seed=0))
    assert est.ci95 == stats.interval(est.boot)
    assert (est.x, est.at_edge) == stats.refine_argmin(alphas, est.mean) and est.location == "interior"
    assert est.ci95[0] <= 10**-1.5 <= est.ci95[1]


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    """The percentile interval of our resampling of a seed mean (n_boot 4000) against scipy.stats.bootstrap's
    percentile interval of the same statistic: equal to Monte-Carlo accuracy (a few % of the width)."""
    rng = np.random.default_rng(4)
    data = rng.gamma(2.0, 1.0, size=30)
    boot_rng = np.random.default_rng(5)
    means = np.array([data[boot_rng.integers(0, 30, 30)].mean() for _ in range(4000)])
    ours = stats.interval(means)
    ref = sps.bootstrap(
        (data,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95, random_state=6
    ).confidence_interval
    width = ref.high - ref.low
    assert abs(ours[0] - ref.low) < 0.08 * width and abs(ours[1] - ref.high) < 0.08 * width
    assert stats.interval([np.nan, np.nan]) == [pytest.approx(np.nan, nan_ok=True)] * 2


def test_bootstrap_exponent_interval_covers_a_known_exponent():
    rng = np.random.default_rng(0)
    xs = np.array([10.0, 20, 40, 80])
    samples = np.stack([x**-1.0 * np.exp(0.05 * rng.normal(size=400)) for x in xs])
    slopes, ci = stats.bootstrap_exponent(xs, samples)
    np.testing.assert_allclose(slopes[7], sps.linregress(np.log(xs), np.log(samples[:, 7])).slope, rtol=1e-12)
    assert ci[0] < -1.0 < ci[1] and ci[1] - ci[0] < 0.2


# --- the hierarchical bootstrap (datasets, then seeds within a dataset) -----------------------------------


def _hierarchy(rng, n_datasets, n_seeds, between, within, mean=0.0):
    """y[d, s] = mean + b_d + e_ds with b_d ~ N(0, between²), e_ds ~ N(0, within²)."""
    return mean + between * rng.normal(size=(n_datasets, 1)) + within * rng.normal(size=(n_datasets, n_seeds))


def _boot_var_of_mean(y, n_boot=4000, seed=0, groups=None):
    boot = stats.hierarchical_bootstrap(lambda i, v: v.mean(), [(y,)], n_boot=n_boot, seed=seed)
    return boot[0].var()


def test_hierarchical_bootstrap_variance_is_the_two_stage_closed_form():
    """For one sample, the two-stage bootstrap variance of the grand mean has a closed form: with dataset
    means m_d, ddof-0 between variance B = mean (m_d − m)², ddof-0 within variances W_d, it is
    B/D + mean(W_d)/(D·S). The Monte-Carlo replicates must reproduce it."""
    rng = np.random.default_rng(3)
    y = _hierarchy(rng, 9, 5, between=1.0, within=2.0)
    D, S = y.shape
    exact = y.mean(1).var() / D + y.var(1).mean() / (D * S)
    boot = stats.hierarchical_bootstrap(lambda i, v: v.mean(), [(y,)], n_boot=20000, seed=1)[0]
    np.testing.assert_allclose(boot.var(), exact, rtol=0.04)
    np.testing.assert_allclose(boot.mean(), y.mean(), atol=4 * np.sqrt(exact / 20000))


@pytest.mark.parametrize("between, within", [(1.0, 0.2), (0.2, 1.0), (1.0, 1.0)])
def test_hierarchical_bootstrap_recovers_a_known_between_and_within_variance(between, within):
    """Simulated hierarchies with known variances: the true variance of the grand mean of D datasets × S
    seeds is between²/D + within²/(D·S). Averaged over 300 simulated samples, the bootstrap variance matches
    its known expectation under the two-stage scheme, (D−1)/D·(between² + within²/S)/D + (S−1)/S·within²/(D·S):
    never too narrow (the within part is counted up to twice: conservative), while a flat bootstrap over
    the D·S units (the old rule) is far too narrow when the datasets differ."""
    D, S, reps = 12, 4, 300
    rng = np.random.default_rng(7)
    true = between**2 / D + within**2 / (D * S)
    expected = (D - 1) / D * (between**2 + within**2 / S) / D + (S - 1) / S * within**2 / (
        D * S
    )  # E of the closed form
    hier, flat = [], []
    for _ in range(reps):
        y = _hierarchy(rng, D, S, between, within)
        hier.append(y.mean(1).var() / D + y.var(1).mean() / (D * S))  # the exact bootstrap variance (previous test)
        flat.append(y.var() / (D * S))  # a unit bootstrap: ddof-0 variance of all D·S units over D·S
    np.testing.assert_allclose(np.mean(hier), expected, rtol=0.08)
    assert 0.85 * true < np.mean(hier) < 2.0 * true
    # Monte-Carlo replicates on one of the samples agree with the closed form used above
    y = _hierarchy(rng, D, S, between, within)
    np.testing.assert_allclose(_boot_var_of_mean(y), y.mean(1).var() / D + y.var(1).mean() / (D * S), rtol=0.08)
    if between >= within:
        assert np.mean(flat) < 0.5 * true  # the flat bootstrap is far too narrow here


def test_hierarchical_bootstrap_interval_covers_the_true_mean_at_its_level():
    """Coverage on simulated hierarchies (strong between-dataset variance): the 95% percentile interval of
    the two-stage bootstrap covers the true mean in about 95% of samples (the flat one in far fewer)."""
    D, S, reps = 12, 3, 200
    rng = np.random.default_rng(11)
    hit_h = hit_f = 0
    for r in range(reps):
        y = _hierarchy(rng, D, S, between=1.0, within=0.5, mean=2.0)
        lo, hi = stats.interval(stats.hierarchical_bootstrap(lambda i, v: v.mean(), [(y,)], n_boot=400, seed=r)[0])
        hit_h += lo <= 2.0 <= hi
        flat = y.reshape(-1)[np.random.default_rng(r).integers(0, D * S, (400, D * S))].mean(1)
        lo, hi = stats.interval(flat)
        hit_f += lo <= 2.0 <= hi
    assert 0.85 <= hit_h / reps <= 0.99
    assert hit_f / reps < 0.75


def test_hierarchical_bootstrap_resamples_shared_datasets_jointly():
    """Two settings on the same datasets with the same dataset effect: the difference of their means has
    variance 2·within²/(D·S) (the dataset effect cancels) only if both settings get the same draw; drawn
    independently the dataset effect comes back (≈ 2·between²/D)."""
    D, S = 12, 4
    rng = np.random.default_rng(5)
    b = 3.0 * rng.normal(size=(D, 1))
    y1 = b + 0.1 * rng.normal(size=(D, S))
    y2 = b + 0.1 * rng.normal(size=(D, S)) + 1.0
    diff = lambda boot: boot[1] - boot[0]  # noqa: E731
    joint = stats.hierarchical_bootstrap(lambda i, v: v.mean(), [(y1,), (y2,)], groups=["a", "a"], n_boot=3000, seed=2)
    indep = stats.hierarchical_bootstrap(lambda i, v: v.mean(), [(y1,), (y2,)], n_boot=3000, seed=2)
    exact_joint = (y2 - y1).mean(1).var() / D + (y2 - y1).var(1).mean() / (
        D * S
    )  # closed form of the paired difference
    np.testing.assert_allclose(diff(joint).var(), exact_joint, rtol=0.1)
    assert diff(indep).var() > 50 * diff(joint).var()
    np.testing.assert_allclose(np.median(diff(joint)), 1.0, atol=0.05)


def test_hierarchical_bootstrap_resamples_every_array_of_a_setting_alike_and_checks_shapes():
    v = np.arange(24.0).reshape(2, 3, 4)  # [grid, dataset, seed]
    ok = v % 2 == 0
    seen = []
    stats.hierarchical_bootstrap(lambda i, a, o: seen.append((a, o)) or 0.0, [(v, ok)], n_boot=5)
    for a, o in seen:
        np.testing.assert_array_equal(o, a % 2 == 0)  # the mask travelled with its values
        for k in range(3):  # each resampled dataset row is one original dataset's seeds
            src = {int(x) // 4 % 3 for x in a[0, k]}
            assert len(src) == 1
    with pytest.raises(ValueError, match="groups"):
        stats.hierarchical_bootstrap(lambda i, a: 0.0, [(v,), (v[:, :2],)], groups=[0, 0], n_boot=2)
    with pytest.raises(ValueError, match="settings\\[0\\]"):
        stats.hierarchical_bootstrap(lambda i, a, o: 0.0, [(v, ok[:, :2])], n_boot=2)


def test_pooled_and_per_dataset_argmin_on_known_parabolas():
    """Datasets whose curves are exact parabolas in log α with known vertices: the per-dataset rule returns
    each vertex, its median the median vertex; the pooled rule the vertex of the mean curve."""
    grid = np.logspace(-3, 0, 13)
    lg = np.log(grid)
    vertices = np.array([1e-2, 3e-2, 5e-2, 2e-1])
    curves = np.stack([np.exp((lg - np.log(v)) ** 2) for v in vertices], axis=1)  # log: a parabola, [grid, dataset]
    values = np.repeat(curves[:, :, None], 2, axis=2)
    ok = np.ones_like(values, bool)
    np.testing.assert_allclose(stats.per_dataset_argmin(grid, values, ok), vertices, rtol=1e-9)
    np.testing.assert_allclose(stats.median_per_dataset_argmin(grid, values, ok), np.median(vertices), rtol=1e-9)
    # the pooled rule: the refined argmin of the mean curve, computed independently here
    np.testing.assert_allclose(
        stats.pooled_argmin(grid, values, ok), stats.refine_argmin(grid, curves.mean(1))[0], rtol=1e-12
    )
    assert vertices[0] < stats.pooled_argmin(grid, values, ok) < vertices[-1]
    edge = values.copy()
    edge[:, 0] = np.linspace(0, 1, 13)[:, None]  # minimal at the first grid point
    assert np.isnan(stats.per_dataset_argmin(grid, edge, ok)[0])


@pytest.mark.parametrize(
    "theory, ci, in_regime, identity, label",
    [
        (-1.0, [-1.2, -0.8], True, False, "holds"),
        (-1.0, [-1.2, -0.8], False, False, "holds"),
        (-1.0, [-1.0, -0.8], True, False, "holds"),  # the end is inside
        (-0.5, [-0.94, -0.56], True, False, "does not hold"),
        (-0.5, [-0.27, -0.24], False, False, "not tested in regime"),
        (-2.0, [-1.0, -0.9], True, True, "consistency check"),
        (-1.0, None, True, False, "not resolved"),
        (-1.0, [float("nan"), float("nan")], True, False, "not resolved"),
        ("> 0", [1e-5, 3e-5], True, False, "holds"),  # a sign claim: the rich arm exists
        ("> 0", [-1e-5, 3e-5], True, False, "not resolved"),
        ("> 0", [-3e-5, 0.0], True, False, "does not hold"),
        ("> 0", [-3e-5, -1e-5], False, False, "not tested in regime"),
    ],
)
def test_verdict_label_is_the_one_rule(theory, ci, in_regime, identity, label):
    assert stats.verdict_label(theory, ci, in_regime=in_regime, identity=identity) == label
    assert label in stats.VERDICT_LABELS
