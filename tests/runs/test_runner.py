"""Chunk files of a resumable run: a process killed in the middle of writing a chunk leaves no chunk
that counts as done (the data is written to a temporary file and renamed into place)."""

import signal
import subprocess
import sys
import textwrap

import numpy as np

from gflow.runs.runner import ChunkedRun

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    from gflow.runs.runner import ChunkedRun

    run = ChunkedRun(sys.argv[1], config={"k": 1}, plan={"p": 1}, n_chunks=3)
    run.save_chunk(0, {"v": np.arange(3.0)})
    target = run.chunk_path(1)

    def kill_at_rename(real):
        def wrapped(src, dst, *args, **kwargs):
            if Path(dst).name == target.name:
                assert not target.exists(), "the chunk's final name must appear only by the rename"
                with np.load(src) as z:  # the data is complete in the file being renamed
                    assert np.array_equal(z["v"], np.arange(100_000.0))
                print("write-then-rename observed", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)  # a kill between the write and the rename
            return real(src, dst, *args, **kwargs)
        return wrapped

    os.replace, os.rename = kill_at_rename(os.replace), kill_at_rename(os.rename)
    run.save_chunk(1, {"v": np.arange(100_000.0)})
    print("the chunk was written without a rename", flush=True)
    """
)


def test_kill_during_a_chunk_write_leaves_no_done_chunk(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), str(run_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-2000:]
    assert "write-then-rename observed" in proc.stdout
    run = ChunkedRun(run_dir, config={"k": 1}, plan={"p": 1}, n_chunks=3)  # the rerun's view of the directory
    assert run.is_done(0) and not run.is_done(1) and not run.all_done()
    assert run.pending() == [1, 2]
    assert sorted(p.name for p in (run_dir / "chunks").glob("chunk-*.npz")) == ["chunk-000000.npz"]
    np.testing.assert_array_equal(run.load_chunk(0)["v"], np.arange(3.0))
    run.save_chunk(1, {"v": np.arange(4.0)})  # the resume writes it
    assert run.is_done(1) and run.pending() == [2]
