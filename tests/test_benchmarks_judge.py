"""benchmarks/judge.py: the suite's verdicts from synthetic measurements, each expected value worked out
by hand from the rule the module states (pure functions: no JAX, milliseconds)."""

import json
import math
from pathlib import Path

import pytest

from benchmarks import judge
from benchmarks import reference as refmod

ROOT = Path(__file__).resolve().parents[1]
RTOLS = (1e-2, 3.16e-3, 1e-3)


def _rung(rtol, t, err, steps):
    return {"rtol": rtol, "t_stop": t, "test_err": err, "n_steps": steps}


def synthetic_reference():
    """Two α: the first's reference is the floor-on rung 1e-3 (so at 1e-3 gflow is bounded by its
    estimate); the second's is a floor-off variant (so every floor-on rung is measured against it)."""
    return {
        "alphas": [0.1, 10.0],
        "t_stop": [2.0, 0.5],
        "test_err": [0.10, 0.30],
        "rel_err_estimate": [1e-5, 2e-5],
        "runs": [
            {
                "rtol": 1e-3,
                "variant": "floor_on",
                "rel_err_estimate": 1e-5,
                "variants": {
                    "floor_on": [
                        _rung(1e-2, 2.04, 0.11, 10),
                        _rung(3.16e-3, 2.01, 0.10, 20),
                        _rung(1e-3, 2.0, 0.10, 40),
                    ]
                },
            },
            {
                "rtol": 1e-4,
                "variant": "floor_off",
                "rel_err_estimate": 2e-5,
                "variants": {
                    "floor_on": [
                        _rung(1e-2, 0.5025, 0.32, 5),
                        _rung(3.16e-3, 0.5005, 0.30, 7),
                        _rung(1e-3, 0.5001, 0.30, 9),
                    ]
                },
            },
        ],
    }


def test_gflow_accuracy_on_the_reference_ladder():
    rows, chosen = judge.gflow_accuracy(synthetic_reference(), RTOLS, levels=(1e-2, 1e-3, 1e-4))
    assert [r["rtol"] for r in rows] == list(RTOLS)
    assert rows[0]["t_rel_err"] == pytest.approx([0.02, 0.005]) and rows[0]["t_rel_err_max"] == pytest.approx(0.02)
    assert rows[0]["test_err_abs_diff_max"] == pytest.approx(0.02) and rows[0]["steps"] == [10, 5]
    assert rows[1]["t_rel_err_max"] == pytest.approx(0.005) and not rows[1]["bounded_by_reference"]
    # at its own reference rung the first α's error is the reference's estimate; the second is measured
    assert rows[2]["t_rel_err"] == pytest.approx([1e-5, 2e-4]) and rows[2]["bounded_by_reference"]
    # loosest rtol meeting each level; none meets 1e-4
    assert chosen == {"0.01": 3.16e-3, "0.001": 1e-3, "0.0001": None}


def test_gflow_ladder_stops_where_a_rung_is_missing():
    ref = synthetic_reference()
    ref["runs"][1]["variants"]["floor_on"].pop()  # the second α has no rung 1e-3
    rows, chosen = judge.gflow_accuracy(ref, RTOLS, levels=(1e-2, 1e-3))
    assert [r["rtol"] for r in rows] == [1e-2, 3.16e-3] and chosen == {"0.01": 3.16e-3, "0.001": None}


def test_subset_reference_and_rel_errs():
    sub = judge.subset_reference(synthetic_reference(), (10.0,))
    assert sub["alphas"] == [10.0] and sub["t_stop"] == [0.5] and sub["rel_err_estimate_max"] == 2e-5
    assert len(sub["runs"]) == 1 and sub["runs"][0]["variant"] == "floor_off"
    assert judge.rel_errs([1.1, None, math.nan], [1.0, 1.0, 1.0]) == [pytest.approx(0.1), math.inf, math.inf]


T_REF = [2.0005, 0.5003]  # t/lr never an integer at the lr below (no ceil ties)


