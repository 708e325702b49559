"""The --quick preset of every deep experiment script runs end to end in-process, its summaries checked
against the stored arrays; the CPU mode of the GPU check is a smoke run."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best_over_lr(arrays):
    """Per c, the best over η of the seed-mean peak test accuracy among (c, η) cells where every seed
    reached the target (NaN if none), written out with loops."""
    ok = arrays["status"] == 0  # reached_target
    best = []
    for i in range(ok.shape[0]):
        cells = [arrays["peak_test_acc"][i, j].mean() for j in range(ok.shape[1]) if ok[i, j].all()]
        best.append(max(cells) if cells else np.nan)
    return np.asarray(best)


@pytest.mark.parametrize("preset", ["digits-mlp", "mnist1d-cnn", "edim-cnn"])
def test_deep_fls_sweep_quick(preset, tmp_path, capsys):
    """The --quick preset runs end to end; the saved arrays are the returned ones, every record obeys
    the stop rule's bookkeeping, and the summary's best accuracy per c is recomputed from the arrays."""
    script = _load("experiments/deep_fls_sweep.py")
    res, summary = script.main(["--preset", preset, "--quick", "--out", str(tmp_path), "--quiet"])
    arr = res.arrays
    assert arr["status"].shape == (3, 2, 1)
    for name in ("heatmap.png", "best_vs_c.png"):
        assert (tmp_path / name).stat().st_size > 5_000, name
    with np.load(tmp_path / "arrays.npz") as z:
        for name in ("status", "peak_test_acc", "steps", "peak_step"):
            np.testing.assert_array_equal(z[name], arr[name], err_msg=name)
    cfg = script.get_config(preset, quick=True)
    ok = arr["status"] == 0
    if preset == "digits-mlp":  # the CNN quick presets reach no target in 60 steps: smoke runs there
        assert ok.any(), "the quick preset must train some runs to the target"
    assert np.all(arr["final_train_acc"][ok] >= cfg.train.target_acc)
    seen = np.isfinite(arr["peak_test_acc"]) & np.isfinite(arr["final_test_acc"])  # not nonfinite
    acc = arr["peak_test_acc"][seen]
    assert np.all((0 <= acc) & (acc <= 1))
    assert np.all(acc >= arr["final_test_acc"][seen])  # the peak is over the checks, the last one included
    assert np.all(arr["peak_step"][seen] % cfg.train.check_every == 0) and np.all(arr["peak_step"][seen] <= arr["steps"][seen])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["multiplier"] == [0.1, 1.0, 10.0]
    best = _best_over_lr(arr)
    np.testing.assert_allclose([np.nan if v is None else v for v in saved["best_acc"]], best, rtol=1e-12)
    if np.isfinite(best).any() and not saved["interior"]:
        assert saved["c_star"] == saved["multiplier"][int(np.nanargmax(best))]
    assert f"c* = {saved['c_star']:.3g}" in capsys.readouterr().out


def test_gpu_presets_are_valid_configs():
    script = _load("experiments/deep_fls_sweep.py")
    cifar = script.get_config("cifar10-resnet18", data_path="/data/cifar-10-batches-py")
    assert cifar.model.arch == "resnet" and cifar.model.resolved_depth == 18 and cifar.model.resolved_norm == "group"
    assert cifar.data.path == "/data/cifar-10-batches-py" and cifar.train.batch_size == 128
    assert cifar.sweep.max_lanes == 1  # vmapped ResNet-18 replicas were slower than one on an H200
    edim = script.get_config("edim-resnet18", quick=True)
    assert edim.model.width == 4 and edim.data.name == "edim"


def test_deep_scaling_law_quick(tmp_path):
    """The --quick scaling study runs; per sweep, c* is at the best c of the stored arrays (or refined
    next to it when interior) and the exponent is the least-squares slope over the interior points."""
    script = _load("experiments/deep_scaling_law.py")
    fits = script.main(["--quick", "--out", str(tmp_path), "--quiet", "--n-boot", "20"])
    assert set(fits) == {"width", "n"} and fits["width"]["x"] == [2.0, 4.0]
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert saved["fits"]["n"]["predicted_exponent"] == -2.0
    assert (tmp_path / "scaling.png").stat().st_size > 5_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["width2_n128", "width4_n128", "width4_n64"]
    dirs = {"width": ["width2_n128", "width4_n128"], "n": ["width4_n64", "width4_n128"]}
    for axis, names in dirs.items():
        f = saved["fits"][axis]
        for name, c_star, interior in zip(names, f["c_star"], f["interior"]):
            with np.load(tmp_path / name / "arrays.npz") as z:
                arrays = {k: z[k] for k in z.files}
            best = _best_over_lr(arrays)
            c = arrays["multiplier"]
            i = int(np.nanargmax(best))
            if interior:
                assert c[i - 1] <= c_star <= c[i + 1]
            else:
                assert c_star == c[i]
        use = [k for k, interior in enumerate(f["interior"]) if interior]
        if len(use) >= 2:
            slope = np.polyfit(np.log([f["x"][k] for k in use]), np.log([f["c_star"][k] for k in use]), 1)[0]
            np.testing.assert_allclose(f["exponent"], slope, rtol=1e-9)
        else:
            assert f["exponent"] is None or np.isnan(f["exponent"])


def test_gpu_deep_check_cpu_smoke():
    result = _load("benchmarks/gpu_deep_check.py").main(["--cpu-smoke"])
    assert result["agreement"]["ok"] and result["throughput"][0]["steps_per_s"] > 0
    assert np.isfinite(result["throughput"][0]["images_per_s"])
