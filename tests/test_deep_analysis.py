"""Analysis of deep sweeps: seed means over valid cells, c* by a parabola in log c, and the power-law fit of
c* with its bootstrap interval, on planted numbers."""

import numpy as np
import pytest

from gflow.deep.analysis import best_over_lr, c_star, cell_table, scaling_fit, u_shape_summary
from gflow.deep.train import STATUS_CODE

OK, MAX = STATUS_CODE["reached_target"], STATUS_CODE["max_steps"]


def _sweep(c, acc_of_logc, n_seeds=4, noise=0.0, seed=0):
    """Arrays of a planted sweep [c, η, seed]: η index 1 is the good one, η index 0 is 0.05 worse."""
    rng = np.random.default_rng(seed)
    acc = acc_of_logc(np.log(c))[:, None, None] + np.array([-0.05, 0.0])[None, :, None]
    acc = acc + noise * rng.normal(size=(len(c), 2, n_seeds))
    return {"multiplier": np.asarray(c), "lr": np.array([0.1, 1.0]), "peak_test_acc": acc,
            "status": np.full(acc.shape, OK)}


def test_cell_table_and_best_over_lr():
    arr = _sweep(np.logspace(-2, 2, 5), lambda x: 0.9 - 0.01 * x**2)
    arr["status"][0, 1, 2] = MAX  # one failed seed invalidates its cell
    mean, se, valid = cell_table(arr)
    assert not valid[0, 1] and np.isnan(mean[0, 1]) and valid.sum() == 9
    best, best_se, idx = best_over_lr(mean, se)
    assert idx.tolist() == [0, 1, 1, 1, 1] and best[2] == pytest.approx(0.9)


def test_c_star_parabola_is_exact_for_a_quadratic_in_log_c():
    c = np.logspace(-3, 1, 9)
    cs, interior = c_star(c, 0.8 - (np.log(c) - np.log(0.02)) ** 2)
    assert interior and cs == pytest.approx(0.02, rel=1e-9)
    cs, interior = c_star(c, -np.log(c))  # increasing towards small c: a bound at the grid end
    assert not interior and cs == pytest.approx(c[0], rel=1e-12)
    assert np.isnan(c_star(c, np.full(9, np.nan))[0])


def test_scaling_fit_recovers_a_planted_exponent():
    widths = [4, 8, 16, 32]
    c = np.logspace(-4, 1, 21)
    sweeps = [_sweep(c, lambda x, w=w: 0.9 - 0.01 * (x - np.log(0.5 / w)) ** 2, noise=1e-3, seed=w) for w in widths]
    fit = scaling_fit(widths, sweeps, n_boot=200)
    assert fit["exponent"] == pytest.approx(-1.0, abs=0.05)
    lo, hi = fit["ci95"]
    assert lo < -1.0 < hi and hi - lo < 0.3 and fit["n_boot_used"] == 200 and fit["excluded"] == []
    edge = _sweep(c, lambda x: -x)  # best c at the grid end: excluded from the fit
    assert scaling_fit([4, 8, 16, 32, 64], sweeps + [edge], n_boot=10)["excluded"] == [64.0]


def test_u_shape_summary_reports_gains_over_both_ends():
    arr = _sweep(np.logspace(-2, 2, 5), lambda x: 0.9 - 0.01 * x**2, noise=1e-3)
    s = u_shape_summary(arr)
    assert s["interior"] and s["c_star"] == pytest.approx(1.0, rel=0.2)
    assert s["gain_over_small_c"]["gain"] == pytest.approx(0.01 * np.log(100) ** 2, abs=0.005)
    assert s["gain_over_large_c"]["z"] > 10
