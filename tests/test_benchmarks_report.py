"""benchmarks/report.py: a synthetic measurement judged by benchmarks/judge.py and rendered; the table
rows, the README markers and the matched.json round trip (no JAX runs, well under a second)."""

import json
import math

import numpy as np

from benchmarks import judge, report

MACHINE = {"cpu": "Test CPU", "cores": 2, "jax": "0.0", "backend": "cpu"}


def judged_results():
    """One medium problem measured (walls, errors, iterations), then judged the way `python -m benchmarks.matched` does."""
    ref = {
        "alphas": [0.1, 10.0],
        "t_stop": [2.0005, 0.5003],
        "test_err": [0.1, 0.3],
        "rel_err_estimate": [1e-5, 2e-5],
        "rel_err_estimate_max": 2e-5,
    }
    timed = {
        "0.01": {
            "rtol": 3.16e-3,
            "wall_s": 1.0,
            "steps": [10, 20],
            "t_rel_err_max": 0.005,
            "bounded_by_reference": False,
        },
        "0.001": {"rtol": 1e-3, "wall_s": 4.0, "steps": [40, 9], "t_rel_err_max": 2e-4, "bounded_by_reference": True},
    }
    lrs = [
        {"lr": 0.1, "wall_s": 0.01, "iters": [20, 5], "t_rel_err_max": 0.05},
        {"lr": 0.01, "wall_s": 0.2, "iters": [200, 50], "t_rel_err_max": 0.005},
        {"lr": 0.003, "wall_s": 9.0, "iters": [2000, 2000], "t_rel_err_max": math.inf},
    ]
    chosen, pred = judge.gd_choice(lrs, ref["t_stop"], jax_per_iter=1e-4, numpy_per_iter=2e-4)
    gd = {
        "jax_per_iter_s": 1e-4,
        "numpy_per_iter_s": 2e-4,
        "lrs": lrs,
        "chosen": chosen,
        "lr_predicted_by_fit_at": pred,
    }
    sc_rows = [
        {"rtol": 1e-3, "wall_s": 1.0, "t_rel_err_max": 0.02},
        {"rtol": 1e-4, "wall_s": 3.0, "t_rel_err_max": 0.004},
    ]
    p = {
        "reference": ref,
        "gflow": {"timed": timed},
        "gd": gd,
        "evals_vs_iters": judge.evals_vs_iters(timed, chosen),
        "scipy": {"rows": sc_rows, "chosen": judge.scipy_choice(sc_rows), "max_nfev": 5000},
    }
    res = {
        "command": "python -m benchmarks --quick",
        "quick": True,
        "date": "2026-12-01 12:00:00 UTC",
        "machine": MACHINE,
        "load_start": 1.0,
        "load_end": 2.0,
        "wall_s": 90.0,
        "problems": {"medium/eta=0.01": p},
        "compile": {
            "simulate_compiles": 1,
            "simulate_compile_s": 1.5,
            "n_alpha_tried": 16,
            "recompiles_across_alpha_seed_eta_rtol": 0,
            "sweep_compiles": 2,
            "sweep_compile_s": 2.5,
            "sweep_recompiles_new_alphas": 0,
        },
        "skipped": ["scaling: not run"],
    }
    res["targets"] = judge.targets(res)
    return res


