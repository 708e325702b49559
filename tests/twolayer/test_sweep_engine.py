"""Sweep engine at scale: grids, cost-aware chunks, sharding, resume."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from reference import TINY_SETS, cli_sets

import gflow
from gflow.runs.runner import RunMismatchError
from gflow.runs.store import arrays_of
from gflow.twolayer import sweep as S
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig, SweepConfig

BASE = dict(
    data=DataConfig(n=20, d=30, n_test=200), model=ModelConfig(width=20), flow=FlowConfig(dtype="float64", n_save=12)
)
GRID = Config(
    **BASE,
    sweep=SweepConfig(
        init_scales=(1e-3, 0.1, 2.0), n_seeds=2, grid={"flow.target_loss": [0.05, 0.02]}, data_seeds=(0, 1)
    ),
)


@pytest.fixture(scope="module")
def grid_result():
    return gflow.run_sweep(GRID, progress=False)


def test_grid_dims_coordinates_and_lanes(grid_result):
    arr, dims = grid_result.arrays, grid_result.dims
    assert dims["final_test_err"] == ["flow.target_loss", "data_seed", "scale", "seed"]
    assert dims["traj_loss"] == ["flow.target_loss", "data_seed", "scale", "seed", "time"]
    assert arr["final_test_err"].shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(arr["flow.target_loss"], [0.05, 0.02])
    np.testing.assert_array_equal(arr["data_seed"], [0, 1])
    assert dims["bayes_error"] == ["data_seed"]
    ok = arr["status"] == 0
    np.testing.assert_allclose(arr["final_loss"][0][ok[0]], 0.05, rtol=1e-6)
    np.testing.assert_allclose(arr["final_loss"][1][ok[1]], 0.02, rtol=1e-6)
    # a lane equals the single run with the same overrides
    cfg = Config(
        **{
            **BASE,
            "data": DataConfig(n=20, d=30, n_test=200, seed=1),
            "flow": FlowConfig(dtype="float64", n_save=12, target_loss=0.02),
        }
    )
    r = gflow.simulate(init_scale=0.1, seed=1, config=cfg)
    np.testing.assert_allclose(arr["t_stop"][1, 1, 1, 1], float(r.t_stop), rtol=1e-9)
    assert arr["separability"][0] != arr["separability"][1], "data seeds must give different datasets"
    counts = grid_result.meta["status_by_axis"]["flow.target_loss"]
    assert sum(sum(c.values()) for c in counts.values()) == 24


def test_cost_aware_chunks_equal_full_vmap(grid_result):
    """Chunks of similar-cost lanes (the default) give the same results as one full-vmap batch."""
    full = Config(**{**GRID.__dict__, "sweep": SweepConfig(**{**_sweep_kwargs(GRID), "chunk_size": 12})})
    plan = S.make_plan(full)
    assert len(plan.chunks()) == 2  # one chunk per dataset
    res = gflow.run_sweep(full, progress=False)
    np.testing.assert_array_equal(res.arrays["status"], grid_result.arrays["status"])
    np.testing.assert_allclose(res.arrays["t_stop"], grid_result.arrays["t_stop"], rtol=1e-9)
    np.testing.assert_allclose(res.arrays["traj_Psi"], grid_result.arrays["traj_Psi"], rtol=1e-9)


def test_plan_sorts_by_cost_and_pads():
    plan = S.make_plan(GRID)
    assert plan.chunk_sizes == [2]
    for _g, _b, lanes in plan.chunks():
        idx = np.unravel_index(lanes, plan.shape)
        assert len(set(idx[0])) == 1 and len(set(idx[2])) == 1, "a default chunk holds one (η, α) cost class"
    odd = Config(
        **{**GRID.__dict__, "sweep": SweepConfig(**{**_sweep_kwargs(GRID), "chunk_size": 5, "batch_lanes": 1})}
    )
    plan = S.make_plan(odd)
    sizes = [len(lanes) for _, _, lanes in plan.chunks()]
    assert sizes == [5, 5, 2, 5, 5, 2]
    # within a bucket, the chunks taken in order list its lanes once each, sorted by (η, α·√c, seed)
    # (c = 1 here): a chunk that spans two η values is ordered too
    etas, scales = np.asarray(plan.axes[0][1]), np.asarray(plan.axes[2][1])
    seen = []
    for bucket in (b for grp in plan.groups for b in grp["buckets"]):
        lanes = np.concatenate(bucket["chunks"])
        idx = np.unravel_index(lanes, plan.shape)
        keys = list(zip(etas[idx[0]], scales[idx[2]], idx[3]))
        assert keys == sorted(keys) and len(set(idx[1])) == 1, keys
        seen += lanes.tolist()
    assert sorted(seen) == list(range(plan.n_lanes))


def test_memory_budget_caps_chunk_size():
    big = Config(**BASE, sweep=SweepConfig(init_scales=(0.1,), n_seeds=64, memory_budget_mb=1.0))
    per_lane = S.bytes_per_lane(big)
    plan = S.make_plan(big)
    # whole batches of sweep.batch_lanes = 2 lanes, within the budget
    assert plan.chunk_sizes[0] == 2 * (int(2**20 // per_lane) // 2) < 64


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_no_recompiles_across_chunks_and_one_per_shape_group(grid_result):
    cfg = Config(**BASE, sweep=SweepConfig(init_scales=(1e-2, 0.3, 1.0), n_seeds=2, grid={"data.n": [20, 24]}))
    before = S.solve_batch._cache_size()
    res = gflow.run_sweep(cfg, progress=False)
    # two shape groups, six chunks; the n = 20 group was compiled already by the fixture's sweep
    assert S.solve_batch._cache_size() - before == 1
    again = Config(**BASE, sweep=SweepConfig(init_scales=(5e-3, 0.7, 2.0), n_seeds=2, grid={"data.n": [20, 24]}))
    gflow.run_sweep(again, progress=False)
    assert S.solve_batch._cache_size() - before == 1
    assert res.arrays["final_test_err"].shape == (2, 3, 2)


def test_solve_batch_by_hand_equals_the_sweeps_lanes(grid_result):
    """The public batched solve, called by hand on a batch of sweep.batch_lanes lanes (the sweep's own
    program: nothing compiles), returns RunResult fields with a leading lane axis equal to the sweep's."""
    import jax
    import jax.numpy as jnp

    from gflow.twolayer import model
    from gflow.twolayer.data import make_dataset
    from gflow.twolayer.flow import Lane

    flow = GRID.flow  # target_loss 0.05 is the grid's first value; data seed 0 its first
    scales, seed, f64 = jnp.asarray([0.1, 2.0]), int(grid_result.arrays["seed"][1]), jnp.float64
    lanes = Lane(
        init_scale=scales,
        multiplier=jnp.ones(2, f64),
        target_loss=jnp.full(2, 0.05, f64),
        rtol=jnp.full(2, flow.rtol, f64),
        init_key=jax.vmap(model.init_key)(jnp.asarray([seed, seed], jnp.uint32)),
    )
    data = make_dataset(dataclasses.replace(GRID.data, seed=0), jnp.float64)
    before = S.solve_batch._cache_size()
    res = S.solve_batch(lanes, data, width=GRID.model.width, second_layer=GRID.model.second_layer, flow=flow.compiled())
    assert S.solve_batch._cache_size() == before
    assert res.params is None and res.t_stop.shape == (2,) and res.ts.shape == (2, flow.n_save)
    i = [list(GRID.sweep.init_scales).index(a) for a in (0.1, 2.0)]
    for name in ("t_stop", "n_steps", "status"):
        np.testing.assert_array_equal(np.asarray(getattr(res, name)), grid_result.arrays[name][0, 0, i, 1])
    np.testing.assert_array_equal(np.asarray(res.final["test_err"]), grid_result.arrays["final_test_err"][0, 0, i, 1])


