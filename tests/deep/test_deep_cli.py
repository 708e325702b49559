"""`gflow deep sweep | plot | presets | config`: a tiny sweep end to end, and bad input as one line with exit 2."""

import json
import subprocess
import sys
import tomllib

import matplotlib.pyplot as plt
import numpy as np
import pytest
from reference import DEEP_TINY

from gflow import cli
from gflow.deep.config import DeepConfig, load_preset, preset_descriptions, preset_timings

FIGURES = ("heatmap.png", "heatmap_step_size.png", "best_vs_c.png")
TINY = DEEP_TINY  # one compile for all tests


def assert_figures_show_the_run(out, ds):
    """The three figures are PNGs, and what they show is the run's numbers, recomputed here from its arrays:
    the heatmap's cells are the seed-mean test accuracy (%) at the validation peak of the cells where every seed
    reached the target; best-vs-c plots, per c, that accuracy at the η with the best seed-mean validation
    accuracy, and marks c* at the c where that validation accuracy is highest (2 c values: a grid end)."""
    from gflow.deep.plot import C_LABEL, LR_LABEL, best_vs_c_figure, heatmap_figure
    from gflow.runs.status import CODE
    from gflow.runs.store import arrays_of

    for name in FIGURES:
        assert plt.imread(out / name).ndim == 3, name
    a = arrays_of(ds)
    valid = (a["status"] == CODE["reached_target"]).all(axis=-1)
    assert valid.any()  # the tiny sweep trains: the figures have numbers to show
    test = np.where(valid, a["test_acc_at_peak"].astype(float).mean(axis=-1), np.nan)
    val = np.where(valid, a["peak_val_acc"].astype(float).mean(axis=-1), np.nan)
    fig = heatmap_figure(ds)
    ax = fig.axes[0]
    cells = np.ma.filled(np.ma.asarray(ax.collections[0].get_array(), float), np.nan)
    np.testing.assert_allclose(cells.ravel(), 100 * test.T.ravel(), rtol=1e-12, equal_nan=True)
    assert (ax.get_xlabel(), ax.get_ylabel()) == (C_LABEL, LR_LABEL)
    plt.close(fig)
    fig = best_vs_c_figure(ds)
    ax = fig.axes[0]
    has = valid.any(axis=1)
    line = ax.containers[0].lines[0]
    best = [test[i, np.nanargmax(val[i])] for i in np.flatnonzero(has)]
    np.testing.assert_allclose(line.get_xdata(), a["multiplier"][has])
    np.testing.assert_allclose(line.get_ydata(), 100 * np.asarray(best), rtol=1e-12)
    marks = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_label().startswith("c* = ")]
    assert marks == (
        [a["multiplier"][np.nanargmax(np.where(has, np.nanmax(np.where(valid, val, -np.inf), axis=1), -np.inf))]]
        if has.any()
        else []
    )
    assert ax.get_xlabel() == C_LABEL
    plt.close(fig)


