"""The chunk loop both wings share (`gflow.runs.loop`), driven by a numpy callback: no engine involved."""

import time

import numpy as np
import pytest

from gflow.runs.loop import TimeLimit, run_chunks

N_CHUNKS, PER = 4, 3  # 4 chunks of 3 runs; the last holds 2


def runs_in(i):
    return PER if i < N_CHUNKS - 1 else 2


def _loop(out=None, calls=None, sleep_s=0.0, **kw):
    calls = [] if calls is None else calls

    def compute(i, report):
        calls.append(i)
        time.sleep(sleep_s)
        report(1)  # one run reported early; the loop credits the rest
        return {"x": np.arange(runs_in(i)) + 10 * i}

    def assemble(chunks, meta):
        x = np.concatenate([c["x"] for c in chunks])
        return {"x": x}, {"x": ["run"]}, {**meta, "total": int(x.sum())}

    return run_chunks(
        N_CHUNKS,
        compute,
        assemble,
        runs_in=runs_in,
        label="t",
        out=out,
        config={"a": 1},
        plan={"p": 1},
        progress=False,
        **kw,
    )


def test_in_memory_and_stored_give_the_same_arrays(tmp_path):
    mem = _loop()
    want = np.concatenate([np.arange(runs_in(i)) + 10 * i for i in range(N_CHUNKS)])
    np.testing.assert_array_equal(mem.arrays["x"], want)
    assert (
        mem.meta["chunks_computed"] == N_CHUNKS and mem.meta["n_chunks"] == N_CHUNKS and mem.meta["total"] == want.sum()
    )
    stored = _loop(tmp_path / "run")
    np.testing.assert_array_equal(stored.arrays["x"], want)
    assert stored.meta["chunks_taken_over"] == [] and (tmp_path / "run" / "chunks" / "chunk-000003.npz").is_file()


def test_resume_computes_only_missing_chunks(tmp_path):
    out = tmp_path / "run"
    _loop(out)
    (out / "chunks" / "chunk-000002.npz").unlink()
    calls = []
    again = _loop(out, calls)
    assert calls == [2] and again.meta["chunks_computed"] == 1
    assert again.arrays["x"][6:9].tolist() == [20, 21, 22]


def test_time_limit_keeps_finished_chunks(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TimeLimit, match="0 of 4 chunks done") as e:
        _loop(out, time_limit_s=-1.0)
    assert (e.value.done, e.value.total) == (0, 4)
    calls = []
    _loop(out, calls)
    assert calls == [0, 1, 2, 3]


def test_compute_s_counts_every_session_wall_s_this_one(tmp_path):
    """A resumed run's manifest keeps the compute seconds of the chunks an earlier session computed
    (each chunk file stores its own), while wall_s is this session's loop; the wing's `assemble` never
    sees the stored seconds. Each chunk sleeps 0.2 s: lower bounds, not timings."""
    out = tmp_path / "run"
    first = _loop(out, sleep_s=0.2)
    assert first.meta["compute_s"] >= N_CHUNKS * 0.2 and set(first.arrays) == {"x"}
    for i in (1, 3):
        (out / "chunks" / f"chunk-{i:06d}.npz").unlink()
    calls = []
    again = _loop(out, calls, sleep_s=0.2)
    assert calls == [1, 3] and again.meta["chunks_computed"] == 2
    assert again.meta["compute_s"] >= N_CHUNKS * 0.2  # the first session's two chunks count too
    assert _loop().meta["compute_s"] >= 0  # in memory as well


def test_compute_s_is_none_for_chunks_written_before_it_existed(tmp_path):
    from gflow.runs.loop import COMPUTE_KEY
    from gflow.runs.store import FINGERPRINT_KEY, write_npz

    out = tmp_path / "run"
    _loop(out)
    path = out / "chunks" / "chunk-000000.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("__")}
        fingerprint = z[FINGERPRINT_KEY].item() if FINGERPRINT_KEY in z.files else None
    assert COMPUTE_KEY in arrays
    del arrays[COMPUTE_KEY]
    write_npz(path, arrays, fingerprint=fingerprint)
    again = _loop(out)
    assert again.meta["chunks_computed"] == 0 and again.meta["compute_s"] is None
