"""Run directories without the engine: checksummed chunks, fingerprints, claims and leases, atomic
writes under fault injection, file modes, bounded plans. Nothing here compiles; each test takes
milliseconds."""

import errno
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from gflow.runs import store
from gflow.runs.runner import ChunkedRun, RunMismatchError
from gflow.twolayer.config import ConfigError, SweepConfig

CONFIG = {"flow": {"rtol": 1e-3}, "data": {"n": 4}}


def fp(data="config:x", numerics="n1"):
    parts = {"config": "c", "data": data, "dtype": "float32", "numerics": numerics}
    return {**parts, "all": store._hash(parts)}


def chunk(i):
    return {"t_stop": np.arange(4.0) + i, "status": np.zeros(4, np.int32)}


def make_run(path, n_chunks=3, log=None, **kw):
    return ChunkedRun(
        path,
        config=CONFIG,
        plan={"p": 1},
        n_chunks=n_chunks,
        fingerprint=kw.pop("fingerprint", fp()),
        log=log if log is not None else (lambda m: None),
        **kw,
    )


def test_bad_chunks_are_detected_moved_aside_and_redone(tmp_path):
    run = make_run(tmp_path)
    for i in range(3):
        run.save_chunk(i, chunk(i))
    p0, p1, p2 = (run.chunk_path(i) for i in range(3))
    p0.write_bytes(p0.read_bytes()[: p0.stat().st_size // 2])  # truncated
    p1.write_bytes(b"")  # empty
    # a well-formed npz whose contents no longer match its checksum
    good = store.read_npz(p2)
    with np.load(p2) as z:
        members = {k: z[k] for k in z.files}
    members["t_stop"] = members["t_stop"] + 1e-12
    np.savez(p2, **members)
    assert good["t_stop"][0] != members["t_stop"][0]
    lines = []
    again = make_run(tmp_path, log=lines.append)
    assert again.pending() == [0, 1, 2]
    assert len(lines) == 3 and all(
        line.startswith("gflow: chunk ") and "moved to chunks/corrupt/" in line for line in lines
    )
    assert "unreadable" in lines[0] and "unreadable" in lines[1] and "checksum mismatch" in lines[2]
    assert len(list((tmp_path / "chunks" / "corrupt").iterdir())) == 3
    # a chunk of other inputs (same file name, another fingerprint) is never used either
    other = make_run(tmp_path / "other", fingerprint=fp(data="config:y"))
    other.save_chunk(0, chunk(0))
    os.replace(other.chunk_path(0), again.chunk_path(0))
    assert not again.is_done(0) and "different inputs" in lines[-1]
    assert store.chunk_summary(tmp_path, store.read_manifest(tmp_path)) == "0 of 3 chunks done"


def test_inputs_that_differ_are_refused_naming_what_differs(tmp_path):
    make_run(tmp_path, fingerprint=fp(data="arrays:aaa"))
    with pytest.raises(RunMismatchError, match=r"different config or inputs \(data\)"):
        make_run(tmp_path, fingerprint=fp(data="arrays:bbb"))
    with pytest.raises(RunMismatchError, match="numerics versions"):
        make_run(tmp_path, fingerprint=fp(data="arrays:aaa", numerics="n2"))
    make_run(tmp_path, fingerprint=fp(data="arrays:aaa"))  # the same inputs resume
    make_run(tmp_path, fingerprint=fp(data="arrays:bbb"), force=True)
    assert store.read_manifest(tmp_path)["fingerprint"]["data"] == "arrays:bbb"


def test_force_always_works(tmp_path):
    run = make_run(tmp_path)
    run.save_chunk(0, chunk(0))
    (tmp_path / "manifest.json").write_text('{"config": ')  # truncated manifest
    (tmp_path / "arrays.npz").write_bytes(b"junk")
    (tmp_path / "results.nc").write_bytes(b"junk")
    with pytest.raises(store.CorruptFileError, match="--force"):
        make_run(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    run = make_run(tmp_path, force=True)
    assert (
        run.pending() == [0, 1, 2] and not (tmp_path / "arrays.npz").exists() and not (tmp_path / "results.nc").exists()
    )
    assert (tmp_path / "notes.txt").read_text() == "mine", "--force removes only gflow's files"


def test_load_run_verifies_the_assembled_arrays(tmp_path):
    run = make_run(tmp_path, n_chunks=2)
    run.save_chunk(0, chunk(0))
    with pytest.raises(FileNotFoundError, match=r"run incomplete \(1 of 2 chunks done\)"):
        store.load_run(tmp_path)
    run.save_chunk(1, chunk(1))
    run.finish({"t_stop": np.arange(8.0)}, {"dims": {"t_stop": ["run"]}})
    np.testing.assert_array_equal(store.load_run(tmp_path).t_stop, np.arange(8.0))
    path = tmp_path / "results.nc"
    good = path.read_bytes()
    import netCDF4

    with netCDF4.Dataset(path, "a") as f:  # a valid file holding other numbers
        f["t_stop"][3] = -1.0
    with pytest.raises(store.CorruptFileError, match="checksum mismatch.*reassemble"):
        store.load_run(tmp_path)
    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(store.CorruptFileError, match="unreadable.*reassemble"):
        store.load_run(tmp_path)


def test_failing_writes_leave_the_directory_consistent(tmp_path, monkeypatch):
    """Fault injection: the disk fills during the write, or os.replace fails. The target keeps its
    old contents (or stays absent), no temporary file is left, and the claim is released."""
    run = make_run(tmp_path)
    run.save_chunk(0, chunk(0))
    before = run.chunk_path(0).read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError, match="No space"):
        run.save_chunk(0, chunk(5))
    monkeypatch.undo()
    monkeypatch.setattr(store.os, "replace", full)
    with pytest.raises(OSError):
        run.save_chunk(0, chunk(5))
    with pytest.raises(OSError):
        run.save_chunk(1, chunk(1))
    from contextlib import closing

    with pytest.raises(OSError), closing(run.work()) as work:
        for i in work:
            run.save_chunk(i, chunk(i))
    monkeypatch.undo()
    assert run.chunk_path(0).read_bytes() == before and not run.chunk_path(1).exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert not list((tmp_path / "claims").iterdir()), "a failed chunk's claim is released"
    done = []
    with closing(run.work()) as work:
        for i in work:
            run.save_chunk(i, chunk(i))
            done.append(i)
    assert done == [1, 2] and run.pending() == []


def test_claims_are_exclusive_and_expired_or_dead_ones_are_taken_over(tmp_path):
    lines = []
    run = make_run(tmp_path, n_chunks=3, lease_s=2.0, log=lines.append)
    claims = tmp_path / "claims"
    # chunk 0: a live claim by a worker on another host; chunk 1: an expired one; chunk 2: a dead local pid
    (claims / "chunk-000000.0").write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    (claims / "chunk-000001.0").write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    old = time.time() - 10
    os.utime(claims / "chunk-000001.0", (old, old))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (claims / "chunk-000002.0").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "token": "t"}))
    os.utime(claims / "chunk-000000.0")  # fresh: live for the 2 s lease
    got, t0 = [], time.time()
    for i in run.work(poll_s=0.05):
        got.append((i, round(time.time() - t0, 1)))
        run.save_chunk(i, chunk(i))
    order = [i for i, _ in got]
    assert order == [1, 2, 0], "the expired and the dead claims first; the live one after its lease lapsed"
    assert got[-1][1] >= 1.5
    assert sorted(run.taken_over) == ["chunk-000000", "chunk-000001", "chunk-000002"]
    assert sum("took over" in line for line in lines) == 3
    assert not list(claims.iterdir())