def test_deep_sweep_then_plot(tmp_path, capsys):
    from gflow.deep.analysis import summary_table, u_shape_summary
    from gflow.runs.store import arrays_of, load_run

    out = tmp_path / "run"
    assert cli.main(["deep", "sweep", *TINY, "--out", str(out), "--quiet"]) == 0
    ds = load_run(out)
    manifest, arrays = ds.attrs, arrays_of(ds)
    want = load_preset("digits-mlp", quick=True).replace(
        sweep={"multipliers": (0.5, 2.0), "n_seeds": 1, "max_lanes": 1}
    )
    assert manifest["config"] == json.loads(json.dumps(want.to_dict()))  # the preset, its quick table, then --set
    assert arrays["status"].shape == (2, 2, 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == u_shape_summary(arrays) and summary["multiplier"] == [0.5, 2.0]
    text = capsys.readouterr().out
    assert summary_table(summary) in text and "status counts" in text
    assert_figures_show_the_run(out, ds)
    for name in FIGURES:
        (out / name).unlink()
    assert cli.main(["deep", "plot", str(out)]) == 0  # the same figures again, from the run directory alone
    assert capsys.readouterr().out.split() == [str(out / name) for name in FIGURES]
    assert_figures_show_the_run(out, ds)
    # learning curves of one cell: train/validation/test at every check, the same numbers as the run directory
    from gflow.deep.plot import curves_figure

    lr = float(arrays["lr"][1])
    assert cli.main(["deep", "plot", str(out), "--curves", f"2,{lr}"]) == 0
    png = out / f"curves_c2_lr{lr:g}.png"
    assert capsys.readouterr().out.split()[-1] == str(png) and plt.imread(png).ndim == 3
    fig = curves_figure(ds, 2.0, lr)
    lines = {ln.get_label(): ln for ln in fig.axes[1].get_lines() if not ln.get_label().startswith("_")}
    assert set(lines) == {"train, seed 0", "validation, seed 0", "test, seed 0"}
    np.testing.assert_allclose(lines["validation, seed 0"].get_ydata(), 100 * arrays["curve_val_acc"][1, 1, 0])
    np.testing.assert_allclose(lines["test, seed 0"].get_xdata(), arrays["step"])
    assert cli.main(["deep", "plot", str(out), "--curves", "3,0.1"]) == 2
    assert capsys.readouterr().err.startswith("gflow: error: --curves: no cell c = 3, η = 0.1 in this run")
    assert cli.main(["deep", "plot", str(out), "--curves", "x"]) == 2
    assert "--curves: expected C,ETA" in capsys.readouterr().err


def test_presets_lists_each_with_its_description(capsys):
    assert cli.main(["deep", "presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    descriptions = preset_descriptions()
    named = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[0] for line in named[:-1]] == list(descriptions)
    assert all(line.split(None, 1)[1] == descriptions[line.split()[0]] for line in named[:-1])
    # each preset's worst-case time, from the stored measurement (a step rate, not a full run), and where from
    timings = preset_timings()
    times = [line.strip() for line in lines if line.startswith(" ")]
    assert len(times) == len(descriptions) and all(t.startswith("time: ") for t in times)
    for name, t in zip(descriptions, times):
        row = timings.get(name, {})
        if "cpu_estimate_s" in row:
            assert "on the CPU (estimate:" in t and f"{row['lane_steps_per_s']:g} SGD steps/s" in t
            # the estimate is the worst-case steps at the measured rate, plus the first (compiling) round
            assert row["cpu_estimate_s"] == pytest.approx(
                row["worst_case_lane_steps"] / row["lane_steps_per_s"] + row["first_round_s"], rel=1e-3
            )  # rate stored to 0.01
        elif row.get("gpu_estimate_s") is not None:
            assert "on one H200 (estimate:" in t
        else:
            assert "not estimated" in t or t == "time: not measured"
    assert named[-1].startswith(f"Estimates from step rates measured on {timings['measured']}")


def test_config_prints_the_effective_toml(tmp_path, capsys):
    assert cli.main(["deep", "config", "--preset", "edim-cnn", "--quick", "--set", "train.max_steps=40"]) == 0
    printed = DeepConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert printed == load_preset("edim-cnn", quick=True).replace(train={"max_steps": 40})
    mine = tmp_path / "mine.toml"  # a user's file, with its own quick table
    mine.write_text("[model]\nwidth = 16\n[quick.train]\nmax_steps = 20\n")
    assert cli.main(["deep", "config", str(mine), "--quick"]) == 0
    printed = DeepConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert printed == DeepConfig().replace(model={"width": 16}, train={"max_steps": 20})
    assert cli.main(["deep", "config", "--full-grid"]) == 0  # default: the digits-mlp preset
    assert DeepConfig.from_dict(tomllib.loads(capsys.readouterr().out)) == load_preset("digits-mlp", full_grid=True)


def _files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nmax_steps = ")
    plain = tmp_path / "plain.toml"
    plain.write_text("[train]\nmax_steps = 20\n")
    other = tmp_path / "other_run"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"config": {}}))  # e.g. a two-layer sweep's
    return {"BAD": str(bad), "PLAIN": str(plain), "OTHER": str(other)}


