"""Analysis of deep sweeps: seed means over valid cells, c* by a parabola in log c, and the power-law fit of
c* with its bootstrap interval, on planted numbers."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gflow.deep.analysis import (
    best_over_lr,
    c_star,
    c_star_location,
    cell_table,
    invalid_reason,
    json_safe,
    scaling_fit,
    u_shape_summary,
)
from gflow.deep.stop import STATUS_CODE
from gflow.runs.status import RUNNING

OK, MAX, DIV = STATUS_CODE["reached_target"], STATUS_CODE["max_steps"], STATUS_CODE["diverged"]


def _sweep(c, acc_of_logc, n_seeds=4, noise=0.0, seed=0):
    """Arrays of a planted sweep [c, η, seed]: η index 1 is the good one, η index 0 is 0.05 worse."""
    rng = np.random.default_rng(seed)
    acc = acc_of_logc(np.log(c))[:, None, None] + np.array([-0.05, 0.0])[None, :, None]
    acc = acc + noise * rng.normal(size=(len(c), 2, n_seeds))
    return {
        "multiplier": np.asarray(c),
        "lr": np.array([0.1, 1.0]),
        "peak_test_acc": acc,
        "status": np.full(acc.shape, OK),
    }


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
    assert s["interior"] and s["c_star"] == pytest.approx(1.0, rel=0.2) and s["c_star_where"] == "interior"
    assert s["gain_over_small_c"]["gain_pp"] == pytest.approx(100 * 0.01 * np.log(100) ** 2, abs=0.5)  # in pp
    assert s["gain_over_large_c"]["z"] > 10
    assert s["best_test_acc"][2] == pytest.approx(90.0, abs=0.2)  # percent


def test_summary_says_why_a_c_is_invalid_and_is_valid_json():
    arr = _sweep(np.logspace(-2, 2, 5), lambda x: 0.9 - 0.01 * x**2)
    arr["status"][0] = MAX  # every run at the smallest c stopped by its budget
    arr["status"][4, :, :3] = DIV  # most runs at the largest c diverged
    arr["status"][4, :, 3] = MAX
    arr["budget"] = np.full(arr["status"].shape, 500)
    s = u_shape_summary(arr)
    assert s["invalid_reason"] == ["budget", None, None, None, "diverged"]
    assert (
        s["best_test_acc"][0] is None and s["best_lr"][0] is None and s["best_step_size"][1] == pytest.approx(1.0 / 0.1)
    )
    assert s["statuses"][4] == {"max_steps": 2, "diverged": 6} and s["budget"] == [500] * 5
    assert s["c_star_where"] == "interior" and s["gain_over_small_c"]["c"] == pytest.approx(0.1)
    text = json.dumps(s, allow_nan=False)  # raises on NaN: null instead
    assert json.loads(text)["best_test_acc_se"][0] is None
    nothing = {**arr, "status": np.full(arr["status"].shape, MAX)}
    s = u_shape_summary(nothing)
    assert s["c_star"] is None and s["c_star_where"] == "no valid cell" and "gain_over_small_c" not in s
    json.dumps(s, allow_nan=False)
    assert json_safe({"a": [np.float32("nan"), np.inf, np.int64(3)], "b": (1.5,)}) == {"a": [None, None, 3], "b": [1.5]}
    assert invalid_reason(np.array([OK, OK])) == ""
    # merged grids mark cells no sweep ran with RUNNING (−1): named, not a crash in np.bincount
    assert invalid_reason(np.array([RUNNING, RUNNING])) == "not run"
    assert invalid_reason(np.array([OK, RUNNING, DIV])) == "diverged"


def test_analysis_imports_without_jax():
    code = "import sys, gflow.deep.analysis; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_c_star_location_tells_grid_end_from_gap():
    c = np.logspace(-2, 2, 5)
    assert c_star_location(c, [0.1, 0.5, 0.9, 0.4, 0.2]) == "interior"
    assert c_star_location(c, [0.9, 0.5, 0.4, 0.3, 0.2]) == "grid end"
    assert c_star_location(c, [np.nan, 0.5, 0.9, np.nan, 0.2]) == "next to a gap"
    assert c_star_location(c, [np.nan] * 5) == "no valid cell"


def test_eta_and_c_star_are_chosen_on_validation_and_test_is_reported_there():
    """Planted sweep whose validation and test accuracies disagree: the η at each c and c* follow the
    validation accuracy, the reported accuracy is the test accuracy at those choices (not the test
    maximum), and the summary says so. A run saved before the split (no peak_val_acc) is labelled as
    selected on test."""
    c = np.logspace(-2, 2, 5)
    val = np.zeros((5, 2, 3))
    test = np.zeros((5, 2, 3))
    val[:, 0], val[:, 1] = 0.80, 0.70  # validation prefers η index 0 …
    test[:, 0], test[:, 1] = 0.60, 0.90  # … the test set would prefer η index 1
    val[3] += 0.05  # c* on validation: c = 10
    test[1] += 0.2  # the test set would put c* at c = 0.1
    arr = {
        "multiplier": c,
        "lr": np.array([0.1, 1.0]),
        "status": np.full(val.shape, OK),
        "peak_val_acc": val,
        "test_acc_at_peak": test,
        "peak_test_acc": test + 0.01,
    }
    s = u_shape_summary(arr)
    assert s["selection"] == "validation" and "chosen on the validation set" in s["selection_note"]
    assert s["best_lr"] == [0.1] * 5  # validation's η, not test's
    np.testing.assert_allclose(s["best_test_acc"], 100 * test[:, 0, 0])  # test at the chosen η
    np.testing.assert_allclose(s["best_val_acc"], 100 * val[:, 0, 0])
    assert s["test_acc_at_chosen_c"]["c"] == pytest.approx(10.0) and s["c_star_where"] == "interior"
    assert s["test_acc_at_chosen_c"]["acc"] == pytest.approx(60.0)
    assert s["c_star"] == pytest.approx(10.0, rel=0.3)  # the parabola through validation's best grid point
    assert s["gain_over_small_c"]["gain_pp"] == pytest.approx(0.0, abs=1e-9)  # test at c = 10 minus test at c = 0.01
    json.dumps(s, allow_nan=False)
    old = {k: v for k, v in arr.items() if k not in ("peak_val_acc", "test_acc_at_peak")}
    s_old = u_shape_summary(old)
    assert s_old["selection"] == "test (saved before the validation split)" and "TEST set" in s_old["selection_note"]
    assert s_old["best_lr"] == [1.0] * 5 and "best_val_acc" not in s_old
    none = {**arr, "peak_val_acc": np.full(val.shape, np.nan)}
    assert u_shape_summary(none)["selection"] == "test (no validation set)"
