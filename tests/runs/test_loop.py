"""The chunk loop both wings share (`gflow.runs.loop`), driven by a numpy callback: no engine involved."""

import numpy as np
import pytest

from gflow.runs.loop import TimeLimit, run_chunks

N_CHUNKS, PER = 4, 3  # 4 chunks of 3 runs; the last holds 2


def runs_in(i):
    return PER if i < N_CHUNKS - 1 else 2


def _loop(out=None, calls=None, **kw):
    calls = [] if calls is None else calls

    def compute(i, report):
        calls.append(i)
        report(1)  # one run reported early; the loop credits the rest
        return {"x": np.arange(runs_in(i)) + 10 * i}

    def assemble(chunks, meta):
        x = np.concatenate([c["x"] for c in chunks])
        return {"x": x}, {"x": ["run"]}, {**meta, "total": int(x.sum())}

    return run_chunks(N_CHUNKS, compute, assemble, runs_in=runs_in, label="t", out=out, config={"a": 1},
                      plan={"p": 1}, progress=False, **kw)


def test_in_memory_and_stored_give_the_same_arrays(tmp_path):
    mem = _loop()
    want = np.concatenate([np.arange(runs_in(i)) + 10 * i for i in range(N_CHUNKS)])
    np.testing.assert_array_equal(mem.arrays["x"], want)
    assert mem.meta["chunks_computed"] == N_CHUNKS and mem.meta["n_chunks"] == N_CHUNKS and mem.meta["total"] == want.sum()
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
