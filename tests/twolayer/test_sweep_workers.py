"""The drills of issue 12 on tiny sweeps: seed invariance, stale data, bad chunks, failing writes,
concurrent and killed workers, η at or above the loss at init, user datasets, the no-JAX CLI."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import pytest
from reference import TINY_SETS, cli_sets

import gflow
from gflow import cli
from gflow.runs import store
from gflow.runs.runner import RunMismatchError
from gflow.runs.store import arrays_of
from gflow.twolayer.config import Config, ConfigError, DataConfig, FlowConfig, ModelConfig, SweepConfig
from gflow.twolayer.data import from_arrays

TINY = dict(data=DataConfig(n=20, d=30, n_test=200), model=ModelConfig(width=20), flow=FlowConfig(n_save=12))
ARGS = [
    *cli_sets(*TINY_SETS, "flow.n_save=12", "sweep.init_scales=[1e-3, 0.1, 1.0, 10.0]", "sweep.n_seeds=3"),
    "--quiet",
    "--no-plot",
]
WORKERS_CFG = Config(**TINY, sweep=SweepConfig(init_scales=(1e-3, 0.1, 1.0, 10.0), n_seeds=3))


def test_seed_i_does_not_depend_on_the_number_of_seeds_or_the_chunking():
    """float32, every α from rich to the lazy corner: seeds 0–1 of a 3-seed sweep (and of one with
    other chunks) are bitwise the runs of a 2-seed sweep. Before fixing the batch shape, t_η at
    α = 10 differed by 0.8% between batches of 2 and 5 lanes on this problem."""
    scales = (1e-3, 0.1, 1.0, 10.0, 30.0)
    runs = [
        gflow.run_sweep(Config(**TINY, sweep=SweepConfig(init_scales=scales, n_seeds=n, chunk_size=c)), progress=False)
        for n, c in ((2, 0), (3, 0), (3, 5))
    ]
    assert runs[0].arrays["t_stop"].dtype == np.float32
    ref = runs[0].arrays
    for other in runs[1:]:
        for key in ("status", "t_stop", "n_steps", "final_test_err", "final_loss", "traj_loss"):
            np.testing.assert_array_equal(other.arrays[key][:, :2], ref[key], err_msg=key)


def _dataset(seed, n=20, d=5, n_test=50):
    rng = np.random.default_rng(seed)
    y, yt = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n_test)
    return from_arrays(y[:, None] + rng.normal(size=(n, d)), y, yt[:, None] + rng.normal(size=(n_test, d)), yt)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_other_data_in_the_same_directory_is_refused(tmp_path):
    cfg = Config(**TINY, sweep=SweepConfig(init_scales=(0.1,), n_seeds=2))
    out = tmp_path / "run"
    a = gflow.run_sweep(cfg, data=_dataset(0), out=out, progress=False)
    with pytest.raises(RunMismatchError, match=r"different config or inputs \(.*data"):
        gflow.run_sweep(cfg, data=_dataset(1), out=out, progress=False)
    ds = gflow.load_run(out)
    manifest, arrays = ds.attrs, arrays_of(ds)
    assert manifest["data"]["shapes"]["x"] == [20, 5] and manifest["data"]["shapes"]["x_test"] == [50, 5]
    assert (manifest["config"]["data"]["n"], manifest["config"]["data"]["d"], manifest["config"]["data"]["n_test"]) == (
        20,
        5,
        50,
    )
    np.testing.assert_array_equal(arrays["t_stop"], a.arrays["t_stop"])
    b = gflow.run_sweep(cfg, data=_dataset(1), out=out, progress=False, force=True)
    assert not np.array_equal(b.arrays["t_stop"], a.arrays["t_stop"])
    assert float(gflow.load_run(out)["separability"]) == pytest.approx(
        gflow.separability_constant(_dataset(1).x, _dataset(1).y)
    )


def test_a_dataset_given_to_run_sweep_is_checked_as_simulate_checks_it():
    cfg = Config(**TINY, sweep=SweepConfig(init_scales=(0.1,), n_seeds=1))
    good = _dataset(0)
    for bad in (good._replace(x=good.x.at[3, 1].set(jnp.nan)), good._replace(y=(good.y > 0).astype(good.y.dtype))):
        with pytest.raises(ValueError) as sim:
            gflow.simulate(init_scale=0.1, config=cfg, data=bad)
        with pytest.raises(ValueError) as sweep:
            gflow.run_sweep(cfg, data=bad, progress=False)
        assert str(sweep.value) == str(sim.value)


def test_target_at_or_above_the_init_loss(tmp_path):
    """η = 100 is above L(θ(0)) at every α: refused. η = 0.7 is above L(θ(0)) ≈ log 2 at small α but
    not at α = 10: a warning names the α that stop at init."""
    with pytest.raises(ConfigError, match="flow.target_loss: η = 100.0 is at or above the loss at init for every α"):
        gflow.run_sweep(
            Config(
                **{**TINY, "flow": FlowConfig(n_save=12, target_loss=100.0)},
                sweep=SweepConfig(init_scales=(1e-3, 10.0), n_seeds=2),
            ),
            out=tmp_path / "r",
            progress=False,
        )
    assert not (tmp_path / "r").exists()
    warnings = []
    res = gflow.run_sweep(
        Config(
            **{**TINY, "flow": FlowConfig(n_save=12, target_loss=0.7)},
            sweep=SweepConfig(init_scales=(1e-3, 10.0), n_seeds=2),
        ),
        progress=False,
        warn=warnings.append,
    )
    assert warnings == [
        "gflow: warning: flow.target_loss: η = 0.7 is at or above the loss at init for α = 0.001; "
        "those runs stop at t = 0 with status target_at_init"
    ]
    assert list(res.status_names()[0]) == ["target_at_init"] * 2 and "target_at_init" not in res.status_names()[1]


def test_a_truncated_chunk_is_redone_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["sweep", "--out", str(out), *ARGS]) == 0
    clean = arrays_of(gflow.load_run(out))
    (out / "results.nc").unlink()
    chunk = sorted((out / "chunks").glob("chunk-*.npz"))[1]
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(FileNotFoundError, match=r"run incomplete \(2 of 3 chunks done, 1 corrupt"):
        gflow.load_run(out)
    with pytest.raises(FileNotFoundError, match="run incomplete"):
        from gflow.twolayer.plot import plot_sweep

        plot_sweep(out)
    capsys.readouterr()
    assert cli.main(["sweep", "--out", str(out), *ARGS]) == 0
    err = capsys.readouterr().err.splitlines()
    bad = [line for line in err if "chunk" in line]
    assert len(bad) == 1 and bad[0].startswith("gflow: chunk 1 is bad (") and "moved to chunks/corrupt/" in bad[0]
    ds = gflow.load_run(out)
    manifest, resumed = ds.attrs, arrays_of(ds)
    assert manifest["chunks_computed"] == 1
    for key in clean:
        np.testing.assert_array_equal(resumed[key], clean[key], err_msg=key)
    assert (out / "manifest.json").stat().st_mode & 0o044 == 0o044, "readable by group and others under umask 022"


def test_a_failing_write_mid_sweep_leaves_a_resumable_directory(tmp_path, monkeypatch, capsys):
    """Fault injection: the disk is full on the third file written (the second chunk); the CLI says
    so in one line, and a rerun finishes with the results of an uninterrupted sweep."""
    out = tmp_path / "run"
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(store.os, "replace", replace)
    assert cli.main(["sweep", "--out", str(out), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gflow: error: ") and err[-1].endswith(
        "chunk-000001.npz: cannot write it: the disk is full (No space left on device)"
    )
    monkeypatch.undo()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")] and not list((out / "claims").iterdir())
    assert len(list((out / "chunks").glob("chunk-*.npz"))) == 1
    assert cli.main(["sweep", "--out", str(out), *ARGS]) == 0
    ds = gflow.load_run(out)
    manifest, arrays = ds.attrs, arrays_of(ds)
    assert manifest["chunks_computed"] == 2
    ref = gflow.run_sweep(WORKERS_CFG, progress=False)
    for key in ("status", "t_stop", "final_test_err"):
        np.testing.assert_array_equal(arrays[key], ref.arrays[key], err_msg=key)


WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from gflow import cli
    from gflow.runs import runner
    log, barrier, hang = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    save, work = runner.ChunkedRun.save_chunk, runner.ChunkedRun.work

    def logged_save(self, i, arrays):
        if i == hang:
            (barrier / "hung").write_text(str(i))
            time.sleep(600)
        time.sleep(0.5)  # chunks take a moment, so the workers overlap
        save(self, i, arrays)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {i}\\n")

    def synced_work(self, *a, **k):  # all workers start claiming together
        (barrier / str(os.getpid())).touch()
        while len([p for p in barrier.iterdir() if p.name.isdigit()]) < int(sys.argv[4]):
            time.sleep(0.05)
        yield from work(self, *a, **k)

    runner.ChunkedRun.save_chunk, runner.ChunkedRun.work = logged_save, synced_work
    sys.exit(cli.main(sys.argv[5:]))
    """
)