def gd_rows():
    """JAX GD at four learning rates, largest first; the smallest did not reach η (inf; None once stored)."""
    return [
        {"lr": 0.1, "wall_s": 0.01, "iters": [20, 5], "t_rel_err_max": 0.05},
        {"lr": 0.03, "wall_s": 0.05, "iters": [67, 17], "t_rel_err_max": 0.015},
        {"lr": 0.01, "wall_s": 0.2, "iters": [200, 50], "t_rel_err_max": 0.005},
        {"lr": 0.003, "wall_s": 9.0, "iters": [2000, 2000], "t_rel_err_max": math.inf},
    ]


@pytest.mark.parametrize("unreached", [math.inf, None])
def test_gd_choice_measured_and_extrapolated(unreached):
    rows = gd_rows()
    rows[-1]["t_rel_err_max"] = unreached
    chosen, pred = judge.gd_choice(rows, T_REF, jax_per_iter=1e-4, numpy_per_iter=2e-4, levels=(1e-2, 1e-3))
    # 1%: the largest lr meeting it, measured; numpy = per-iteration time × all iterations (250)
    assert chosen["0.01"] == {
        "lr": 0.01,
        "measured": True,
        "iters": [200, 50],
        "jax_wall_s": 0.2,
        "t_rel_err_max": 0.005,
        "numpy_wall_s": pytest.approx(0.05),
        "numpy_extrapolated": True,
    }
    # 0.1%: err ∝ lr from the smallest lr with a finite error (0.01, err 0.005) → lr 0.002,
    # iterations ⌈2.0005/0.002⌉ = 1001 and ⌈0.5003/0.002⌉ = 251
    c = chosen["0.001"]
    assert not c["measured"] and c["fit_from_lr"] == 0.01 and c["lr"] == pytest.approx(0.002)
    assert c["iters"] == [1001, 251] and c["t_rel_err_max"] is None
    assert c["jax_wall_s"] == pytest.approx(1e-4 * 1001) and c["numpy_wall_s"] == pytest.approx(2e-4 * 1252)
    # every finite lr predicts the lr of each level (err/lr = 0.5 at each here)
    assert pred["0.01"] == pytest.approx({"0.1": 0.02, "0.03": 0.02, "0.01": 0.02})
    assert pred["0.001"] == pytest.approx({"0.1": 0.002, "0.03": 0.002, "0.01": 0.002})


def test_gd_choice_without_a_finite_error_chooses_nothing():
    rows = [{"lr": 0.1, "wall_s": 1.0, "iters": [10, 10], "t_rel_err_max": math.inf}]
    chosen, pred = judge.gd_choice(rows, T_REF, 1e-4, 2e-4, levels=(1e-2,))
    assert chosen == {"0.01": None} and pred == {"0.01": {}}


def test_scipy_choice_and_evals_vs_iters():
    rows = [
        {"rtol": 1e-3, "wall_s": 1.0, "t_rel_err_max": 0.02},
        {"rtol": 1e-4, "wall_s": 3.0, "t_rel_err_max": 0.004},
        {"rtol": 1e-5, "wall_s": 9.0, "t_rel_err_max": 8e-4},
    ]
    # the loosest rtol meeting each level (1e-5 meets 1% too, but is not the loosest)
    assert judge.scipy_choice(rows, levels=(1e-2, 1e-3, 1e-4)) == {
        "0.01": {"rtol": 1e-4, "wall_s": 3.0},
        "0.001": {"rtol": 1e-5, "wall_s": 9.0},
        "0.0001": None,
    }
    rows[-1]["t_rel_err_max"] = None  # did not reach η (stored)
    assert judge.scipy_choice(rows, levels=(1e-3,)) == {"0.001": None}
    ev = judge.evals_vs_iters(
        {"0.01": {"steps": [10, 20]}, "0.001": None}, {"0.01": {"iters": [5, 6]}, "0.001": {"iters": [7, 8]}}
    )
    assert ev == {
        "0.01": {"gflow_evals": [30, 60], "gd_iters": [5, 6]}
    }  # 3 evaluations a Bosh3 step; 0.1% not met by gflow


