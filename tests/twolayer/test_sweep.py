import json

import jax
import numpy as np
import pytest

import gflow
from gflow.runs.compile_log import track_compiles
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig, SweepConfig

SMALL = Config(
    data=DataConfig(n=20, d=30, n_test=200),
    model=ModelConfig(width=20),
    flow=FlowConfig(dtype="float64", n_save=12),
    sweep=SweepConfig(init_scales=(1e-3, 1e-1, 2.0), n_seeds=2),
)


@pytest.fixture(scope="module")
def small_sweep():
    return gflow.run_sweep(SMALL, progress=False)


def test_sweep_elements_equal_single_runs(small_sweep):
    arr = small_sweep.arrays
    assert arr["status"].shape == (3, 2)
    assert arr["traj_loss"].shape == (3, 2, 12)
    assert small_sweep.dims["traj_loss"] == ["scale", "seed", "time"]
    for i, alpha in enumerate(SMALL.sweep.init_scales):
        for j in range(2):
            r = gflow.simulate(init_scale=alpha, seed=j, config=SMALL)
            assert arr["status"][i, j] == int(r.status)
            np.testing.assert_allclose(arr["t_stop"][i, j], float(r.t_stop), rtol=1e-9)
            assert arr["n_steps"][i, j] == int(r.n_steps)
            for name in ("loss", "test_err", "Psi", "lin_err"):
                np.testing.assert_allclose(arr[f"final_{name}"][i, j], float(r.final[name]), rtol=1e-9, err_msg=name)
                np.testing.assert_allclose(arr[f"traj_{name}"][i, j], np.asarray(r.traj[name]), rtol=1e-9, err_msg=name)


def test_seeds_differ(small_sweep):
    arr = small_sweep.arrays
    assert arr["t_stop"][0, 0] != arr["t_stop"][0, 1]
    assert not np.allclose(arr["traj_Psi"][0, 0], arr["traj_Psi"][0, 1], equal_nan=True)


def test_new_scales_compile_nothing(small_sweep):
    other = Config(**{**SMALL.__dict__, "sweep": SweepConfig(init_scales=(3e-3, 0.3, 5.0), n_seeds=2)})
    with track_compiles() as log:
        res = gflow.run_sweep(other, progress=False)
    assert log.count == 0
    assert res.meta["n_compiles"] == 0
    assert np.all(res.arrays["init_scale"] == np.asarray((3e-3, 0.3, 5.0)))


def test_run_directory_round_trip(small_sweep, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    out = gflow.save_run(tmp_path / "run", SMALL.to_dict(), small_sweep)
    ds = gflow.load_run(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert ds.attrs["config"]["flow"]["dtype"] == "float64" == manifest["config"]["flow"]["dtype"]
    assert ds.attrs["dtype"] == "float64"
    for key in ("versions", "git_commit", "backend", "device", "wall_s", "compile_s", "status_counts", "statuses"):
        assert key in ds.attrs and key in manifest
    assert ds.attrs["versions"]["jax"] == jax.__version__
    assert sum(ds.attrs["status_counts"].values()) == 6
    for name, dims in manifest["dims"].items():  # the named axes label the Dataset (scale is called init_scale)
        assert list(ds[name].dims) == [{"scale": "init_scale"}.get(d, d) for d in dims], name
        np.testing.assert_array_equal(ds[name].values, small_sweep.arrays[name], err_msg=name)
    assert ds.status.attrs["flag_meanings"].split() == list(gflow.STATUSES)
    np.testing.assert_array_equal(ds.init_scale, SMALL.sweep.init_scales)
    line = ds.final_test_err.mean("seed").plot(x="init_scale", xscale="log")[0]  # what a user writes
    np.testing.assert_allclose(line.get_ydata(), small_sweep.arrays["final_test_err"].mean(axis=1))
    assert line.axes.get_xscale() == "log" and line.axes.get_xlabel().startswith("init_scale")
    matplotlib.pyplot.close("all")
    assert not list(out.glob(".*.tmp")), "temporary files must be renamed away"
    mem = small_sweep.to_dataset()  # the same labels without a run directory
    assert mem.t_stop.dims == ds.t_stop.dims and np.array_equal(mem.t_stop, ds.t_stop)


def test_load_run_rejects_other_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a gflow run directory"):
        gflow.load_run(tmp_path)


def test_progress_rate_and_eta_count_only_runs_done_now(monkeypatch):
    """A resumed sweep starts its bar at the runs already done, but its rate and ETA come from this
    session's runs alone (else the rate is absurd right after resuming)."""
    import io

    from gflow.runs import progress

    clock = iter([0.0, 10.0, 10.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = progress.Progress(100, "sweep", stream=stream, already_done=60)
    bar.update(20)  # 20 runs in 10 s: 2 runs/s, 20 left → ETA 10 s
    line = stream.getvalue()
    assert "80/100 runs" in line and "2.00 runs/s" in line and "ETA 10s" in line
