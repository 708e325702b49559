"""Run directories that cannot lie: the fault drill of the run layer, driven by numpy callbacks (nothing
compiles). Each test reproduces one break found by the drill (chunk identity, result-neutral fields,
fenced writers, assembly takeover, --force, manifests of the wrong shape, a full disk, stale temporary
files, signals) and checks the one line, the exit status or exception, and that the directory's results
equal a clean run's."""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from gflow.runs import store
from gflow.runs.loop import run_chunks
from gflow.runs.runner import ChunkedRun

N_CHUNKS, PER = 4, 3
CONFIG = {"flow": {"rtol": 1e-3}, "sweep": {"max_runs": 1000}}


def runs_in(i):
    return PER


def identity(i):
    """Which runs chunk i holds: plan indices and a per-run value (as the wings store α, seed, data seed)."""
    lanes = np.arange(i * PER, (i + 1) * PER)
    return {"lane": lanes, "init_scale": 10.0 ** (lanes - 6.0)}


def _compute(calls, sleep_s=0.0, on_compute=None):
    def compute(i, report):
        calls.append(i)
        if on_compute is not None:
            on_compute(i)
        time.sleep(sleep_s)
        return {"x": np.arange(PER, dtype=float) + 10 * i}

    return compute


def _assemble(chunks, meta):
    return {"x": np.concatenate([c["x"] for c in chunks])}, {"x": ["run"]}, meta


def _fp(config):
    return store.fingerprint(config=config, data="config:d", dtype="float32")


def loop(out, calls=None, config=CONFIG, log=None, **kw):
    calls = [] if calls is None else calls
    return run_chunks(
        N_CHUNKS,
        _compute(calls, kw.pop("sleep_s", 0.0), kw.pop("on_compute", None)),
        _assemble,
        runs_in=runs_in,
        label="t",
        out=out,
        config=config,
        plan={"p": 1},
        progress=False,
        fingerprint=_fp(config),
        identity=identity,
        **kw,
    )


CLEAN = np.concatenate([np.arange(PER, dtype=float) + 10 * i for i in range(N_CHUNKS)])


def _results(out):
    return store.load_run(out).x.values


def test_a_chunk_copied_under_another_chunks_name_is_moved_aside_and_recomputed(tmp_path, capfd):
    """Drill 1: `cp chunk-000002.npz chunk-000001.npz` passed checksum and fingerprint and was assembled
    into the wrong rows with the manifest saying complete."""
    out = tmp_path / "run"
    loop(out)
    shutil.copy(out / "chunks" / "chunk-000002.npz", out / "chunks" / "chunk-000001.npz")
    (out / "results.nc").unlink()
    capfd.readouterr()
    calls = []
    res = loop(out, calls)
    err = capfd.readouterr().err.strip().splitlines()
    assert calls == [1], "only the misnamed chunk is recomputed"
    assert len(err) == 1 and "chunk 1 is bad" in err[0] and "holds the runs of chunk 2, not of chunk 1" in err[0]
    np.testing.assert_array_equal(res.arrays["x"], CLEAN)
    np.testing.assert_array_equal(_results(out), CLEAN)
    assert len(list((out / "chunks" / "corrupt").iterdir())) == 1
    assert store.chunk_summary(out, store.read_manifest(out)) == "4 of 4 chunks done"


def test_a_chunk_of_other_runs_under_the_right_index_is_refused_by_its_identity(tmp_path):
    """A chunk whose index matches but whose runs (plan indices, α) are not the plan's is refused too."""
    lines = []
    run = ChunkedRun(
        tmp_path, config=CONFIG, plan={"p": 1}, n_chunks=2, fingerprint=_fp(CONFIG), log=lines.append, identity=identity
    )
    run.save_chunk(0, {"x": np.zeros(PER)})
    shifted = ChunkedRun(
        tmp_path / "b",
        config=CONFIG,
        plan={"p": 1},
        n_chunks=2,
        fingerprint=_fp(CONFIG),
        identity=lambda i: identity(i + 1),
        log=lines.append,
    )
    shifted.save_chunk(0, {"x": np.zeros(PER)})
    os.replace(shifted.chunk_path(0), run.chunk_path(0))
    assert not run.is_done(0)
    assert "holds other runs than chunk 0 of this plan (lane differs)" in lines[-1]


