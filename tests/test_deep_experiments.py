"""Smoke tests: the --quick preset of every deep experiment script and the CPU mode of the GPU check run
end to end in-process and write their figures and summaries."""

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


@pytest.mark.parametrize("preset", ["digits-mlp", "mnist1d-cnn", "edim-cnn"])
def test_deep_fls_sweep_quick(preset, tmp_path, capsys):
    script = _load("experiments/deep_fls_sweep.py")
    res, summary = script.main(["--preset", preset, "--quick", "--out", str(tmp_path), "--quiet"])
    assert res.arrays["status"].shape == (3, 2, 1)
    for name in ("heatmap.png", "best_vs_c.png", "summary.json", "manifest.json", "arrays.npz"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["multiplier"] == [0.1, 1.0, 10.0] and len(saved["best_acc"]) == 3
    assert "c* =" in capsys.readouterr().out


def test_gpu_presets_are_valid_configs():
    script = _load("experiments/deep_fls_sweep.py")
    cifar = script.get_config("cifar10-resnet18", data_path="/data/cifar-10-batches-py")
    assert cifar.model.arch == "resnet" and cifar.model.resolved_depth == 18 and cifar.model.resolved_norm == "group"
    assert cifar.data.path == "/data/cifar-10-batches-py" and cifar.train.batch_size == 128
    assert cifar.sweep.max_lanes == 1  # vmapped ResNet-18 replicas were slower than one on an H200
    edim = script.get_config("edim-resnet18", quick=True)
    assert edim.model.width == 4 and edim.data.name == "edim"


def test_deep_scaling_law_quick(tmp_path):
    script = _load("experiments/deep_scaling_law.py")
    fits = script.main(["--quick", "--out", str(tmp_path), "--quiet", "--n-boot", "20"])
    assert set(fits) == {"width", "n"} and fits["width"]["x"] == [2.0, 4.0]
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert saved["fits"]["n"]["predicted_exponent"] == -2.0
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["width2_n128", "width4_n128", "width4_n64"]


def test_gpu_deep_check_cpu_smoke():
    result = _load("benchmarks/gpu_deep_check.py").main(["--cpu-smoke"])
    assert result["agreement"]["ok"] and result["throughput"][0]["steps_per_s"] > 0
    assert np.isfinite(result["throughput"][0]["images_per_s"])
