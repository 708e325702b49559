"""The chunk loop both wings run: claim a chunk, compute it through the wing's callback, save it; then
assemble the chunks into named arrays and write them once.

    result = run_chunks(n_chunks, compute, assemble, runs_in=..., label="sweep", out=DIR, config=..., plan=...)

- `compute(i, report)` returns the arrays of chunk i (a dict of numpy arrays); it may call `report(k)` as
  k of its runs finish (the loop credits whatever the chunk did not report when it returns).
- `assemble(chunks, meta)` turns the list of every chunk's arrays (in chunk order) into
  `(arrays, dims, meta)`: the named arrays, the dims of each, and what the manifest records. `meta`
  holds the loop's own accounting: wall_s (this session), compute_s (the seconds every chunk took to
  compute, whichever session computed it: each chunk file keeps its own under `COMPUTE_KEY`; None when
  a chunk predates that), compile_s and n_compiles (XLA compilations, counted from JAX's monitoring
  events), chunks_computed, n_chunks and, with a store, chunks_taken_over.
- With `out`, chunks live in a `ChunkedRun` (checksummed, fingerprinted, identified by `identity(i)`,
  claimed, resumable; see `gflow.runs.runner`) and the worker that wins the assembly writes the result
  (`ChunkedRun.finish`); the other workers wait until it is written and get None. If the assembler
  dies, its claim lapses like a chunk's and a waiting worker assembles instead. Without `out`, chunks
  stay in memory.
- `time_limit_s`: no chunk is started once that many seconds have passed since `t_start` (default: the
  call); `TimeLimit` is raised with the finished chunks saved.

The loop knows nothing of either engine: it imports JAX only to count compilations and name the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from .compile_log import track_compiles
from .progress import Progress
from .runner import DEFAULT_LEASE_S, ChunkedRun

COMPUTE_KEY = "_compute_s"  # a chunk's compute seconds, stored beside its arrays; popped before `assemble`


class TimeLimit(RuntimeError):
    """The loop stopped between chunks at its time limit; the run directory holds the finished chunks and
    a rerun resumes from there."""

    def __init__(self, done: int, total: int, elapsed_s: float):
        super().__init__(f"time limit: {done} of {total} chunks done after {elapsed_s:.0f} s; rerun to resume")
        self.done, self.total, self.elapsed_s = done, total, elapsed_s


@dataclasses.dataclass
class Assembled:
    """Named arrays (`arrays[name]` has dims `dims[name]`) and the metadata the manifest records."""

    arrays: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    meta: dict


def device_meta() -> dict[str, str]:
    """The backend and the first device, e.g. {'backend': 'cpu', 'device': 'cpu:cpu'}."""
    import jax

    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}"}


def run_chunks(
    n_chunks: int,
    compute: Callable[[int, Callable[[int], None]], dict],
    assemble: Callable[[list[dict], dict], tuple[dict, dict, dict]],
    *,
    runs_in: Callable[[int], int],
    label: str,
    out=None,
    config: dict | None = None,
    plan: dict | None = None,
    fingerprint: dict | None = None,
    extra_manifest: dict | None = None,
    force: bool = False,
    lease_s: float = DEFAULT_LEASE_S,
    progress: bool = True,
    time_limit_s: float | None = None,
    t_start: float | None = None,
    identity: Callable[[int], dict] | None = None,
) -> Assembled | None:
    """Compute the `n_chunks` chunks (chunk i holds `runs_in(i)` runs) and assemble them; see the module
    docstring. Returns None to a worker that finished its chunks while another one assembles."""
    t_start = time.perf_counter() if t_start is None else t_start
    store = None
    if out is not None:
        assert config is not None and plan is not None, "a run directory records its config and plan"
        store = ChunkedRun(
            out,
            config=config,
            plan=plan,
            n_chunks=n_chunks,
            force=force,
            fingerprint=fingerprint,
            lease_s=lease_s,
            extra_manifest=extra_manifest,
            identity=identity,
        )
        work = store.work()
        done_runs = sum(runs_in(i) for i in range(n_chunks) if store.is_done(i))
    else:
        work, done_runs = iter(range(n_chunks)), 0
    total = sum(runs_in(i) for i in range(n_chunks))
    bar = Progress(total, label, enabled=progress, already_done=done_runs)
    in_memory: dict[int, dict] = {}
    computed: list[int] = []

    def one(i: int) -> dict:
        left = [runs_in(i)]

        def report(k: int) -> None:
            k = min(k, left[0])
            left[0] -= k
            bar.update(k)

        t0 = time.perf_counter()
        arrays = compute(i, report)
        arrays = {**arrays, COMPUTE_KEY: np.asarray(time.perf_counter() - t0)}
        if left[0]:
            bar.update(left[0])
        computed.append(i)
        return arrays

    t_loop = time.perf_counter()
    with track_compiles() as compiles, contextlib.closing(work) if store is not None else contextlib.nullcontext():
        for i in work:
            elapsed = time.perf_counter() - t_start
            if time_limit_s is not None and elapsed > time_limit_s:
                bar.close()
                raise TimeLimit(n_chunks - len(store.pending()) if store else len(in_memory), n_chunks, elapsed)
            arrays = one(i)
            if store is not None:
                store.save_chunk(i, arrays)
            else:
                in_memory[i] = arrays
        bar.close()
        wall = time.perf_counter() - t_loop
        if store is None:
            chunks = [in_memory[i] for i in range(n_chunks)]
        else:
            poll_s = min(1.0, store.lease_s / 10)
            while True:  # wait for whoever holds the assembly; take it over if their claim lapses
                if store.assembled_by_another():
                    return None
                with store.assembly() as mine:
                    if mine and not store.assembled_by_another():
                        chunks = []
                        for i in range(n_chunks):
                            if not store.is_done(i):  # went bad after it was written: recompute it here
                                store.save_chunk(i, one(i))
                            chunks.append(store.load_chunk(i))
                        return _assemble(store, chunks, assemble, compiles, computed, wall)
                store.check_generation()
                time.sleep(poll_s)
    return _assemble(None, chunks, assemble, compiles, computed, wall)


def _assemble(store, chunks, assemble, compiles, computed, wall) -> Assembled:
    seconds = [ch.pop(COMPUTE_KEY, None) for ch in chunks]
    compute_s = None if any(s is None for s in seconds) else float(sum(float(s) for s in seconds))
    meta = {
        "wall_s": wall,
        "compute_s": compute_s,
        "compile_s": compiles.seconds,
        "n_compiles": compiles.count,
        "chunks_computed": len(computed),
        "n_chunks": len(chunks),
    }
    if store is not None:
        meta["chunks_taken_over"] = store.taken_over
    arrays, dims, meta = assemble(chunks, meta)
    if store is not None:
        store.finish(arrays, {**meta, "dims": dims})
    return Assembled(arrays, dims, meta)