def _sweep_kwargs(cfg):
    sw = cfg.sweep
    return dict(
        init_scales=sw.init_scales, n_seeds=sw.n_seeds, grid=sw.grid, data_seeds=sw.data_seeds, chunk_size=sw.chunk_size
    )


SUBPROCESS_SWEEP = textwrap.dedent(
    """
    import sys, numpy as np, jax
    jax.config.update("jax_enable_x64", True)
    import gflow
    from gflow.twolayer.config import *
    cfg = Config(data=DataConfig(n=20, d=30, n_test=200), model=ModelConfig(width=20), flow=FlowConfig(dtype="float64", n_save=12),
                 sweep=SweepConfig(init_scales=(1e-3, 0.1, 2.0), n_seeds=3, shard=sys.argv[2] == "shard"))
    res = gflow.run_sweep(cfg, progress=False)
    np.savez(sys.argv[1], n_devices=res.meta["n_devices"], **{k: v for k, v in res.arrays.items()})
    """
)


@pytest.mark.slow  # ~1–2 min; run by .ci/run with `-m slow`
def test_sharded_equals_unsharded(tmp_path):
    """4 simulated CPU devices: each chunk's lanes are split over the devices; results are unchanged."""
    script = tmp_path / "s.py"
    script.write_text(SUBPROCESS_SWEEP)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "sharded.npz"), "shard"], env=env, check=True, timeout=600
    )
    cfg = Config(**BASE, sweep=SweepConfig(init_scales=(1e-3, 0.1, 2.0), n_seeds=3, shard=False))
    ref = gflow.run_sweep(cfg, progress=False)
    with np.load(tmp_path / "sharded.npz") as z:
        assert int(z["n_devices"]) == 4
        np.testing.assert_array_equal(z["status"], ref.arrays["status"])
        for key in ("t_stop", "final_test_err", "final_Psi", "traj_loss"):
            np.testing.assert_allclose(z[key], ref.arrays[key], rtol=1e-9, err_msg=key)