def test_a_chunk_summary_counts_a_misnamed_chunk_as_bad(tmp_path):
    loop(tmp_path)
    shutil.copy(tmp_path / "chunks" / "chunk-000000.npz", tmp_path / "chunks" / "chunk-000003.npz")
    manifest = store.read_manifest(tmp_path)
    assert store.chunk_summary(tmp_path, manifest).startswith("3 of 4 chunks done, 1 corrupt")


def test_a_result_neutral_field_keeps_every_chunk(tmp_path, capfd):
    """Drill 5: changing only sweep.max_runs marked every chunk 'different inputs' and recomputed it."""
    out = tmp_path / "run"
    loop(out)
    (out / "results.nc").unlink()
    capfd.readouterr()
    calls = []
    other = {**CONFIG, "sweep": {"max_runs": 5000}}
    res = loop(out, calls, config=other)
    assert calls == [] and capfd.readouterr().err == ""
    np.testing.assert_array_equal(res.arrays["x"], CLEAN)
    assert _fp(CONFIG) == _fp({**CONFIG, "sweep": {"max_runs": 7, "max_memory_gb": 1.0}})
    assert _fp(CONFIG) != _fp({**CONFIG, "flow": {"rtol": 1e-4}})


def test_force_removes_only_the_files_gflow_names(tmp_path):
    """Drill 6: --force deleted chunks/thesis.tex and claims/notes.md."""
    out = tmp_path / "run"
    loop(out)
    mine = {
        out / "chunks" / "thesis.tex": "thesis",
        out / "claims" / "notes.md": "notes",
        out / "plan.txt": "plan",
        out / "chunks" / "corrupt" / "keep.me": "keep",
    }
    for path, text in mine.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    (out / "chunks" / "corrupt" / "chunk-000001.npz.123.45").write_bytes(b"old")
    (out / "claims" / "chunk-000002.3").write_text("{}")
    calls = []
    res = loop(out, calls, force=True)
    assert calls == [0, 1, 2, 3]
    for path, text in mine.items():
        assert path.read_text() == text, f"{path.name}: --force removed a file gflow did not write"
    assert not (out / "chunks" / "corrupt" / "chunk-000001.npz.123.45").exists()
    assert not (out / "claims" / "chunk-000002.3").exists()
    np.testing.assert_array_equal(res.arrays["x"], CLEAN)