def test_a_claim_held_in_this_process_is_live_until_released(tmp_path):
    run = make_run(tmp_path, n_chunks=1)
    other = make_run(tmp_path, n_chunks=1)
    work = run.work()
    assert next(work) == 0
    assert other._try_claim("chunk-000000", other._claims()) is None
    work.close()  # releases the claim
    assert other._try_claim("chunk-000000", other._claims()) is not None


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        store.write_npz(tmp_path / "a.npz", {"x": np.zeros(2)})
        store.write_json(tmp_path / "m.json", {})
        store.write_dataset(tmp_path / "r.nc", store.to_dataset({"x": np.zeros(2)}, {"x": ["i"]}, {}))
    finally:
        os.umask(old)
    for name in ("a.npz", "m.json", "r.nc"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


def test_out_paths_that_cannot_be_run_directories(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
        store.check_out_dir(f)
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        store.check_out_dir(f / "sub" / "run")
    monkeypatch.setattr(store.os, "access", lambda *a: False)  # root passes every permission check
    with pytest.raises(PermissionError, match="not writable"):
        store.check_out_dir(tmp_path / "new")


def test_plans_are_bounded_before_anything_is_allocated():
    tracemalloc.start()
    with pytest.raises(
        ConfigError,
        match=r"sweep.max_runs: the sweep has 13,000,000,000 runs = 13 \(sweep.init_scales\) × 1,000,000,000",
    ):
        SweepConfig(n_seeds=1_000_000_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000
    with pytest.raises(ConfigError, match="above the limit 19"):
        SweepConfig(init_scales=(1.0, 2.0), n_seeds=10, max_runs=19)
    assert SweepConfig(init_scales=(1.0, 2.0), n_seeds=10, max_runs=20).max_runs == 20
    with pytest.raises(ConfigError, match=r"sweep.data_seeds: must be an integer in \[0, 2\*\*32\)"):
        SweepConfig(data_seeds=(2**32,))


WORKER = """
import os, sys, time
from gflow.runs.runner import ChunkedRun
sys.path.insert(0, sys.argv[3])
from test_run_dir import CONFIG, chunk, fp
out, log, hang, n = sys.argv[1], sys.argv[2], int(sys.argv[4]), int(sys.argv[5])
run = ChunkedRun(out, config=CONFIG, plan={"p": 1}, n_chunks=n, fingerprint=fp(), log=lambda m: None)
open(f"{log}.ready.{os.getpid()}", "w").close()  # start claiming together (process start-up varies under load)
t0 = time.time()
while len([p for p in os.listdir(os.path.dirname(log)) if ".ready." in p]) < int(sys.argv[6]) and time.time() - t0 < 60:
    time.sleep(0.01)
for i in run.work(poll_s=0.02):
    if i == hang:
        open(log + ".hung", "w").close()
        time.sleep(600)
    time.sleep(0.05)  # a chunk takes a moment
    run.save_chunk(i, chunk(i))
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {i}\\n")
print("jax" in sys.modules)
"""


def _workers(tmp_path, n, hang=-1, n_chunks=12):
    here = os.path.dirname(__file__)
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(tmp_path / "run"),
                str(tmp_path / "log"),
                here,
                str(hang),
                str(n_chunks),
                str(n),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def test_three_processes_compute_each_chunk_once(tmp_path):
    """The claims protocol with 3 concurrent processes (the engine's twin is a slow test in
    test_sweep_workers.py): every chunk is computed exactly once, by more than one process."""
    procs = _workers(tmp_path, 3)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0] and all(o.strip() == "False" for o in outs)
    log = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(int(i) for _, i in log) == list(range(12))
    assert len({pid for pid, _ in log}) >= 2
    run = make_run(tmp_path / "run", n_chunks=12)
    assert run.pending() == [] and not list((tmp_path / "run" / "claims").iterdir())
    for i in range(12):
        np.testing.assert_array_equal(run.load_chunk(i)["t_stop"], chunk(i)["t_stop"])


def test_a_process_killed_mid_chunk_has_its_chunk_taken_over(tmp_path):
    (proc,) = _workers(tmp_path, 1, hang=3, n_chunks=6)
    deadline = time.time() + 60
    while not (tmp_path / "log.hung").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert [p.name for p in (tmp_path / "run" / "claims").iterdir()] == ["chunk-000003.0"]
    lines = []
    run = make_run(tmp_path / "run", n_chunks=6, log=lines.append)
    assert run.pending() == [3, 4, 5]
    assert list(run.work(poll_s=0.01)) == [3, 4, 5]
    assert run.taken_over == ["chunk-000003"] and lines == [
        "gflow: took over chunk-000003 (its claim chunk-000003.0 expired or its worker died)"
    ]
