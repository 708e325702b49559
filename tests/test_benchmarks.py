"""Smoke test of the benchmark suite (`python -m benchmarks --quick`): it runs, writes its results and
README table, its accuracy checks pass and nothing recompiles across α. Timings are not checked here
(speed belongs to the benchmarks). The sections that reuse the accuracy runs' compiled programs are
run; batching, memory and scaling compile programs of their own and are left to the full command."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pos(v):
    return v is not None and math.isfinite(v) and v > 0


@pytest.mark.slow  # ~1–2 min; run by .ci/run with `-m slow`
def test_quick_benchmark_suite(tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.matched",
            "--quick",
            "--out",
            str(out),
            "--only",
            "compile",
            "gd",
            "scipy",
            "loop",
            "flops",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / "matched.json").read_text())
    readme = (out / "matched.md").read_text()
    assert "<!-- results:start -->" in readme and "<!-- results:end -->" in readme and "### Targets" in readme
    assert res["quick"] and res["machine"]["cores"] >= 1 and "jax" in res["machine"]

    p = res["problems"]["tiny/eta=0.01"]
    ref = p["reference"]
    assert all(_pos(t) for t in ref["t_stop"]) and all(0 <= e <= 1 for e in ref["test_err"])
    assert ref["rel_err_estimate_max"] < 1e-3  # the reference resolves the 1% level

    # gflow: accuracy measured on the ladder, and the 1% level met by a looser rung, timed
    assert p["gflow"]["ladder"] and all(math.isfinite(r["t_rel_err_max"]) for r in p["gflow"]["ladder"])
    g = p["gflow"]["timed"]["0.01"]
    assert g["t_rel_err_max"] <= 0.01 and _pos(g["wall_s"])
    assert all(s == "reached_target" or s.startswith("reached") for s in g["statuses"])

    # GD: errors computed against the reference; a learning rate for 1% with finite positive ratios
    assert any(r["t_rel_err_max"] is not None for r in p["gd"]["lrs"])  # None: inf (a run did not reach η)
    c = p["gd"]["chosen"]["0.01"]
    assert c is not None and _pos(c["lr"]) and min(c["iters"]) >= 1
    for wall in (c["jax_wall_s"], c["numpy_wall_s"]):
        assert _pos(wall) and _pos(wall / g["wall_s"])
    assert p["gd_validation"] and all(_pos(v["measured_over_extrapolated"]) for v in p["gd_validation"])
    assert all(
        v["t_rel_diff_vs_jax_gd"] < 1e-4 for v in p["gd_validation"]
    )  # numpy and JAX GD: the same float64 algorithm

    # scipy: accuracy computed at the rtols it ran, tightening rtol after rtol; a run that reached η
    # disagrees with the reference by a measured, nonzero amount, and tighter rtols are not less accurate
    rows = p["scipy"]["rows"]
    assert rows and all(b["rtol"] < a["rtol"] for a, b in zip(rows, rows[1:]))
    done = [r for r in rows if r["complete"]]
    assert done and all(0 < r["t_rel_err_max"] == max(r["t_rel_err"]) < math.inf for r in done)
    assert done[-1]["t_rel_err_max"] <= done[0]["t_rel_err_max"]

    # gflow's own figures
    comp = res["compile"]
    assert comp["simulate_compiles"] >= 1 and comp["recompiles_across_alpha_seed_eta_rtol"] == 0
    assert comp["sweep_recompiles_new_alphas"] == 0
    assert _pos(res["loop_vs_batched"]["speedup"]) and res["loop_vs_batched"]["t_stop_rel_diff_max"] < 1e-6
    f = res["flops"]
    assert _pos(f["matmul_flops"]) and _pos(f["isolated_fraction"]) and _pos(f["in_run_fraction"])
    assert {t["target"].split(",")[0] for t in res["targets"]} and all("met" in t for t in res["targets"])


@pytest.mark.slow  # ~8 min on 2 cores at load 15: the tiny reference, the GD and rtol ladders, every contender
def test_fair_contenders_quick():
    """`python -m benchmarks.fair --quick`: every contender is judged on t_η and θ against the reference; the
    envelope oracles (GD, gflow rtol) meet the contract at each level they chose for; self-verifying GD
    is charged its runs; gflow's state comes from a run equal to the sweep's."""
    from benchmarks import fair

    res = fair.main(["--quick"])
    (r,) = res["results"]
    assert set(r["levels"]) | set(map(str, r["levels_not_resolved"])) >= {"0.01"}
    assert "0.01" in r["levels"]
    for lv, row in r["levels"].items():
        level = float(lv)
        g = row["gflow"]
        # simulate and the sweep are two compiled programs: accuracy mode's solves agree to ~4e-8 (measured), not bitwise
        assert all(s == "reached_target" for s in g["statuses"]) and g["sweep_vs_simulate_t_rel_diff_max"] < 1e-6
        assert all(0 < e <= level for e in g["t_err_est"]) and all(0 < e <= level for e in g["theta_err_est"])
        assert all(math.isfinite(e) for e in g["theta_err"])
        for k in ("oracle_jax_gd", "oracle_numpy_gd", "gflow_oracle_rtol"):
            assert row[k]["met"] and _pos(row[k]["wall_s"]) and _pos(row["ratios"][f"gflow_vs_{k}"]), k
            assert row[k]["theta_rel_err_max"] <= level and row[k]["t_rel_err_max"] <= level
        # numpy and JAX GD: the same float64 algorithm at the same lr
        assert row["oracle_numpy_gd"]["iters"] == row["oracle_jax_gd"]["iters"]
        # the envelope's lr is never larger than the t_η-only oracle's (which takes any lr that lands in the level)
        t_only = row["t_only_oracle_jax_gd"]
        assert all(a <= b for a, b in zip(row["oracle_jax_gd"]["lr"], t_only["lr"])) and t_only["t_only_met"]
        sv = row["self_verifying_jax_gd"]
        assert _pos(sv["wall_s"]) and min(sv["iters"]) >= 2 and all(math.isfinite(e) for e in sv["theta_err"])
    assert "| tiny | 0.01 | 0.01 |" in res["table"]


@pytest.mark.slow  # ~1 min on 2 cores
def test_gpu_check_fair_smoke_on_cpu(capsys):
    """benchmarks/gpu/gpu_check.py --quick --fair-only runs the fair comparison on whatever device there is (CPU here)."""
    from benchmarks.gpu import gpu_check

    assert gpu_check.main(["--quick", "--fair-only"]) == 0
    out = capsys.readouterr().out
    assert "fair comparison at level 0.01" in out and "gflow / GD runs/s" in out


@pytest.mark.slow  # compiles the tiny sweep's batch: ~20–40 s on 2 loaded cores
def test_sweep_profile_quick():
    """`python -m benchmarks.studies.sweep_profile --quick`: the batches it times are `run_sweep`'s runs (same steps,
    t_stop and statuses, bitwise), and its lane-waste bound is Σ_batches B·max(lane steps) against Σ steps."""
    import numpy as np

    import gflow
    from benchmarks.studies import sweep_profile
    from gflow.twolayer.config import Config, with_overrides

    v = sweep_profile.main(["--quick", "--variants", "base"])["variants"]["base"]
    a = gflow.run_sweep(with_overrides(Config(), sweep_profile.QUICK), progress=False).arrays
    lane = np.asarray(v["lane"])
    np.testing.assert_array_equal(np.asarray(v["t_stop"]), a["t_stop"].ravel()[lane])
    assert v["lane_steps"] == int(a["n_steps"].sum()) and v["batches"] == 2 and v["batch_lanes"] == 2
    steps = a["n_steps"].ravel()[lane].reshape(2, 2)  # the plan's batches: 2 lanes (seeds) of one α each
    assert v["lane_steps_computed_min"] == 2 * int(steps.max(axis=1).sum()) >= v["lane_steps"]
    assert v["status"] == {n: int(c) for n, c in gflow.runs.status.counts(a["status"]).items()}
    assert v["cpu_s"] > 0 and v["cpu_ms_per_lane_step"] > 0


@pytest.mark.slow  # ~15 s
def test_step_cost_quick():
    """`python -m benchmarks.studies.step_cost --quick`: every piece is timed over the work it did; the gflow rows count
    the run's own steps, and the bare diffrax solve is a real adaptive solve (more than a handful of steps)."""
    import gflow
    from benchmarks.common import problem_config
    from benchmarks.studies import step_cost

    res = step_cost.main(["--quick"])
    rows = res["rows"]
    lean, ref = "gflow step, lean loop, minimal observables", "gflow step, diffrax loop, minimal observables"
    assert set(rows) == {"GD iteration", "vector field", "bare diffrax step", lean, ref, "gflow step, as shipped"}
    assert all(r["median_s"] > 0 and r["ms_per_unit"] > 0 and r["units"] > 0 for r in rows.values())
    assert rows["GD iteration"]["over_gd_iteration"] == 1.0 and rows["bare diffrax step"]["units"] > 10
    cfg = problem_config("tiny", dtype="float64", n_seeds=1, init_scales=(0.1,), rtol=1e-3)
    r = gflow.simulate(init_scale=0.1, config=cfg)
    assert (
        rows[lean]["units"]
        == rows[ref]["units"]
        == rows["gflow step, as shipped"]["units"]
        == res["gflow_steps"]
        == int(r.n_steps)
    )


