"""Results as a labeled xarray.Dataset (`gflow.runs.store`): dims and coordinates from the named axes,
statuses with their names, the manifest in attrs, a checksummed netCDF file, older arrays.npz directories.
No engine: each test takes well under a second."""

import json

import matplotlib
import numpy as np
import pytest

from gflow.runs import status, store

matplotlib.use("Agg")


def sweep_like(n_scale=3, n_seed=2):
    """Arrays and dims shaped as a two-layer sweep over a string-valued grid axis."""
    rng = np.random.default_rng(0)
    shape = (2, n_scale, n_seed)
    arrays = {
        "status": np.asarray(rng.integers(0, 7, shape), np.int32),
        "final_test_err": np.asarray(rng.random(shape), np.float32),
        "traj_loss": np.where(rng.random(shape + (4,)) < 0.2, np.nan, 1.0).astype(np.float32),
        "init_scale": np.geomspace(1e-3, 1.0, n_scale),
        "seed": np.arange(n_seed),
        "time": np.linspace(0, 1, 4),
        "data.mode": np.asarray(["gmm", "separable"]),
        "bayes_error": np.asarray([0.02, 0.0]),
        "data_draws": np.asarray(3),
        "flag": np.asarray([True, False]),
    }
    dims = {k: ["data.mode", "scale", "seed"] for k in ("status", "final_test_err")}
    dims |= {
        "traj_loss": ["data.mode", "scale", "seed", "time"],
        "init_scale": ["scale"],
        "seed": ["seed"],
        "time": ["time"],
        "data.mode": ["data.mode"],
        "bayes_error": ["data.mode"],
        "data_draws": [],
        "flag": ["data.mode"],
    }
    manifest = {
        "config": {"flow": {"target_loss": 0.01}},
        "complete": True,
        "git_commit": None,
        "wall_s": 1.5,
        "statuses": status.table("twolayer"),
        "dims": dims,
    }
    return arrays, dims, manifest


def test_labels_statuses_and_attrs():
    arrays, dims, manifest = sweep_like()
    ds = store.to_dataset(arrays, dims, manifest)
    assert ds.final_test_err.dims == ("data.mode", "init_scale", "seed")  # the scale axis is named by its coordinate
    assert set(ds.coords) == {"data.mode", "init_scale", "seed", "time"}
    assert ds.sel({"data.mode": "separable", "init_scale": 1.0}).status.shape == (2,)
    assert ds.status.attrs["flag_meanings"].split() == list(status.statuses("twolayer"))
    np.testing.assert_array_equal(ds.status.attrs["flag_values"], np.arange(7))
    assert ds.attrs["config"] == manifest["config"] and "dims" not in ds.attrs


def test_netcdf_round_trip_is_exact_and_checked(tmp_path):
    arrays, dims, manifest = sweep_like()
    ds = store.to_dataset(arrays, dims, manifest)
    store.write_dataset(tmp_path / "r.nc", ds)
    back = store.read_dataset(tmp_path / "r.nc")
    for name, v in arrays.items():
        got = back[name].values
        assert got.dtype == v.dtype or v.dtype.kind == "U", name
        np.testing.assert_array_equal(got.astype(v.dtype) if v.dtype.kind == "U" else got, v, err_msg=name)
    assert back.attrs == ds.attrs  # dicts, None and booleans survive as JSON
    assert list(back.final_test_err.dims) == list(ds.final_test_err.dims)
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "bad.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(store.CorruptFileError, match="unreadable"):
        store.read_dataset(tmp_path / "bad.nc")


def test_a_failing_write_keeps_the_old_file(tmp_path, monkeypatch):
    arrays, dims, manifest = sweep_like()
    ds = store.to_dataset(arrays, dims, manifest)
    store.write_dataset(tmp_path / "r.nc", ds)
    before = (tmp_path / "r.nc").read_bytes()

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        store.write_dataset(tmp_path / "r.nc", ds.assign(final_test_err=ds.final_test_err * 0))
    monkeypatch.undo()
    assert (tmp_path / "r.nc").read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_the_plot_a_user_writes():
    arrays, dims, manifest = sweep_like()
    ds = store.to_dataset(arrays, dims, manifest).sel({"data.mode": "gmm"})
    line = ds.final_test_err.mean("seed").plot(x="init_scale", xscale="log")[0]
    np.testing.assert_allclose(line.get_xdata(), arrays["init_scale"])
    np.testing.assert_allclose(line.get_ydata(), arrays["final_test_err"][0].mean(axis=1), rtol=1e-6)
    assert line.axes.get_xscale() == "log"
    matplotlib.pyplot.close("all")


def test_older_directories_are_read_and_their_codes_translated(tmp_path):
    """A deep run directory written before the shared vocabulary (arrays.npz; codes 0 ok, 1 max_steps,
    2 nonfinite, 3 diverged): load_run labels it and translates its status codes by name."""
    old = {"reached_target": 0, "max_steps": 1, "nonfinite": 2, "diverged": 3}
    codes = np.asarray([[[0, 1], [2, 3]]], np.int32)
    arrays = {
        "multiplier": np.asarray([0.5]),
        "lr": np.asarray([0.1, 1.0]),
        "seed": np.arange(2),
        "status": codes,
        "peak_test_acc": np.full(codes.shape, 0.9, np.float32),
    }
    dims = {
        "multiplier": ["multiplier"],
        "lr": ["lr"],
        "seed": ["seed"],
        "status": ["multiplier", "lr", "seed"],
        "peak_test_acc": ["multiplier", "lr", "seed"],
    }
    store.write_npz(tmp_path / "arrays.npz", arrays)
    store.write_json(
        tmp_path / "manifest.json",
        {"complete": True, "dims": dims, "statuses": {n: {"code": c, "meaning": ""} for n, c in old.items()}},
    )
    ds = store.load_run(tmp_path)
    assert status.names_of(ds.status.values).ravel().tolist() == [
        "reached_target",
        "max_steps",
        "nonfinite",
        "diverged",
    ]
    assert ds.attrs["statuses"]["diverged"]["code"] == status.CODE["diverged"] and ds.attrs["status_codes_recoded"]
    assert ds.status.attrs["flag_meanings"] == "reached_target max_steps nonfinite diverged"
    assert (
        json.loads((tmp_path / "manifest.json").read_text())["statuses"]["diverged"]["code"] == 3
    )  # nothing rewritten


def test_results_format_benchmark_runs(tmp_path, capsys):
    """benchmarks/studies/results_format.py (the measurement behind the netCDF choice), one round on a tiny run."""
    import importlib.util
    from pathlib import Path

    arrays, dims, manifest = sweep_like()
    store.write_results(tmp_path, arrays, manifest)
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "studies" / "results_format.py"
    spec = importlib.util.spec_from_file_location("results_format", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (row,) = bench.main([str(tmp_path), "--repeat", "1", "--json", str(tmp_path / "m.json")])
    assert row["variables"] == len(arrays) and row["netcdf4"]["bytes"] > 0 and row["npz"]["read_ms"] > 0
    assert "netcdf4" in capsys.readouterr().out and json.loads((tmp_path / "m.json").read_text())[0]["run_dir"] == str(
        tmp_path
    )