@pytest.mark.parametrize(
    "manifest",
    [
        {"config": 5},
        {"config": {}, "fingerprint": "abc"},
        {"config": {}, "plan": []},
        {"config": {}, "fingerprint": {"all": 3}},
        {"config": {}, "complete": "yes"},
        [1, 2],
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_line_and_force_recovers(tmp_path, manifest):
    """Drill 4: valid JSON of the wrong shape gave an AttributeError traceback."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps(manifest))
    for call in (lambda: loop(out), lambda: store.load_run(out)):
        with pytest.raises(store.CorruptFileError, match=r"manifest.json: not a gflow manifest.*--force") as e:
            call()
        assert "\n" not in str(e.value)
    res = loop(out, force=True)
    np.testing.assert_array_equal(res.arrays["x"], CLEAN)


def test_a_deep_directory_without_a_fingerprint_says_it_is_incomplete(tmp_path):
    """Drill 3: an unfinished deep directory (its manifest has "fingerprint": null) gave
    AttributeError in chunk_summary from load_run, `gflow plot` and `gflow deep plot`."""
    from gflow import cli

    run = ChunkedRun(
        tmp_path,
        config={"train": {}},
        plan={"p": 1},
        n_chunks=3,
        fingerprint=None,
        extra_manifest={"kind": "deep_fls_sweep"},
        log=lambda m: None,
    )
    run.save_chunk(0, {"x": np.zeros(2)})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["fingerprint"] is None
    with pytest.raises(FileNotFoundError, match=r"run incomplete \(1 of 3 chunks done\)"):
        store.load_run(tmp_path)
    assert store.chunk_summary(tmp_path, manifest) == "1 of 3 chunks done"
    for argv in (["deep", "plot", str(tmp_path)], ["plot", str(tmp_path)]):
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert cli.main(argv) == 2
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and "run incomplete (1 of 3 chunks done)" in lines[0], lines


def test_the_assembly_of_a_dead_assembler_is_taken_over(tmp_path):
    """Drill 12: a worker killed while assembling left a directory that the other workers (which had
    exited 0, 'another worker is assembling') never assembled. Its assembly claim lapses like a chunk's:
    a worker on this host takes it over at once, one on another host after the lease."""
    out = tmp_path / "run"
    run = ChunkedRun(
        out,
        config=CONFIG,
        plan={"p": 1},
        n_chunks=N_CHUNKS,
        fingerprint=_fp(CONFIG),
        identity=identity,
        log=lambda m: None,
    )
    for i in range(N_CHUNKS):
        run.save_chunk(i, {"x": np.arange(PER, dtype=float) + 10 * i, "_compute_s": np.asarray(0.0)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim = out / "claims" / "assemble.0"
    claim.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "token": "t"}))
    res = loop(out)
    assert res is not None, "the worker assembles instead of leaving the directory unassembled"
    np.testing.assert_array_equal(_results(out), CLEAN)
    assert store.read_manifest(out)["complete"] is True
    # another host's claim: waited for, then taken over when its lease lapses
    (out / "results.nc").unlink()
    manifest = store.read_manifest(out)
    store.write_json(out / "manifest.json", {**manifest, "complete": False})
    (out / "claims" / "assemble.5").write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    t0 = time.time()
    res = loop(out, lease_s=1.0)
    assert res is not None and time.time() - t0 >= 0.9
    np.testing.assert_array_equal(_results(out), CLEAN)


def test_a_waiting_worker_returns_only_once_another_has_assembled(tmp_path):
    """While another live worker holds the assembly, a worker waits; it returns None (results written by
    the other) only after the manifest is complete."""
    out = tmp_path / "run"
    loop(out)
    (out / "results.nc").unlink()
    manifest = store.read_manifest(out)
    store.write_json(out / "manifest.json", {**manifest, "complete": False})
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "claims" / "assemble.0").write_text(
            json.dumps({"host": socket.gethostname(), "pid": holder.pid, "token": "t"})
        )
        import threading

        got = {}
        t = threading.Thread(target=lambda: got.setdefault("res", loop(out)))
        t.start()
        time.sleep(1.5)
        assert t.is_alive(), "a worker waits while a live worker holds the assembly"
        # the holder publishes its assembly
        store.write_dataset(out / "results.nc", store.to_dataset({"x": CLEAN}, {"x": ["run"]}, {}))
        store.write_json(
            out / "manifest.json", {**manifest, "complete": True, "assembly_id": "other", "dims": {"x": ["run"]}}
        )
        t.join(30)
        assert not t.is_alive() and got["res"] is None
    finally:
        holder.kill()
        holder.wait()


def test_a_worker_of_a_superseded_generation_publishes_nothing(tmp_path):
    """Drill 13: `--force` with a new config while an old worker ran: the old worker published results.nc
    with the old config's numbers under the new manifest. Now the old worker stops (Superseded) at its
    next publish, and the new run's results equal a clean run's."""
    from gflow.runs.runner import Superseded

    out = tmp_path / "run"
    new_config = {**CONFIG, "flow": {"rtol": 1e-4}}
    started = []

    def force_new_run(i):
        if not started:
            started.append(i)
            ChunkedRun(
                out,
                config=new_config,
                plan={"p": 1},
                n_chunks=N_CHUNKS,
                fingerprint=_fp(new_config),
                force=True,
                identity=identity,
                log=lambda m: None,
            )

    with pytest.raises(Superseded, match="started over by another run"):
        loop(out, on_compute=force_new_run)
    assert not list((out / "chunks").glob("chunk-*.npz")), "the old worker published no chunk"
    res = loop(out, config=new_config)
    np.testing.assert_array_equal(res.arrays["x"], CLEAN)
    assert store.read_manifest(out)["config"]["flow"]["rtol"] == 1e-4
    # and the old worker cannot publish results either
    old = ChunkedRun(
        tmp_path / "b", config=CONFIG, plan={"p": 1}, n_chunks=1, fingerprint=_fp(CONFIG), log=lambda m: None
    )
    ChunkedRun(
        tmp_path / "b",
        config=new_config,
        plan={"p": 1},
        n_chunks=1,
        fingerprint=_fp(new_config),
        force=True,
        log=lambda m: None,
    )
    with pytest.raises(Superseded):
        old.finish({"x": CLEAN}, {"dims": {"x": ["run"]}})
    assert not (tmp_path / "b" / "results.nc").exists()
    # nor move the new run's chunks aside (they fail its fingerprint and generation)
    new = ChunkedRun(
        tmp_path / "b", config=new_config, plan={"p": 1}, n_chunks=1, fingerprint=_fp(new_config), log=lambda m: None
    )
    new.save_chunk(0, {"x": CLEAN})
    with pytest.raises(Superseded):
        old.is_done(0)
    assert new.is_done(0) and not (tmp_path / "b" / "chunks" / "corrupt").exists()


def test_a_force_that_removes_a_writers_files_mid_write_stops_it_as_superseded(tmp_path, monkeypatch):
    """Drilled: `--force` landed while the old worker was writing results.nc and removed its staged file;
    the old worker said `No such file or directory` (exit 2) instead of that it was superseded."""
    from gflow.runs.runner import Superseded

    new_config = {**CONFIG, "flow": {"rtol": 1e-4}}
    old = ChunkedRun(tmp_path, config=CONFIG, plan={"p": 1}, n_chunks=1, fingerprint=_fp(CONFIG), log=lambda m: None)
    real = store.write_assembled

    def forced_meanwhile(path, arrays, manifest):
        ChunkedRun(
            tmp_path,
            config=new_config,
            plan={"p": 1},
            n_chunks=1,
            fingerprint=_fp(new_config),
            force=True,
            log=lambda m: None,
        )
        real(tmp_path / "gone" / "x.nc", arrays, manifest)  # fails as the removed file would

    monkeypatch.setattr("gflow.runs.runner.write_assembled", forced_meanwhile)
    with pytest.raises(Superseded):
        old.finish({"x": CLEAN}, {"dims": {"x": ["run"]}})
    assert not (tmp_path / "results.nc").exists() and store.read_manifest(tmp_path)["config"]["flow"]["rtol"] == 1e-4


def test_workers_starting_together_share_one_generation(tmp_path):
    runs = [
        ChunkedRun(tmp_path, config=CONFIG, plan={"p": 1}, n_chunks=1, fingerprint=_fp(CONFIG), log=lambda m: None)
        for _ in range(3)
    ]
    assert len({r.generation for r in runs}) == 1 and runs[0].generation


def test_a_full_disk_names_the_path(tmp_path, monkeypatch):
    """Drill 8: a full disk said `[Errno 28] No space left on device` with no path, and `NetCDF: HDF error`
    while writing results.nc."""
    from gflow import cli

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(store.DiskFullError) as e:
        store.write_npz(tmp_path / "chunk-000000.npz", {"x": np.zeros(2)})
    line = cli._one_line(e.value)
    assert line.startswith(str(tmp_path / "chunk-000000.npz")) and "the disk is full" in line
    monkeypatch.undo()

    import xarray as xr

    def hdf_error(self, *a, **k):
        raise RuntimeError("NetCDF: HDF error")

    class Stat:
        f_bavail, f_frsize = 3, 4096  # 12 KiB free

    monkeypatch.setattr(xr.Dataset, "to_netcdf", hdf_error)
    monkeypatch.setattr(store.os, "statvfs", lambda p: Stat)
    with pytest.raises(store.DiskFullError) as e:
        store.write_dataset(tmp_path / "results.nc", store.to_dataset({"x": np.zeros(2)}, {"x": ["i"]}, {}))
    line = cli._one_line(e.value)
    assert line.startswith(str(tmp_path / "results.nc")) and "the disk is full" in line and "HDF error" in line
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # the assembly stages results.nc under a temporary name; the line names results.nc all the same
    run = ChunkedRun(
        tmp_path / "run", config=CONFIG, plan={"p": 1}, n_chunks=1, fingerprint=_fp(CONFIG), log=lambda m: None
    )
    with pytest.raises(store.DiskFullError) as e:
        run.finish({"x": CLEAN}, {"dims": {"x": ["run"]}})
    assert (
        cli._one_line(e.value)
        == f"{tmp_path / 'run' / 'results.nc'}: cannot write it: the disk is full (RuntimeError: NetCDF: HDF error)"
    )
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_a_write_error_with_space_left_is_not_called_a_full_disk(tmp_path, monkeypatch):
    import xarray as xr

    def hdf_error(self, *a, **k):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", hdf_error)
    with pytest.raises(RuntimeError, match="HDF error"):
        store.write_dataset(tmp_path / "results.nc", store.to_dataset({"x": np.zeros(2)}, {"x": ["i"]}, {}))


def test_stale_temporary_files_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    loop(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = [
        out / "chunks" / f".chunk-000001.npz.tmp-{dead.pid}@{host}-abc123.tmp",  # a dead writer here
        out / ".results.nc.tmp-1@elsewhere-x_y.tmp",  # another host's, older than the lease
        out / "chunks" / ".chunk-000002.npz.k3j_9xq2.tmp",
    ]  # written before tmp names held the writer
    fresh = out / "chunks" / ".chunk-000003.npz.tmp-1@elsewhere-zz.tmp"  # another host's, being written now
    for p in stale + [fresh]:
        p.write_bytes(b"partial")
    old = time.time() - 3600
    for p in stale[1:]:
        os.utime(p, (old, old))
    lines = []
    ChunkedRun(out, config=CONFIG, plan={"p": 1}, n_chunks=N_CHUNKS, fingerprint=_fp(CONFIG), log=lines.append)
    assert not any(p.exists() for p in stale) and fresh.exists()
    assert len(lines) == 3 and all("a temporary file left by a worker that stopped" in line for line in lines)


SIGNAL_WORKER = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    # SIGINT as a terminal delivers it, even when the test session was started in the background of a
    # non-interactive shell, which starts its children with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import gflow.twolayer.sweep as sweep
    from gflow import cli
    from gflow.runs.loop import run_chunks

    def fake_run_sweep(cfg, *, out, force, progress, lease_s):
        def compute(i, report):
            time.sleep(0.3 if i == 0 else 60)
            return {"x": np.arange(3.0) + i}
        return run_chunks(4, compute, lambda ch, meta: ({}, {}, meta), runs_in=lambda i: 3, label="t", out=out,
                          config={"a": 1}, plan={"p": 1}, progress=False)

    sweep.run_sweep = fake_run_sweep
    sys.exit(cli.main(["sweep", "--out", sys.argv[1], "--quiet", "--no-plot"]))
""")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_release_the_claim_keep_chunks_and_say_how_to_resume(tmp_path, sig, code):
    """Drill 7: SIGINT printed a 50-line traceback; SIGTERM exited 143 silently and left its claim, so the
    chunk waited out the lease on another host."""
    out = tmp_path / "run"
    script = tmp_path / "worker.py"
    script.write_text(SIGNAL_WORKER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "chunks" / "chunk-000000.npz").exists():
        time.sleep(0.1)
    while time.time() < deadline and not list((out / "claims").glob("chunk-000001.*")):
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0] == (
        f"gflow: interrupted by {signal.Signals(sig).name}; 1 of 4 chunks kept in {out}; "
        "rerun the same command to resume"
    )
    assert not list((out / "claims").iterdir()), "the claim is released"
    assert (out / "chunks" / "chunk-000000.npz").is_file()