def synthetic_results():
    """A measured medium/η = 0.01 problem (walls only), FLOP/s and the loop; batching not run."""
    gflow_timed = {"0.01": {"wall_s": 1.0}, "0.001": {"wall_s": 2.0}}
    gd_chosen = {
        "0.01": {"measured": True, "jax_wall_s": 0.5, "numpy_wall_s": 4.0},
        "0.001": {"measured": False, "jax_wall_s": 1.5, "numpy_wall_s": 50.0},
    }
    return {
        "problems": {"medium/eta=0.01": {"gflow": {"timed": gflow_timed}, "gd": {"chosen": gd_chosen}}},
        "flops": {"problem": "medium", "in_run_fraction": 0.6, "isolated_fraction": 0.9},
        "loop_vs_batched": {"problem": "small", "n_runs": 64, "speedup": 3.0},
    }


def test_targets_from_synthetic_results():
    t = {r["target"]: r for r in judge.targets(synthetic_results())}
    assert len(t) == 6  # medium η = 1e-3 not run: left out, not "not met"
    numpy_01 = t["medium η = 0.01, vs numpy GD at 0.1% accuracy: ≥ 20×"]
    assert numpy_01["ratio"] == 25.0 and numpy_01["met"] is True  # 50 s / 2 s
    numpy_1 = t["medium η = 0.01, vs numpy GD at 1.0% accuracy: ≥ 5×"]
    assert numpy_1["ratio"] == 4.0 and numpy_1["met"] is False
    jax_01 = t["medium η = 0.01, vs JAX GD at 0.1% accuracy: ahead (> 1×)"]
    assert jax_01["ratio"] == 0.75 and jax_01["met"] is False and jax_01["note"] == "JAX GD time extrapolated"
    flops = t["≥ 50% of matmul FLOP/s in gradient evaluation (medium)"]
    assert flops["met"] is True and flops["note"] == "isolated vector field: 90%"
    assert t["batched sweep ≥ 5× the simulate loop (small, 64 runs)"]["met"] is False
    batching = t["cost-aware ≥ 2× full vmap (None, None runs)"]
    assert batching["ratio"] is None and batching["met"] is None


def test_targets_say_why_a_ratio_is_missing():
    res = synthetic_results()
    med = res["problems"]["medium/eta=0.01"]
    del med["gflow"]["timed"]["0.001"]
    med["gd"]["chosen"]["0.01"] = None
    t = {r["target"]: r for r in judge.targets(res)}
    assert t["medium η = 0.01, vs numpy GD at 0.1% accuracy: ≥ 20×"]["note"].startswith("no gflow tolerance")
    assert t["medium η = 0.01, vs numpy GD at 1.0% accuracy: ≥ 5×"]["note"] == "no GD learning rate met this level"
    res["problems"] = {}
    assert all(r["met"] is None and r["note"] == "not run" for r in judge.targets(res)[:3])


def test_judge_reproduces_the_stored_suite_verdicts():
    """The full suite's stored matched.json (judged when it ran): every verdict re-derived from its own
    measurements is the stored one (GD and scipy choices, evaluation counts, targets), and gflow's ladder
    is re-derived from the stored reference it was judged on."""
    res = json.loads((ROOT / "benchmarks" / "results" / "matched.json").read_text())
    refs, ladders = refmod.load(), 0
    stored = lambda o: json.loads(json.dumps(o).replace("Infinity", "null"))  # noqa: E731  (matched.json stores inf as null)
    for key, p in res["problems"].items():
        g = p["gd"]
        chosen, pred = judge.gd_choice(g["lrs"], p["reference"]["t_stop"], g["jax_per_iter_s"], g["numpy_per_iter_s"])
        assert stored(chosen) == g["chosen"] and stored(pred) == g["lr_predicted_by_fit_at"]
        assert judge.evals_vs_iters(p["gflow"]["timed"], g["chosen"]) == p["evals_vs_iters"]
        if "scipy" in p:
            assert judge.scipy_choice(p["scipy"]["rows"]) == p["scipy"]["chosen"]
        ref = refs.get(key)
        if ref is not None and ref["date"] == p["reference"]["date"]:  # the reference it was judged on
            ref = judge.subset_reference(ref, tuple(p["reference"]["alphas"]))
            rows, rtols = judge.gflow_accuracy(ref)
            assert stored(rows) == p["gflow"]["ladder"] and rtols == p["gflow"]["chosen_rtol"]
            ladders += 1
    assert ladders >= 1 and stored(judge.targets(res)) == res["targets"]