def test_judged_table_rows():
    lines = report.table(judged_results()).splitlines()
    expected = [
        # the targets: numpy 0.1% = 2e-4·(1001 + 251) s / 4 s; JAX 0.1% = 1e-4·1001 s / 4 s, extrapolated
        "| medium η = 0.01, vs numpy GD at 0.1% accuracy: ≥ 20× | 0.0626× (numpy time extrapolated (per-iteration × iterations)) | "
        "**not met** |",
        "| medium η = 0.01, vs JAX GD at 0.1% accuracy: ahead (> 1×) | 0.025× (JAX GD time extrapolated) | **not met** |",
        "| cost-aware ≥ 2× full vmap (None, None runs) | — | not measured |",
        # 1%: gflow's rung, GD's largest lr meeting it (measured), numpy per-iteration × 250 iterations, scipy's rtol
        "| gflow batched (float64) | 1.0% | rtol 0.00316 | 5.0e-03 | 1 s | 1× |",
        "| JAX GD vmapped | 1.0% | lr 0.01, ≤ 200 iterations | 5.0e-03 | 0.2 s | 0.2× |",
        "| numpy GD per config | 1.0% | lr 0.01, 250 iterations, extrapolated (per-iteration time × iterations) | as JAX GD | 0.05 "
        "s | 0.05× |",
        "| scipy RK45 per config | 1.0% | rtol 0.0001 | ≤ level | 3 s | 3× |",
        # 0.1%: gflow bounded by the reference; GD's lr from err ∝ lr at lr 0.01 (0.002, ⌈t/lr⌉ = 1001, 251); scipy not met
        "| gflow batched (float64) | 0.1% | rtol 0.001 | 2.0e-04 (α solved at their reference rung: the reference's estimate) | 4 s | 1× |",
        "| JAX GD vmapped | 0.1% | lr 0.002, ≤ 1001 iterations, extrapolated (lr from err ∝ lr fitted at lr 0.01) | ≤ level (predicted) "
        "| 0.1 s | 0.025× |",
        "| scipy RK45 per config | 0.1% | not met within rtol ≥ 1e-05 / 5000 evaluations | — | — | — |",
        "### medium/eta=0.01: matched accuracy",
        "- scaling: not run",
    ]
    for row in expected:
        assert row in lines, row
    text = "\n".join(lines)
    assert (
        "Gradient evaluations per run (gflow, 3 a Bosh3 step) vs GD iterations, per α: 0.01: gflow [30, 60] vs GD [200, 50]; "
        "0.001: gflow [120, 27] vs GD [1001, 251]" in text
    )
    assert "lr 0.1: 5.0e-02, lr 0.01: 5.0e-03, lr 0.003: not reached" in text
    assert "**0 recompiles**" in text and "How to read this" not in text  # the full suite's notes only in a full run


def test_full_run_notes_say_how_far_err_prop_lr_held():
    res = judged_results()
    res["quick"] = False
    text = report.table(res)
    assert "How to read this" in text and "medium/eta=0.01: 0.5 at 0.1, 0.5 at 0.01, inf at 0.003" in text


def test_write_readme_replaces_only_between_the_markers(tmp_path):
    path = tmp_path / "matched.md"
    report.write_readme(path, "first")  # no file: created with the markers
    assert path.read_text() == f"# Benchmarks\n\n{report.MARK_START}\nfirst\n{report.MARK_END}\n"
    path.write_text(f"intro\n{report.MARK_START}\nold table\n{report.MARK_END}\nafter\n")
    report.write_readme(path, "new table")
    assert path.read_text() == f"intro\n{report.MARK_START}\nnew table\n{report.MARK_END}\nafter\n"
    path.write_text("no markers\n")
    report.write_readme(path, "body")
    assert path.read_text() == f"no markers\n\n{report.MARK_START}\nbody\n{report.MARK_END}\n"


def test_jsonable():
    o = report.jsonable({1: (np.float64(1.5), np.int32(3), np.bool_(True), math.inf, float("nan")), "s": "x"})
    assert o == {"1": [1.5, 3, True, None, None], "s": "x"}
    assert type(o["1"][1]) is int and type(o["1"][2]) is bool


def test_save_partial_then_render_round_trip(tmp_path):
    res = judged_results()
    del res["targets"]  # a run in progress
    report.save(res, tmp_path)
    stored = json.loads((tmp_path / "matched.json").read_text())
    assert stored["problems"]["medium/eta=0.01"]["gd"]["lrs"][-1]["t_rel_err_max"] is None  # inf → null
    assert "**Partial run (in progress or stopped).**" in (tmp_path / "matched.md").read_text()
    # --render: targets re-derived from the stored results, the table rewritten (inf read back as null)
    report.render(tmp_path)
    stored = json.loads((tmp_path / "matched.json").read_text())
    assert stored["targets"] == report.jsonable(judge.targets(judged_results()))
    readme = (tmp_path / "matched.md").read_text()
    assert "Partial run" not in readme and report.table(stored) in readme and "lr 0.003: not reached" in readme
