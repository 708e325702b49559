"""The --quick preset of every deep experiment script runs end to end in-process, its summaries checked
against the stored arrays; the CPU mode of the GPU check is a smoke run."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import gflow.runs.status
from gflow.runs.store import arrays_of, load_run

ROOT = Path(__file__).resolve().parents[2]


def _load(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _independent_best(arrays):
    """Test accuracy (%) at the η with the best mean peak validation accuracy at each c, written out with
    loops: a cell counts only if every seed reached the target."""
    ok_code = 0  # reached_target
    out = []
    for i in range(arrays["status"].shape[0]):
        cells = [
            (float(np.mean(arrays["peak_val_acc"][i, j])), 100 * float(np.mean(arrays["test_acc_at_peak"][i, j])))
            for j in range(arrays["status"].shape[1])
            if np.all(arrays["status"][i, j] == ok_code)
        ]
        out.append(max(cells)[1] if cells else None)
    return out


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
@pytest.mark.parametrize("preset, expect_valid", [("digits-mlp", True), ("edim-cnn", True), ("mnist1d-cnn", False)])
def test_deep_fls_sweep_quick(preset, expect_valid, tmp_path, capsys):
    """The quick presets end to end; summary.json and the best-vs-c figure are checked against the run's
    arrays: every c on the axis, invalid c marked with why, a no-valid-cell message when there is none."""
    from gflow.deep.plot import NO_VALID, best_vs_c_figure, heatmap_figure, tick_label

    script = _load("experiments/deep_fls_sweep.py")
    res, summary = script.main(["--preset", preset, "--quick", "--out", str(tmp_path), "--quiet"])
    assert res.arrays["status"].shape == (3, 2, 2)
    for name in (
        "heatmap.png",
        "heatmap_step_size.png",
        "best_vs_c.png",
        "summary.json",
        "manifest.json",
        "results.nc",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    saved = json.loads(text)
    ds = load_run(tmp_path)
    arrays = arrays_of(ds)
    assert saved["multiplier"] == [0.25, 1.0, 4.0]
    best = _independent_best(arrays)
    assert any(v is not None for v in best) == expect_valid
    for got, want in zip(saved["best_test_acc"], best):
        assert (got is None and want is None) or got == pytest.approx(want, abs=1e-9)
    names = np.asarray(gflow.runs.status.NAMES)  # one vocabulary: name of each code
    for k, counts in enumerate(saved["statuses"]):  # per c, over every η and seed
        codes, n = np.unique(arrays["status"][k], return_counts=True)
        assert counts == {str(names[c]): int(m) for c, m in zip(codes, n)}
    assert all((why is None) == (v is not None) for why, v in zip(saved["invalid_reason"], best))
    assert all(b == 80 for b in saved["budget"])

    fig = best_vs_c_figure(ds)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [tick_label(c) for c in (0.25, 1.0, 4.0)]  # every c kept
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == sum(v is None for v in best)  # invalid c marked
    texts = [t.get_text() for t in ax.texts]
    assert (NO_VALID in texts) == (not expect_valid)
    assert {why for why in saved["invalid_reason"] if why} <= set(texts)
    if expect_valid:
        line = next(ln for ln in ax.get_lines() if ln.get_marker() == "o")
        np.testing.assert_allclose(line.get_ydata(), [v for v in best if v is not None])
        assert "c* =" in capsys.readouterr().out
    heat = heatmap_figure(ds)
    assert len(heat.axes) == (2 if expect_valid else 1)  # a colour bar only when some cell is valid
    assert any("test accuracy at the validation peak (%" in (a.get_ylabel() + a.get_title()) for a in heat.axes)
    assert saved["selection"] == "validation" and "chosen on the validation set" in saved["selection_note"]
    # the saved arrays are the returned ones, and every record obeys the stop rule's bookkeeping
    for name in ("status", "peak_test_acc", "steps", "peak_step"):
        np.testing.assert_array_equal(arrays[name], res.arrays[name], err_msg=name)
    cfg = script.get_config(preset, quick=True)
    ok = arrays["status"] == 0
    assert np.all(arrays["final_train_acc"][ok] >= cfg.train.target_acc)
    seen = np.isfinite(arrays["peak_test_acc"]) & np.isfinite(arrays["final_test_acc"])  # not nonfinite
    acc = arrays["peak_test_acc"][seen]
    assert np.all((0 <= acc) & (acc <= 1))
    assert np.all(acc >= arrays["final_test_acc"][seen])  # the peak is over the checks, the last one included
    assert np.all(arrays["peak_step"][seen] % cfg.train.check_every == 0)
    assert np.all(arrays["peak_step"][seen] <= arrays["steps"][seen])
    # the reported accuracy is the test accuracy at the validation peak: never above the test set's own peak
    assert np.all(arrays["test_acc_at_peak"][seen] <= arrays["peak_test_acc"][seen])
    # the learning curves hold that point: at peak_step, val = peak_val_acc and test = test_acc_at_peak
    steps = list(arrays["step"])
    for idx in zip(*np.nonzero(seen)):
        k = steps.index(arrays["peak_step"][idx])
        assert arrays["curve_val_acc"][idx][k] == pytest.approx(arrays["peak_val_acc"][idx], abs=1e-7)
        assert arrays["curve_test_acc"][idx][k] == pytest.approx(arrays["test_acc_at_peak"][idx], abs=1e-7)


def test_gpu_presets_are_valid_configs():
    script = _load("experiments/deep_fls_sweep.py")
    cifar = script.get_config("cifar10-resnet18", data_path="/data/cifar-10-batches-py")
    assert cifar.model.arch == "resnet" and cifar.model.resolved_depth == 18 and cifar.model.resolved_norm == "group"
    assert cifar.data.path == "/data/cifar-10-batches-py" and cifar.train.batch_size == 128
    assert cifar.sweep.max_lanes == 1  # vmapped ResNet-18 replicas were slower than one on an H200
    for preset, depth, arch in (("cifar100-resnet50", 50, "resnet"), ("cifar100-vgg19", 19, "vgg")):
        cfg = script.get_config(preset)
        assert cfg.data.name == "cifar100" and cfg.data.n_train == -1 and cfg.data.path == "data/cifar-100-python"
        assert cfg.model.arch == arch and cfg.model.resolved_depth == depth and 2.0**-4 in cfg.sweep.multipliers
    assert script.get_config("digits-mlp").sweep.multipliers == tuple(2.0**k for k in range(-10, 3))
    edim = script.get_config("edim-resnet18", quick=True)
    assert edim.model.width == 4 and edim.data.name == "edim"


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_deep_scaling_law_quick(tmp_path, capsys):
    script = _load("experiments/deep_scaling_law.py")
    fits = script.main(["--quick", "--out", str(tmp_path), "--quiet", "--n-boot", "20"])
    assert set(fits) == {"width", "n"} and fits["width"]["x"] == [2.0, 4.0]
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert saved["fits"]["n"]["predicted_exponent"] == -2.0
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert "NaN" not in (tmp_path / "scaling.json").read_text()
    sweeps = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert sweeps == ["width2_n128", "width4_n128", "width4_n64"]
    for name in sweeps:  # per-sweep figures
        assert (tmp_path / name / "heatmap.png").stat().st_size > 0 and (
            tmp_path / name / "best_vs_c.png"
        ).stat().st_size > 0
    dirs = {"width": ["width2_n128", "width4_n128"], "n": ["width4_n64", "width4_n128"]}
    for axis, names in dirs.items():  # c* at the best c of the stored arrays, or refined next to it
        f = saved["fits"][axis]
        for name, c_star, interior in zip(names, f["c_star"], f["interior"]):
            arrays = arrays_of(load_run(tmp_path / name))
            best = np.array([np.nan if v is None else v for v in _independent_best(arrays)])
            if not np.isfinite(best).any():
                assert c_star is None or not np.isfinite(c_star)
                continue
            c = arrays["multiplier"]
            i = int(np.nanargmax(best))
            if interior:
                assert c[i - 1] <= c_star <= c[i + 1]
            else:
                assert c_star == c[i]
        use = [k for k, interior in enumerate(f["interior"]) if interior]
        if len(use) >= 2:  # the exponent is the least-squares slope over the interior points
            slope = np.polyfit(np.log([f["x"][k] for k in use]), np.log([f["c_star"][k] for k in use]), 1)[0]
            np.testing.assert_allclose(f["exponent"], slope, rtol=1e-9)
    for f in fits.values():  # the printed bound says which kind it is
        assert len(f["where"]) == 2
        for where, interior in zip(f["where"], f["interior"]):
            assert (where == "interior") == interior and where in (
                "interior",
                "grid end",
                "next to a gap",
                "no valid cell",
            )
    out = capsys.readouterr().out
    for f in fits.values():
        for x, where in zip(f["x"], f["where"]):
            if where != "interior":
                assert f"{x:g}: " in out and f"({where})" in out


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_gpu_deep_check_cpu_smoke():
    result = _load("benchmarks/gpu/gpu_deep_check.py").main(["--cpu-smoke"])
    assert result["agreement"]["ok"] and result["throughput"][0]["steps_per_s"] > 0
    assert result["agreement"]["reference"].endswith("gpu_results/cpu_reference_smoke.json")
    assert np.isfinite(result["throughput"][0]["images_per_s"]) and result["throughput"][0]["eval_images_per_s"] > 0
    mlp = result["mlp_replicas"]
    assert [r["replicas"] for r in mlp] == [1, 4] and mlp[1]["per_lane_speedup_over_first"] > 0


def test_gpu_deep_check_compares_with_the_stored_cpu_reference(tmp_path):
    """The device's records are compared with CPU results stored beforehand (not recomputed: never the CPU
    against itself): a reference whose loss, steps or statuses differ fails with exit status 1, and --out
    stays strict JSON (null where a difference is not finite, never Infinity or NaN)."""
    check = _load("benchmarks/gpu/gpu_deep_check.py")
    stored = json.loads(check.reference_path(True).read_text())
    assert stored["meta"]["machine"] and stored["meta"]["computed"]
    bad = {**stored, "records": {**stored["records"]}}
    loss = list(bad["records"]["final_train_loss"])
    loss[2] *= 1.01  # 1% off: beyond the 1e-3 tolerance
    loss[3] = float("nan")  # a lane the reference lost: its difference is not finite
    bad["records"]["final_train_loss"] = loss
    (tmp_path / "ref.json").write_text(json.dumps(bad))
    with pytest.raises(SystemExit) as stop:
        check.main(
            [
                "--cpu-smoke",
                "--no-throughput",
                "--reference",
                str(tmp_path / "ref.json"),
                "--out",
                str(tmp_path / "out.json"),
            ]
        )
    assert stop.value.code == 1
    text = (tmp_path / "out.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    out = json.loads(text)
    assert out["agreement"]["ok"] is False and out["agreement"]["max_rel_loss_diff"] is None
    assert out["agreement"]["rel_loss_diff"][2] == pytest.approx(1 - 1 / 1.01, rel=1e-3)
    assert out["agreement"]["rel_loss_diff"][3] is None
    # statuses or step counts that differ fail too, whatever the losses
    v = check.compare(stored["records"], stored["records"])
    assert v["ok"] and v["max_rel_loss_diff"] == 0.0
    steps = {**stored["records"], "steps": [s + 10 for s in stored["records"]["steps"]]}
    assert not check.compare(steps, stored["records"])["ok"]


def test_gpu_experiment_config_and_budget():
    """The GPU experiment: its config, and its worst-case budget arithmetic (train, validation and test
    sets evaluated at every check)."""
    script = _load("experiments/deep_gpu_edim.py")
    cfg = script.get_config()
    assert (
        cfg.data.n_train,
        cfg.data.n_test,
        cfg.data.edim_dim,
        cfg.data.edim_size,
        cfg.data.edim_channels,
        cfg.data.edim_classes,
    ) == (4096, 2048, 16, 32, 3, 10)
    assert cfg.model.arch == "resnet" and cfg.model.resolved_depth == 18 and cfg.train.batch_size == 128
    assert cfg.train.check_every == 2 * 4096 // 128 and cfg.train.budget(2.0**-8) == 60 * 4096 // 128
    assert cfg.sweep.multipliers == tuple(2.0**k for k in (-8, -6, -4, -2, 0, 2)) and cfg.sweep.lrs == (0.03, 0.1)
    assert cfg.sweep.n_seeds == 2 and cfg.sweep.max_lanes == 1
    b = script.budget(cfg)
    assert b["runs"] == 24 and b["sgd_steps"] == 24 * 1920 and b["sgd_s"] == pytest.approx(24 * 1920 / 160)
    assert b["images_per_check"] == 4096 + 1024 + 2048
    assert b["checks"] == 24 * 30 and b["eval_s"] == pytest.approx(24 * 30 * 7168 / (3 * 160 * 128))
    assert b["total_s"] < 7 * 60  # the worst case at the H200's rate fits the session's first call


def test_gpu_experiment_partial_run_lands_its_files_without_netcdf(tmp_path, monkeypatch, capsys):
    """With netCDF4 and h5netcdf hidden (as on the GPU image) and a time limit that ends the sweep before
    its first run, the experiment still lands strict JSON and a tarball of its run directory in $OUT, and
    exits with status 3."""
    monkeypatch.setitem(sys.modules, "netCDF4", None)
    monkeypatch.setitem(sys.modules, "h5netcdf", None)
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    script = _load("experiments/deep_gpu_edim.py")
    rc = script.main(["--cpu-smoke", "--run-dir", str(tmp_path / "run"), "--quiet", "--time-limit", "0"])
    assert rc == 3 and "PARTIAL" in capsys.readouterr().out
    land = tmp_path / "out" / "deep_gpu_edim_smoke"
    assert sorted(p.name for p in land.iterdir()) == ["run.tar.gz", "summary.json"]
    summary = json.loads((land / "summary.json").read_text())
    assert summary["complete"] is False and summary["runs_done"] == 0 and summary["runs_total"] == 12
    assert summary["device"].startswith("cpu")


@pytest.mark.slow  # compiles a tiny CNN (check) and a width-4 ResNet-18 (experiment): minutes on the loaded 2-core machine
def test_gpu_session_cpu_rehearsal_lands_its_files(tmp_path):
    """`bash benchmarks/gpu/gpu_session.sh smoke` (the GPU session's entry point at tiny sizes) with netCDF4 and
    h5netcdf hidden from every Python it starts: the agreement check against the stored CPU reference
    passes, the experiment finishes without a netCDF library, and $OUT holds the few files a reader needs,
    strict JSON, and a tarball of the run directory that `gflow.load_run` reads back."""
    import subprocess
    import tarfile

    wrapper = tmp_path / "python_no_netcdf"
    wrapper.write_text(f"""#!/bin/sh
exec {sys.executable} -c '
import runpy, sys
sys.modules["netCDF4"] = None
sys.modules["h5netcdf"] = None
if sys.argv[1] == "-c":
    exec(sys.argv[2])
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
' "$@"
""")
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PY": str(wrapper), "RUN_DIR": str(tmp_path / "run")}
    proc = subprocess.run(
        ["bash", "benchmarks/gpu/gpu_session.sh", "smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    land = "deep_gpu_edim_smoke"
    assert files == sorted(
        ["session.log", "device.txt", "gpu_deep_check.json"]
        + [f"{land}/{n}" for n in ("summary.json", "heatmap.png", "best_vs_c.png", "curves.png", "run.tar.gz")]
    )
    for name in ("gpu_deep_check.json", f"{land}/summary.json"):
        text = (out / name).read_text()
        assert "NaN" not in text and "Infinity" not in text, name
    summary = json.loads((out / land / "summary.json").read_text())
    assert summary["complete"] and summary["selection"] == "validation" and len(summary["best_test_acc"]) == 3
    assert json.loads((out / "gpu_deep_check.json").read_text())["agreement"]["ok"]
    with tarfile.open(out / land / "run.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    run = tmp_path / "unpacked" / "run"
    assert (run / "arrays.npz").is_file() and not (run / "results.nc").exists()  # no netCDF library: npz
    ds = load_run(run)
    assert ds["status"].shape == (3, 2, 2) and "curve_val_acc" in ds
    log = (out / "session.log").read_text()
    assert "netCDF4 missing" in log and "agreement device vs stored CPU reference: OK" in log


def test_finished_runs_of_a_partial_run_directory(tmp_path):
    """The per-run records a partial landing reports come from the verified chunk files, each with its
    (c, η, seed): here those of a finished tiny sweep, against its assembled arrays."""
    from gflow.deep.config import load_preset
    from gflow.deep.sweep import run_deep_sweep

    script = _load("experiments/deep_gpu_edim.py")
    cfg = load_preset("digits-mlp", quick=True).with_overrides(
        ["sweep.multipliers=[0.5, 2]", "sweep.n_seeds=1", "sweep.max_lanes=3"]
    )
    res = run_deep_sweep(cfg, out=tmp_path / "run", progress=False)
    rows = script.finished_runs(cfg, tmp_path / "run")
    assert len(rows) == res.arrays["status"].size
    for row in rows:
        i, j = cfg.sweep.multipliers.index(row["multiplier"]), cfg.sweep.lrs.index(row["lr"])
        assert row["status"] == str(gflow.runs.status.names_of(res.arrays["status"][i, j, row["seed"]]))
        for name in ("steps", "test_acc_at_peak", "peak_val_acc"):
            assert row[name] == pytest.approx(float(res.arrays[name][i, j, row["seed"]]), nan_ok=True), name