def test_shipped_accuracy_rule_meets_the_stored_calibration_ladder():
    """The constants of flow.accuracy's rule, replayed on the stored calibration ladder (benchmarks/studies/accuracy_ladder.py):
    every case meets both halves of the contract at 1e-2 and 1e-3, and a looser first solve (rtol = ε) does not."""
    from pathlib import Path

    import numpy as np

    from benchmarks.studies import accuracy_ladder as al
    from gflow.twolayer import flow as F

    z = dict(np.load(Path(al.__file__).parents[1] / "data" / "accuracy_ladder_calibration.npz"))
    assert F._ACC_SAFETY == 1.0  # the estimate is the plain distance between the last two solves (f = 1)
    for eps in (1e-2, 1e-3):
        cases = [c for c in range(len(z["t"])) if al.envelope_oracle(z["t_err"][c], z["theta_err"][c], eps) is not None]
        assert len(cases) == 24
        met = []
        for c in cases:
            j, _, n, beyond = al.replay_rule(
                z, c, eps, F._ACC_RTOL0, F._ACC_RHO, 1.0, F._ACC_SAFETY, F._ACC_MAX_SOLVES, F._ACC_MIN_SHRINK
            )
            assert not beyond and n >= 2
            met.append(z["t_err"][c, j] <= eps and z["theta_err"][c, j] <= eps)
        assert all(met), eps
    # the choice is not vacuous: the same rule from a first solve at rtol = ε accepts runs that miss the contract
    for eps in (1e-2, 1e-3):
        loose = [al.replay_rule(z, c, eps, 1.0, F._ACC_RHO, 1.0, F._ACC_SAFETY)[:4:3] for c in range(len(z["t"]))]
        assert any(not b and (z["t_err"][c, j] > eps or z["theta_err"][c, j] > eps) for c, (j, b) in enumerate(loose))