KILL_ARGS = [
    *cli_sets(*TINY_SETS, "flow.n_save=12", "sweep.init_scales=[1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0]", "sweep.n_seeds=2"),
    "--quiet",
    "--no-plot",
]


# The sweep process SIGKILLs itself halfway through writing its 3rd chunk file: a kill at a fixed point,
# not a race between a polling test and a sweep that may finish first on a slow or thrashing machine.
DIE_ON_THIRD_CHUNK = textwrap.dedent("""
    import os, signal, sys
    from gflow.runs import runner, store

    chunks = []

    def write_npz(path, arrays, fingerprint=None):
        if "chunk-" in os.path.basename(str(path)):
            chunks.append(path)
            if len(chunks) == 3:
                def half(f):
                    f.write(b"PK\\x03\\x04 half a chunk")
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                store._atomic_write(path, half)
        return store.write_npz(path, arrays, fingerprint)

    runner.write_npz = write_npz
    from gflow import cli
    sys.exit(cli.main(sys.argv[1:]))
""")


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", DIE_ON_THIRD_CHUNK, "sweep", "--out", str(out), *KILL_ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    n_before = len(list((out / "chunks").glob("chunk-*.npz")))
    assert n_before == 2, "two chunks written whole, the third killed mid-write"
    assert [p.name for p in (out / "chunks").glob(".chunk-000002.npz.*.tmp")], "the kill landed inside the write"
    assert not (out / "results.nc").exists()
    with pytest.raises(FileNotFoundError, match="run incomplete"):
        gflow.load_run(out)
    from gflow import cli

    assert cli.main(["sweep", "--out", str(out), *KILL_ARGS]) == 0
    ds = gflow.load_run(out)
    manifest, resumed = ds.attrs, arrays_of(ds)
    assert manifest["chunks_computed"] == 6 - n_before
    assert (
        manifest["compute_s"] > 0
    )  # every chunk's compute, the killed session's two included (tests/runs/test_loop.py)
    assert cli.main(["sweep", "--out", str(tmp_path / "clean"), *KILL_ARGS]) == 0
    clean = arrays_of(gflow.load_run(tmp_path / "clean"))
    for key in clean:
        np.testing.assert_array_equal(resumed[key], clean[key], err_msg=key)
    # a rerun of a finished sweep computes nothing
    assert cli.main(["sweep", "--out", str(out), *KILL_ARGS]) == 0
    assert json.loads((out / "manifest.json").read_text())["chunks_computed"] == 0


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_mismatched_config_is_refused_unless_forced(tmp_path, capsys):
    from gflow import cli

    out = str(tmp_path / "run")
    assert (
        cli.main(
            [
                "sweep",
                "--out",
                out,
                *KILL_ARGS[:-6],
                "--set",
                "sweep.init_scales=[0.1]",
                "--set",
                "sweep.n_seeds=2",
                "--quiet",
                "--no-plot",
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = [
        "sweep",
        "--out",
        out,
        *KILL_ARGS[:-6],
        "--set",
        "sweep.init_scales=[0.1]",
        "--set",
        "sweep.n_seeds=2",
        "--set",
        "flow.target_loss=0.02",
        "--quiet",
        "--no-plot",
    ]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "different config or inputs (config.flow.target_loss)" in err and "--force" in err
    assert cli.main([*args, "--force"]) == 0
    manifest = gflow.load_run(out).attrs
    assert manifest["config"]["flow"]["target_loss"] == 0.02
    with pytest.raises(RunMismatchError):
        gflow.run_sweep(Config(**BASE, sweep=SweepConfig(init_scales=(0.1,), n_seeds=1)), out=out, progress=False)


def test_runs_written_before_a_config_field_existed_resume_on_cpu(tmp_path):
    """An older CPU run directory whose manifest predates `flow.matmul_precision` is resumed, not refused;
    the same manifest from a GPU run is refused (there the precision changed the results)."""
    import json

    from gflow.runs.runner import ChunkedRun

    config = {"flow": {"rtol": 1e-3, "matmul_precision": "highest"}, "data": {"n": 4}}
    old = {"flow": {"rtol": 1e-3}, "data": {"n": 4}}
    for device, refused in (("cpu:cpu", False), ("gpu:NVIDIA H200", True)):
        run_dir = tmp_path / device.split(":")[0]
        run_dir.mkdir()
        (run_dir / "manifest.json").write_text(json.dumps({"config": old, "plan": {"n_chunks": 2}, "device": device}))
        if refused:
            with pytest.raises(RunMismatchError, match="flow.matmul_precision"):
                ChunkedRun(run_dir, config=config, plan={}, n_chunks=2)
        else:
            ChunkedRun(run_dir, config=config, plan={}, n_chunks=2)
            assert json.loads((run_dir / "manifest.json").read_text())["config"] == old  # kept, not discarded


@pytest.mark.parametrize("key, kept, other", [("floor_margins", True, False), ("error_norm", "margins", "loss")])
def test_runs_written_before_a_flow_field_resume_on_any_device(tmp_path, key, kept, other):
    """Every run before `flow.floor_margins` / `flow.error_norm` existed floored the margins (true) and
    held them to rtol ('margins'), on any device: such a manifest resumes a run asking for that value,
    and is refused for the other."""
    import json

    from gflow.runs.runner import ChunkedRun

    old = {"flow": {"rtol": 1e-3}, "data": {"n": 4}}
    for value, refused in ((kept, False), (other, True)):
        run_dir = tmp_path / f"v_{value}"
        run_dir.mkdir()
        (run_dir / "manifest.json").write_text(
            json.dumps({"config": old, "plan": {"n_chunks": 2}, "device": "gpu:NVIDIA H200"})
        )
        config = {"flow": {"rtol": 1e-3, key: value}, "data": {"n": 4}}
        if refused:
            with pytest.raises(RunMismatchError, match=f"flow.{key}"):
                ChunkedRun(run_dir, config=config, plan={}, n_chunks=2)
        else:
            ChunkedRun(run_dir, config=config, plan={}, n_chunks=2)