@pytest.fixture(scope="module")
def workers_ref():
    return gflow.run_sweep(WORKERS_CFG, progress=False)


def _start_workers(tmp_path, out, n, hang=-1):
    script, barrier = tmp_path / "worker.py", tmp_path / "barrier"
    script.write_text(WORKER)
    barrier.mkdir(exist_ok=True)
    env = {**os.environ, "JAX_ENABLE_X64": "1"}  # as in this test session (conftest)
    return [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "log"),
                str(barrier),
                str(hang),
                str(n),
                "sweep",
                "--out",
                str(out),
                *ARGS,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


@pytest.mark.slow  # 3 subprocesses that import JAX and compile: 1–3 min on 2 cores; tests/runs/test_run_dir.py has a fast twin
def test_three_workers_compute_each_chunk_once(tmp_path, workers_ref):
    out = tmp_path / "run"
    procs = _start_workers(tmp_path, out, 3)
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    log = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    chunks = sorted(int(i) for _, i in log)
    assert chunks == [0, 1, 2], "every chunk computed exactly once"
    assert len({pid for pid, _ in log}) >= 2, "the work was shared"
    # one worker assembles; the others say so, or (if they arrive after it finished) reassemble the same arrays
    assert all("another worker assembled" in o or "status counts" in o for o, _ in outputs)
    arrays = arrays_of(gflow.load_run(out))
    for key in workers_ref.arrays:
        np.testing.assert_array_equal(arrays[key], workers_ref.arrays[key], err_msg=key)


