"""The deep presets shipped as TOML (gflow/deep/presets) build the very configs the Python presets they
replaced built: presets_before_toml.json holds those configs, captured from the old get_config functions of
the experiment and benchmark scripts at commit bc422d0, before they were deleted."""

import importlib.util
import json
import tomllib
from pathlib import Path

import pytest

from gflow.config import ConfigError
from gflow.deep.config import DeepConfig, load_preset, preset_descriptions, preset_names

ROOT = Path(__file__).resolve().parents[2]
BEFORE = json.loads((Path(__file__).parent / "presets_before_toml.json").read_text())["configs"]
# Deliberate changes since the capture, applied to the captured configs they concern: the GPU experiment's
# budget went from 80 to 60 epochs (1920 steps) so that its worst case, with the validation set evaluated at
# every check, fits one device session (experiments/deep_gpu_edim.py). The --quick forms set their own steps.
CHANGED = {
    ("deep_fls_sweep:edim-resnet18", "deep_fls_sweep:edim-resnet18:full_grid", "deep_gpu_edim"): {
        "train": {"max_steps": 1920}
    },
    # CIFAR: 5000 of the 50 000 training images are held out for validation, so an epoch is 352 steps
    # (45 000 / 128, rounded up): a check every 2 epochs and a 200-epoch budget in those steps
    tuple(
        f"deep_fls_sweep:{p}{v}"
        for p in ("cifar10-resnet18", "cifar100-resnet50", "cifar100-vgg19")
        for v in ("", ":full_grid", ":data_path")
        if not (v == ":data_path" and p != "cifar10-resnet18")
    ): {"train": {"check_every": 704, "max_steps": 70400}},
}
for keys, change in CHANGED.items():
    for key in keys:
        for section, values in change.items():
            BEFORE[key][section].update(values)
FLS_PRESETS = (
    "digits-mlp",
    "mnist1d-mlp",
    "mnist1d-cnn",
    "digits-cnn",
    "edim-cnn",
    "edim-resnet18",
    "cifar10-resnet18",
    "cifar100-resnet50",
    "cifar100-vgg19",
)


def _load(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCHEMA = {name: set(fields) for name, fields in BEFORE["deep_fls_sweep:digits-mlp"].items()}  # fields at capture
DEFAULTS = json.loads(json.dumps(DeepConfig().to_dict()))


def _plain(cfg) -> dict:
    """A config (or its sections) as the captured JSON holds it: lists for tuples, and without fields added
    to the config since the capture, which must hold their defaults."""
    out = json.loads(json.dumps(cfg.to_dict() if isinstance(cfg, DeepConfig) else cfg))
    for name, values in out.items():
        for key in set(values) - SCHEMA[name] if name in SCHEMA else ():
            assert values.pop(key) == DEFAULTS[name][key], f"{name}.{key}: a field added since the capture"
    return out


def _sections(data, model, train) -> dict:
    return _plain({"data": data.__dict__, "model": model.__dict__, "train": train.__dict__})


def test_the_shipped_presets():
    assert set(FLS_PRESETS) | {"scaling-law-cpu", "scaling-law-gpu"} == set(preset_names())
    for name, text in preset_descriptions().items():
        assert 20 < len(text) < 160 and "\n" not in text, name


@pytest.mark.parametrize("preset", FLS_PRESETS)
def test_deep_fls_sweep_presets_equal_the_python_ones(preset):
    """Each preset, its --quick and its --full-grid form, through the script and through load_preset."""
    script = _load("experiments/deep_fls_sweep.py")
    assert _plain(load_preset(preset)) == _plain(script.get_config(preset)) == BEFORE[f"deep_fls_sweep:{preset}"]
    assert _plain(load_preset(preset, quick=True)) == BEFORE[f"deep_fls_sweep:{preset}:quick"]
    assert _plain(script.get_config(preset, quick=True)) == BEFORE[f"deep_fls_sweep:{preset}:quick"]
    assert _plain(script.get_config(preset, full_grid=True)) == BEFORE[f"deep_fls_sweep:{preset}:full_grid"]
    # the old script ignored --full-grid under --quick; the quick table overrides every key full_grid sets
    assert load_preset(preset, quick=True, full_grid=True) == load_preset(preset, quick=True)


def test_data_path_and_the_other_scripts():
    fls = _load("experiments/deep_fls_sweep.py")
    assert (
        _plain(fls.get_config("cifar10-resnet18", data_path="/data/c10"))
        == BEFORE["deep_fls_sweep:cifar10-resnet18:data_path"]
    )
    assert fls.get_config("digits-mlp", data_path="/data/c10") == load_preset("digits-mlp")  # ignored, as before
    edim = _load("experiments/deep_gpu_edim.py")
    assert _plain(edim.get_config()) == BEFORE["deep_gpu_edim"]
    assert _plain(edim.get_config(cpu_smoke=True)) == BEFORE["deep_gpu_edim:cpu_smoke"]
    law = _load("experiments/deep_scaling_law.py")
    for preset in ("cpu", "gpu"):
        for quick in (False, True):
            key = f"deep_scaling_law:{preset}{':quick' if quick else ''}"
            plan = law.get_config(preset, quick=quick)
            assert _plain(plan.pop("base")) == BEFORE[key]
            assert _plain(plan) == BEFORE[f"{key}:plan"]
    steps = _load("experiments/deep_steps_vs_c.py")
    for name in ("digits-mlp", "mnist1d-cnn"):
        assert _plain(steps.get_config(name)) == BEFORE[f"deep_steps_vs_c:{name}"]


def test_gpu_deep_check_configs():
    check = _load("benchmarks/gpu/gpu_deep_check.py")
    for small in (False, True):
        s = ":small" if small else ""
        assert _sections(*check.agreement_configs(small)) == BEFORE[f"gpu_deep_check:agreement{s}"]
        assert _sections(*check.mlp_configs(small)) == BEFORE[f"gpu_deep_check:mlp{s}"]
    assert _sections(*check.throughput_configs(True)) == BEFORE["gpu_deep_check:throughput:small"]
    # the throughput net is now the edim-resnet18 preset's, which spells out the norm ResNets default to
    data, model, train = check.throughput_configs(False)
    want = BEFORE["gpu_deep_check:throughput"]
    assert want["model"]["norm"] == "" and model.norm == "group" == model.resolved_norm
    assert _sections(data, model, train) == {**want, "model": {**want["model"], "norm": "group"}}


@pytest.mark.parametrize("preset", sorted(preset_names()))
def test_presets_round_trip_through_toml(preset):
    for quick in (False, True):
        cfg = load_preset(preset, quick=quick)
        assert DeepConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_load_preset_by_path_and_errors(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "mine"\n[train]\nmax_steps = 30\n[quick.sweep]\nn_seeds = 1\n')
    assert load_preset(path) == DeepConfig().replace(train={"max_steps": 30})
    assert load_preset(str(path), quick=True).sweep.n_seeds == 1
    with pytest.raises(ConfigError, match=r"mine.toml: has no \[full_grid\] table"):
        load_preset(path, full_grid=True)
    with pytest.raises(ConfigError, match=r"^digits-mpl: unknown preset; choose one of cifar10-resnet18, "):
        load_preset("digits-mpl")
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read config"):
        load_preset(tmp_path / "missing.toml")
