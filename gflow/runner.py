"""Resumable run directories whose work is split into numbered chunks.

Layout of a run directory:
    manifest.json            config, plan (how the work is chunked), versions; updated when done
    chunks/chunk-000012.npz  the outputs of chunk 12, written atomically when it finishes
    arrays.npz               all chunks assembled into labeled arrays, written once all are done

A rerun on the same directory skips the chunks already on disk, so a killed sweep loses at most the
chunks in flight. A rerun with a different config or plan is refused (`RunMismatchError`) unless
`force=True`, which discards the old results. With several processes (hosts), process p of P takes
chunks i with i % P == p; chunk files have distinct names, so processes never clobber each other.

Both the two-layer sweep (`gflow.sweep`) and the deep-net sweeps use this class.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .store import ARRAYS, MANIFEST, write_json, write_npz


class RunMismatchError(ValueError):
    """The run directory holds results of a different config or plan."""


def _canonical(obj):
    """JSON round trip, so tuples and lists (and float formatting) compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


# Config fields added after run directories were first written: (section, key) -> (the value every
# older run effectively had, whether that holds only for runs on the CPU). Matmul precision makes no
# difference on CPUs, but older GPU runs may have used TF32; floor_margins=True is what every older
# run did on any device.
ADDED_FIELDS = {("flow", "matmul_precision"): ("highest", True), ("flow", "floor_margins"): (True, False)}


def _with_added_fields(old: dict, new: dict, device) -> dict:
    """`old` config with the fields it predates filled in, so resuming an older run is not refused
    (fields whose old value holds only on CPUs are filled in only for CPU runs). `device` is the old
    manifest's device string (absent while the run is unfinished)."""
    old = {k: dict(v) if isinstance(v, dict) else v for k, v in old.items()}
    on_cpu = not device or "cpu" in str(device).lower()
    for (section, key), (value, cpu_only) in ADDED_FIELDS.items():
        if (on_cpu or not cpu_only) and isinstance(old.get(section), dict) and key not in old[section] and key in new.get(section, {}):
            old[section][key] = value
    return old


def chunk_owner(chunk: int, process_count: int) -> int:
    """The process that computes `chunk` (round robin)."""
    return chunk % process_count


class ChunkedRun:
    """A run directory with `n_chunks` chunks; see the module docstring."""

    def __init__(
        self,
        run_dir,
        *,
        config: dict,
        plan: dict,
        n_chunks: int,
        force: bool = False,
        process_index: int = 0,
        process_count: int = 1,
        extra_manifest: dict | None = None,
    ):
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index: must be in [0, {process_count}), got {process_index}")
        self.dir = Path(run_dir)
        self.chunk_dir = self.dir / "chunks"
        self.n_chunks = n_chunks
        self.process_index, self.process_count = process_index, process_count
        self.config, self.plan = _canonical(config), _canonical({**plan, "n_chunks": n_chunks})
        manifest_path = self.dir / MANIFEST
        if manifest_path.is_file():
            old = json.loads(manifest_path.read_text())
            old_config = _with_added_fields(old.get("config", {}), self.config, old.get("device", ""))
            differs = _diff_keys({"config": old_config, "plan": old.get("plan", {})},
                                 {"config": self.config, "plan": self.plan})
            if differs and not force:
                shown = ", ".join(differs[:6]) + (" …" if len(differs) > 6 else "")
                raise RunMismatchError(
                    f"{self.dir}: holds a run with a different config ({shown}); "
                    "use another --out directory, or --force to discard it"
                )
            if differs:
                self._discard()
        if not manifest_path.is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            from .store import git_commit, versions

            write_json(manifest_path, {"config": self.config, "plan": self.plan, "versions": versions(),
                                       "git_commit": git_commit(), "complete": False, **(extra_manifest or {})})
        self.chunk_dir.mkdir(parents=True, exist_ok=True)

    def _discard(self) -> None:
        shutil.rmtree(self.chunk_dir, ignore_errors=True)
        for name in (ARRAYS, MANIFEST):
            (self.dir / name).unlink(missing_ok=True)

    def chunk_path(self, i: int) -> Path:
        return self.chunk_dir / f"chunk-{i:06d}.npz"

    def is_done(self, i: int) -> bool:
        return self.chunk_path(i).is_file()

    def mine(self) -> list[int]:
        """Chunks this process is responsible for."""
        return [i for i in range(self.n_chunks) if chunk_owner(i, self.process_count) == self.process_index]

    def pending(self) -> list[int]:
        """This process's chunks that are not on disk yet."""
        return [i for i in self.mine() if not self.is_done(i)]

    def all_done(self) -> bool:
        return all(self.is_done(i) for i in range(self.n_chunks))

    def save_chunk(self, i: int, arrays: dict[str, np.ndarray]) -> None:
        write_npz(self.chunk_path(i), arrays)

    def load_chunk(self, i: int) -> dict[str, np.ndarray]:
        with np.load(self.chunk_path(i)) as z:
            return {k: z[k] for k in z.files}

    def finish(self, arrays: dict[str, np.ndarray], manifest_update: dict) -> None:
        """Write the assembled arrays, then the completed manifest (the marker of a finished run)."""
        write_npz(self.dir / ARRAYS, arrays)
        manifest = json.loads((self.dir / MANIFEST).read_text())
        manifest.update(manifest_update)
        manifest["complete"] = True
        write_json(self.dir / MANIFEST, manifest)