@pytest.mark.slow  # a subprocess that imports JAX and compiles; tests/runs/test_run_dir.py has a fast twin
def test_a_killed_workers_chunk_is_taken_over(tmp_path, workers_ref):
    out = tmp_path / "run"
    (proc,) = _start_workers(tmp_path, out, 1, hang=1)
    deadline = time.time() + 300
    while not (tmp_path / "barrier" / "hung").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in (out / "claims").iterdir()] == ["chunk-000001.0"], "the dead worker's claim is left behind"
    lines = []
    res = gflow.run_sweep(WORKERS_CFG, out=out, progress=False, warn=lines.append)
    assert res.meta["chunks_taken_over"] == ["chunk-000001"] and res.meta["chunks_computed"] == 2
    for key in workers_ref.arrays:
        np.testing.assert_array_equal(res.arrays[key], workers_ref.arrays[key], err_msg=key)


NO_JAX = textwrap.dedent(
    """
    import sys
    from gflow import cli
    for argv in (["--help"], ["sweep", "--help"], ["sweep", "--set", "model.width=0"], ["run", "--seed", "-1"],
                 ["sweep", "--out", sys.argv[1]], ["sweep", "--set", "sweep.n_seeds=1000000000"]):
        try:
            rc = cli.main(argv)
        except SystemExit as e:
            rc = e.code
        print(argv[0], rc, "jax" in sys.modules, file=sys.stderr)
    """
)


def test_help_and_config_errors_do_not_import_jax(tmp_path):
    (tmp_path / "file").write_text("x")
    p = subprocess.run(
        [sys.executable, "-c", NO_JAX, str(tmp_path / "file")], capture_output=True, text=True, timeout=120
    )
    status = [line for line in p.stderr.splitlines() if line.split()[-1] in ("True", "False")]
    assert [line.split()[1:] for line in status] == [["0", "False"]] * 2 + [["2", "False"]] * 4, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("gflow: error:")]
    assert len(errors) == 4
    assert "exists and is not a directory" in errors[2] and "13,000,000,000 runs" in errors[3]


@pytest.mark.parametrize(
    "args, match",
    [
        (["run", "--seed", "-1"], "--seed: must be an integer in [0, 2**32), got -1"),
        (["run", "--seed", str(2**32)], "--seed: must be an integer in [0, 2**32)"),
        (["sweep", "--set", "data.seed=-3"], "data.seed: must be an integer in [0, 2**32)"),
        (["sweep", "--set", "sweep.n_seeds=100000000"], "sweep.max_runs: the sweep has 1,300,000,000 runs"),
        (["sweep", "--set", "flow.target_loss=1e6", *ARGS[:10]], "is at or above the loss at init for every α"),
        (["run", "--set", "flow.target_loss=100", *ARGS[:10]], "is at or above the loss at init for every α"),
        (["sweep", "--lease", "0"], "--lease: must be a finite number > 0"),
    ],
)
def test_bad_input_one_line_exit_2(args, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = ["--out", str(tmp_path / "out")] if args[0] == "sweep" else []
    assert cli.main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gflow: error: ") and match in err[0], err
    assert not (tmp_path / "out").exists()


def test_out_paths_one_line_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    for out, match in (
        (tmp_path / "file", "exists and is not a directory"),
        (tmp_path / "file" / "run", "is not a directory"),
    ):
        assert cli.main(["sweep", "--out", str(out), *ARGS]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0]
    monkeypatch.setattr(store.os, "access", lambda *a: False)  # we run as root in CI, which may write anywhere
    assert cli.main(["sweep", "--out", str(tmp_path / "new"), *ARGS]) == 2
    assert capsys.readouterr().err.strip() == f"gflow: error: {tmp_path}: not writable"