@pytest.mark.parametrize(
    "args, match",
    [
        (["sweep", "--preset", "digits-mpl"], "digits-mpl: unknown preset; choose one of cifar10-resnet18"),
        (["sweep", "--set", "train.target_acc=1.5"], "train.target_acc: must be a finite number in (0, 1], got 1.5"),
        (["sweep", "--set", "train.bogus=1"], "train.bogus: unknown config key"),
        (["sweep", "--set", "trian.max_steps=1"], "trian: unknown config section; known: data, model, train, sweep"),
        (["sweep", "--set", "max_steps=1"], "expected section.key=value, e.g. train.max_steps=500"),
        (["sweep", "--set", "sweep.lrs=[0.1, 0.1]"], "sweep.lrs: values must be distinct"),
        (["sweep", "--set", "train.max_steps=15"], "train.max_steps: must be a multiple of train.check_every = 10"),
        (["sweep", "--set", "data.name=cifar10"], "data.path: cifar10 is read from a local directory"),
        (["sweep", "BAD"], "malformed TOML"),
        (["sweep", "PLAIN", "--preset", "edim-cnn"], "give a config file or --preset edim-cnn, not both"),
        (["sweep", "PLAIN", "--quick"], "plain.toml: has no [quick] table"),
        (["sweep", "--time-limit", "-1"], "--time-limit: must be a finite number > 0"),
        (
            ["sweep", "--preset", "cifar10-resnet18", "--set", "data.path=/nonexistent/c10"],
            "data.path: /nonexistent/c10 does not exist",
        ),
        (["config", "--set", "model.arch=transformer"], "model.arch: must be one of mlp, cnn, vgg, resnet"),
        (["plot", "/nonexistent/dir"], "not a gflow run directory"),
        (["plot", "OTHER"], "not a deep sweep's run directory"),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(args, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = _files(tmp_path)
    out = tmp_path / "out"
    extra = ["--out", str(out)] if args[0] == "sweep" else []
    assert cli.main(["deep", *[files.get(a, a) for a in args], *extra]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gflow: error: ") and match in err[0], err
    assert captured.out == ""
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_config_errors_answer_before_jax_is_imported():
    code = (
        "import sys; from gflow import cli; rc = cli.main(['deep', 'sweep', '--set', 'sweep.n_seeds=0']); "
        "cli.main(['deep', 'presets']); print(rc, 'jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "2 False"


def test_time_limit_stops_with_status_3_and_a_rerun_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["deep", "sweep", *TINY, "--out", str(out), "--quiet", "--no-plot"]
    assert cli.main([*args, "--time-limit", "1e-9"]) == 3  # no chunk starts
    assert "time limit: 0 of 4 chunks done" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert not any((out / name).exists() for name in FIGURES)  # --no-plot
    summary = json.loads((out / "summary.json").read_text())
    assert summary["multiplier"] == [0.5, 2.0] and sum(sum(s.values()) for s in summary["statuses"]) == 4


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_float64_config_switches_jax_to_64_bit(tmp_path):
    """train.dtype = float64 turns on JAX's 64-bit mode (the sweep refuses float64 without it); run in a fresh
    process, since the tests' conftest turns it on anyway. The time limit stops it before any training."""
    code = (
        "import sys, jax; from gflow import cli; "
        f"rc = cli.main(['deep', 'sweep', *{TINY!r}, '--set', 'train.dtype=\"float64\"', '--out', {str(tmp_path / 'r')!r}, "
        "'--quiet', '--time-limit', '1e-9']); print(rc, jax.config.jax_enable_x64)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "3 True"


def test_help_lists_every_deep_config_field():
    out = subprocess.run(
        [sys.executable, "-m", "gflow.cli", "deep", "sweep", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name, section in DeepConfig.sections().items():
        for key in section.__dataclass_fields__:
            assert f"{name}.{key} (default" in out, f"{name}.{key}"
    assert "--preset" in out and "--quick" in out and "--full-grid" in out and "3: stopped at --time-limit" in out


def test_deep_sweep_without_netcdf_writes_arrays_npz(tmp_path, capsys, monkeypatch):
    """Without the netCDF4 package (the GPU image has xarray, scipy and h5py but no netCDF library) the sweep
    assembles into the checksummed arrays.npz, and `gflow.load_run` and `gflow deep plot` read it as they
    read results.nc (this sweep ended in a ModuleNotFoundError after training before)."""
    from gflow.runs.store import load_run

    monkeypatch.setitem(sys.modules, "netCDF4", None)
    monkeypatch.setitem(sys.modules, "h5netcdf", None)
    out = tmp_path / "run"
    assert cli.main(["deep", "sweep", *TINY, "--out", str(out), "--quiet", "--no-plot"]) == 0
    assert (out / "arrays.npz").is_file() and not (out / "results.nc").exists()
    ds = load_run(out)
    assert ds["status"].dims == ("multiplier", "lr", "seed") and ds.attrs["selection"] == "validation"
    assert cli.main(["deep", "plot", str(out)]) == 0
    assert_figures_show_the_run(out, ds)


@pytest.mark.parametrize(
    "preset, hidden", [("digits-mlp", ("sklearn", "sklearn.datasets")), ("mnist1d-mlp", ("mnist1d", "mnist1d.data"))]
)
def test_a_missing_data_extra_is_one_line_naming_the_install(preset, hidden, tmp_path, capsys, monkeypatch):
    """Without the [data] extra (scikit-learn, mnist1d) the sweep stops with one line naming the install
    command, exit status 2, not a ModuleNotFoundError traceback."""
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)
    assert cli.main(["deep", "sweep", "--preset", preset, "--quick", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gflow: error: data.name: ")
    assert "pip install 'gflow[data]'" in err[0]
