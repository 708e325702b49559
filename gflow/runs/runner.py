"""Resumable run directories whose work is split into numbered chunks, shared by any number of workers.

Layout of a run directory:
    manifest.json            config, input fingerprint, plan, versions; completed when the run is done
    chunks/chunk-000012.npz  the outputs of chunk 12 with their checksum and input fingerprint
    chunks/corrupt/          chunks that failed verification, moved aside (kept for inspection)
    claims/chunk-000012.3    a worker's claim on chunk 12 (generation 3) while it computes it
    results.nc               all chunks assembled into a labeled xarray.Dataset, written once all are done
                             (directories written before it hold arrays.npz instead)

- **Resume.** A rerun skips the chunks already on disk that pass their checksum, fingerprint and
  identity (each chunk stores its index and the wing's `identity(i)`: which runs it holds). A
  truncated, corrupt, empty, foreign or misnamed chunk is moved to `chunks/corrupt/` with one line on
  stderr, and recomputed.
- **Fenced writers.** The manifest holds a run generation, new when the directory is created or
  started over (`force`). A worker publishes chunks, `results.nc` and the completed manifest only while
  the directory is at the generation it started under; otherwise it raises `Superseded`.
- **Assembly** is claimed like a chunk (`claims/assemble.<generation>`): the other workers wait for it,
  and take it over if its worker dies.
- **Cleanup.** `force` removes only the files named in `GFLOW_FILES`; temporary files of writers that
  died (or older than the lease) are removed when a run opens the directory.
- **Never stale.** A directory whose manifest has another config or input fingerprint (data, dtype,
  numerics versions) is refused (`RunMismatchError`, naming what differs) unless `force=True`, which
  discards whatever results the directory holds.
- **Claimed work.** A worker claims a chunk by creating `claims/chunk-<i>.<generation>` with
  O_CREAT|O_EXCL (atomic on local file systems and NFS), computes it, saves it and deletes the
  claim. While it computes, a heartbeat thread refreshes the claim's mtime every lease/4 seconds.
  A claim whose mtime is older than the lease (`lease_s`), or whose owner is a dead process on this
  host, is taken over by creating the next generation (again exclusively, so exactly one worker
  wins). Workers scan the chunks in order, skip done and claimed ones, and then wait for the
  chunks others hold, taking them over if their lease expires; so N workers started in any way (a
  shell loop, a SLURM job array, `jax.distributed`) compute each chunk once and balance dynamically.
  A worker whose lease lapsed while it was still alive may compute a chunk twice; the results are
  identical and written atomically, so nothing is lost but time.

The two-layer sweep (`gflow.twolayer.sweep`) and the deep-net sweeps use this class.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from .store import (
    ARRAYS,
    CHUNK_INDEX_KEY,
    MANIFEST,
    RESULTS,
    CorruptFileError,
    DiskFullError,
    _pid_alive,
    assembled_name,
    fingerprint_diff,
    numerics_versions,
    read_manifest,
    read_npz,
    result_fields,
    stale_tmp_files,
    tmp_prefix,
    write_assembled,
    write_json,
    write_npz,
)

DEFAULT_LEASE_S = 300.0
_HOST = socket.gethostname()
_HELD: set[str] = set()  # tokens of the claims this process holds now


class RunMismatchError(ValueError):
    """The run directory holds results of a different config, plan or input fingerprint."""


class Superseded(RuntimeError):
    """The run directory was started over (`--force`, or a new config after `--force`) by another worker
    while this one ran: this worker's results belong to the old run and are not published."""


IDENTITY_PREFIX = "__id__"  # chunk members that say which runs a chunk holds (CHUNK_INDEX_KEY among them)
GENERATION_KEY = "__generation__"  # the run generation a chunk was computed under


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
# run did on any device, and so did error_norm='margins'.
ADDED_FIELDS = {
    ("flow", "matmul_precision"): ("highest", True),
    ("flow", "floor_margins"): (True, False),
    ("flow", "error_norm"): ("margins", False),
    ("flow", "sa_final"): (True, False),
}


# The files a run directory's machinery writes, by folder (what `--force` removes; nothing else is).
GFLOW_FILES = {
    ".": re.compile(r"^\.*(results\.nc|arrays\.npz|manifest\.json|summary\.json)(\..*\.tmp)?$"),
    "chunks": re.compile(r"^(chunk-\d{6}\.npz|\.chunk-\d{6}\.npz\..+\.tmp)$"),
    "chunks/corrupt": re.compile(r"^chunk-\d{6}\.npz\.\d+\.\d+$"),
    "claims": re.compile(r"^(chunk-\d{6}|assemble)\.\d+$"),
}


def _with_added_fields(old: dict, new: dict, device) -> dict:
    """`old` config with the fields it predates filled in, so resuming an older run is not refused
    (fields whose old value holds only on CPUs are filled in only for CPU runs). `device` is the old
    manifest's device string (absent while the run is unfinished)."""
    old = {k: dict(v) if isinstance(v, dict) else v for k, v in old.items()}
    on_cpu = not device or "cpu" in str(device).lower()
    for (section, key), (value, cpu_only) in ADDED_FIELDS.items():
        if (
            (on_cpu or not cpu_only)
            and isinstance(old.get(section), dict)
            and key not in old[section]
            and key in new.get(section, {})
        ):
            old[section][key] = value
    return old


class ChunkedRun:
    """A run directory with `n_chunks` chunks; see the module docstring.

    `fingerprint` (from `gflow.runs.store.fingerprint`) is stored in the manifest and in every chunk;
    `identity(i)` gives the arrays that say which runs chunk i holds (e.g. plan indices, α, seed), stored
    in the chunk and compared on every read; `log` receives the one-line notices (moved-aside chunks,
    takeovers); default stderr."""

    def __init__(
        self,
        run_dir,
        *,
        config: dict,
        plan: dict,
        n_chunks: int,
        force: bool = False,
        fingerprint: dict | None = None,
        extra_manifest: dict | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        log=None,
        identity=None,
    ):
        if not (isinstance(lease_s, (int, float)) and lease_s > 0):
            raise ValueError(f"lease_s: must be > 0, got {lease_s!r}")
        self.dir = Path(run_dir)
        self.chunk_dir = self.dir / "chunks"
        self.claim_dir = self.dir / "claims"
        self.n_chunks = n_chunks
        self.lease_s = float(lease_s)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.config, self.plan = _canonical(config), _canonical({**plan, "n_chunks": n_chunks})
        self.fingerprint = fingerprint
        self.fp = fingerprint["all"] if fingerprint else None
        self.identity = identity
        self._verified: dict[int, tuple] = {}  # chunk -> (mtime_ns, size) of the file that passed
        self.taken_over: list[str] = []
        self._tokens: dict[Path, str] = {}
        manifest_path = self.dir / MANIFEST
        manifest = None
        if force:
            self._discard()
        elif manifest_path.is_file():
            manifest = read_manifest(self.dir)
            self._check_manifest(manifest)
        if manifest is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            from .store import git_commit, versions

            manifest = self._create_manifest(
                {
                    "config": self.config,
                    "plan": self.plan,
                    "fingerprint": fingerprint,
                    "generation": uuid.uuid4().hex,
                    "versions": versions(),
                    "git_commit": git_commit(),
                    "complete": False,
                    **(extra_manifest or {}),
                }
            )
        # The directory's own fingerprint: equal inputs (checked by _check_manifest) may hash differently when
        # an older gflow wrote them, and its chunks carry the directory's. (A directory written before the
        # deep wing had fingerprints has none: its chunks are checked against this run's and so recomputed.)
        self.fp = (manifest.get("fingerprint") or {}).get("all", self.fp)
        # A new generation on --force or a new directory; None for a directory written before generations.
        self.generation = manifest.get("generation")
        self._seen_assembly = manifest.get("assembly_id")
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        self.claim_dir.mkdir(parents=True, exist_ok=True)
        for stale in stale_tmp_files(self.dir, self.lease_s) + stale_tmp_files(self.chunk_dir, self.lease_s):
            stale.unlink(missing_ok=True)
            self.log(f"gflow: removed {stale.relative_to(self.dir)}, a temporary file left by a worker that stopped")

    def _create_manifest(self, manifest: dict) -> dict:
        """Publish `manifest` unless another worker created one first (a hard link is exclusive); the
        manifest the directory holds afterwards (another worker's is checked like a resumed one)."""
        staged = self.dir / f"{tmp_prefix(MANIFEST)}new.tmp"
        write_json(staged, manifest)
        try:
            try:
                os.link(staged, self.dir / MANIFEST)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: exclusive only up to a race between workers
                if (self.dir / MANIFEST).exists():
                    raise FileExistsError(str(self.dir / MANIFEST)) from None
                os.replace(staged, self.dir / MANIFEST)
        except FileExistsError:
            manifest = read_manifest(self.dir)
            self._check_manifest(manifest)
        finally:
            staged.unlink(missing_ok=True)
        return manifest

    def _check_manifest(self, old: dict) -> None:
        old_config = _with_added_fields(old.get("config", {}), self.config, old.get("device", ""))
        differs = _diff_keys(
            {"config": result_fields(old_config), "plan": old.get("plan", {})},
            {"config": result_fields(self.config), "plan": self.plan},
        )
        old_fp = old.get("fingerprint")
        if self.fingerprint is not None:
            if old_fp:
                differs += [
                    p
                    for p in fingerprint_diff(old_fp, self.fingerprint)
                    if p != "config" and not (p == "dtype" and "config.flow.dtype" in differs)
                ]
                if "numerics" in differs:
                    now = {k: v for k, v in numerics_versions().items() if old.get("versions", {}).get(k) != v}
                    differs[differs.index("numerics")] = (
                        "numerics versions ("
                        + ", ".join(f"{k} {old.get('versions', {}).get(k)} → {v}" for k, v in now.items())
                        + ")"
                    )
            elif not str(self.fingerprint.get("data", "")).startswith("config:"):
                differs.append("data (the directory predates input fingerprints)")
        if differs:
            shown = ", ".join(differs[:6]) + (" …" if len(differs) > 6 else "")
            raise RunMismatchError(
                f"{self.dir}: holds a run with a different config or inputs ({shown}); "
                "use another --out directory, or --force to discard it"
            )

    def _discard(self) -> None:
        """Remove every result this directory holds: the files gflow names (`GFLOW_FILES`: chunks, claims,
        chunks moved aside, temporary files, results, manifest); any other file stays, and so do the
        folders that still hold one."""
        for d in (self.chunk_dir, self.claim_dir):
            if d.exists() and not d.is_dir():
                d.unlink()
        for sub, pattern in GFLOW_FILES.items():
            folder = self.dir / sub
            if not folder.is_dir():
                continue
            for name in os.listdir(folder):
                path = folder / name
                if pattern.match(name) and (path.is_file() or path.is_symlink()):
                    path.unlink(missing_ok=True)
                elif pattern.match(name) and path.is_dir() and name in (RESULTS, ARRAYS, MANIFEST):
                    shutil.rmtree(path)
        for sub in ("chunks/corrupt", "chunks", "claims"):
            with contextlib.suppress(OSError):  # kept when it holds files gflow did not write
                (self.dir / sub).rmdir()

    # --- chunks -----------------------------------------------------------------------------------
    def chunk_path(self, i: int) -> Path:
        return self.chunk_dir / f"chunk-{i:06d}.npz"

    def _move_aside(self, i: int, why: str) -> None:
        path = self.chunk_path(i)
        dest_dir = self.chunk_dir / "corrupt"
        dest_dir.mkdir(exist_ok=True)
        dest = dest_dir / f"{path.name}.{time.time_ns()}.{os.getpid()}"
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            return  # another worker moved it first
        self.log(f"gflow: chunk {i} is bad ({why}); moved to {dest.relative_to(self.dir)}, it will be recomputed")

    def _check_chunk(self, i: int, arrays: dict) -> dict:
        """The arrays of chunk i less its identity members; CorruptFileError if they say the file holds
        other runs (another chunk's, copied or renamed) or an earlier run generation's results."""
        path = self.chunk_path(i)
        gen = arrays.pop(GENERATION_KEY, None)
        ids = {k[len(IDENTITY_PREFIX) :]: arrays.pop(k) for k in list(arrays) if k.startswith(IDENTITY_PREFIX)}
        held = ids.pop(CHUNK_INDEX_KEY[len(IDENTITY_PREFIX) :], None)
        if held is not None and int(held) != i:
            raise CorruptFileError(f"{path}: holds the runs of chunk {int(held)}, not of chunk {i}")
        if self.identity is not None and (held is not None or ids):
            for name, want in self.identity(i).items():
                have = ids.get(name)
                if have is None or np.shape(have) != np.shape(want) or not np.array_equal(have, want, equal_nan=True):
                    raise CorruptFileError(f"{path}: holds other runs than chunk {i} of this plan ({name} differs)")
        if gen is not None and self.generation is not None and str(gen) != self.generation:
            raise CorruptFileError(
                f"{path}: computed for another run generation (an earlier run of this directory, or another directory)"
            )
        return arrays

    def _identity_arrays(self, i: int) -> dict[str, np.ndarray]:
        ids = {CHUNK_INDEX_KEY: np.asarray(i)}
        if self.identity is not None:
            ids.update({IDENTITY_PREFIX + k: np.asarray(v) for k, v in self.identity(i).items()})
        if self.generation is not None:
            ids[GENERATION_KEY] = np.asarray(self.generation)
        return ids

    def is_done(self, i: int) -> bool:
        """Whether chunk i is on disk and passes its checksum, fingerprint and identity (it holds chunk
        i's runs, of this run generation). A chunk that fails is moved aside (one line on stderr) and
        counts as not done."""
        path = self.chunk_path(i)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if self._verified.get(i) == (st.st_mtime_ns, st.st_size):
            return True
        try:
            self._check_chunk(i, read_npz(path, fingerprint=self.fp, require_checksum=True))
        except FileNotFoundError:
            return False
        except CorruptFileError as e:
            self.check_generation()  # a worker of a superseded run never moves the new run's chunks aside
            self._move_aside(i, str(e).split(": ", 1)[-1])
            return False
        self._verified[i] = (st.st_mtime_ns, st.st_size)
        return True

    def pending(self) -> list[int]:
        """Chunks not (validly) on disk yet."""
        return [i for i in range(self.n_chunks) if not self.is_done(i)]

    def all_done(self) -> bool:
        return not self.pending()

    def save_chunk(self, i: int, arrays: dict[str, np.ndarray]) -> None:
        """Publish chunk i, with its identity, under this worker's run generation (`Superseded` if the
        directory has moved on to a newer one)."""
        self.check_generation()
        try:
            write_npz(self.chunk_path(i), {**arrays, **self._identity_arrays(i)}, fingerprint=self.fp)
        except OSError:
            self.check_generation()  # --force removed the folder or the temporary file under this worker
            raise

    def load_chunk(self, i: int) -> dict[str, np.ndarray]:
        """The verified arrays of chunk i (CorruptFileError if it fails verification)."""
        return self._check_chunk(i, read_npz(self.chunk_path(i), fingerprint=self.fp, require_checksum=True))

    # --- fencing ----------------------------------------------------------------------------------
    def check_generation(self) -> None:
        """Raise `Superseded` if the directory's manifest is gone or names another run generation than
        the one this worker started under (someone ran `--force`, maybe with a new config)."""
        if self.generation is None:
            return  # a directory written before generations: nothing to fence by
        try:
            now = read_manifest(self.dir).get("generation")
        except (FileNotFoundError, CorruptFileError):
            now = None
        if now != self.generation:
            raise Superseded(
                f"{self.dir}: the directory was started over by another run (--force) while this worker "
                "ran; this worker stops without publishing its results (they belong to the old run)"
            )

    def assembled_by_another(self) -> bool:
        """Whether another worker completed the assembly since this one opened the directory."""
        try:
            manifest = read_manifest(self.dir)
        except (FileNotFoundError, CorruptFileError):
            return False
        return (
            manifest.get("complete") is True
            and manifest.get("assembly_id") not in (None, self._seen_assembly)
            and manifest.get("generation") == self.generation
            and ((self.dir / RESULTS).is_file() or (self.dir / ARRAYS).is_file())
        )

    # --- claims -----------------------------------------------------------------------------------
    def _claims(self) -> dict[str, tuple[int, Path]]:
        """claim key (e.g. 'chunk-000012', 'assemble') -> (generation, path) of its newest claim."""
        out: dict[str, tuple[int, Path]] = {}
        for name in os.listdir(self.claim_dir):
            key, _, gen = name.rpartition(".")
            if key and gen.isdigit() and (key not in out or int(gen) > out[key][0]):
                out[key] = (int(gen), self.claim_dir / name)
        return out

    def _claim_is_live(self, path: Path) -> bool:
        try:
            age = time.time() - path.stat().st_mtime
            owner = json.loads(path.read_text() or "{}")
        except FileNotFoundError:
            return False
        except (ValueError, OSError):
            owner = {}  # being written right now, or garbage: judge by age only
        if owner.get("host") == _HOST and isinstance(owner.get("pid"), int):
            if owner["pid"] == os.getpid():
                return owner.get("token") in _HELD
            if not _pid_alive(owner["pid"]):
                return False
        return age < self.lease_s

    def _try_claim(self, key: str, claims: dict) -> Path | None:
        """Claim `key` exclusively (taking over a dead or expired claim); the claim path, or None."""
        gen, old = claims.get(key, (-1, None))
        if old is not None and self._claim_is_live(old):
            return None
        path = self.claim_dir / f"{key}.{gen + 1}"
        token = uuid.uuid4().hex
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as f:
            json.dump({"host": _HOST, "pid": os.getpid(), "token": token, "claimed_at": time.time()}, f)
        _HELD.add(token)
        self._tokens[path] = token
        if old is not None:
            old.unlink(missing_ok=True)
            self.taken_over.append(key)
            self.log(f"gflow: took over {key} (its claim {old.name} expired or its worker died)")
        return path

    def _release(self, path: Path) -> None:
        _HELD.discard(self._tokens.pop(path, None))
        path.unlink(missing_ok=True)

    def work(self, poll_s: float | None = None):
        """Yield the chunks this worker should compute now, each claimed until the consumer asks for
        the next (use `contextlib.closing` so an exception releases the claim). Returns when every
        chunk is done; while other workers hold the last chunks, it waits, and takes over the
        claims whose lease expires."""
        poll_s = min(1.0, self.lease_s / 10) if poll_s is None else poll_s
        while True:
            waiting = False
            claims = self._claims()
            for i in range(self.n_chunks):
                if self.is_done(i):
                    continue
                path = self._try_claim(self.chunk_path(i).stem, claims)
                if path is None:
                    waiting = True
                    continue
                try:
                    if self.is_done(i):  # finished by another worker since the scan
                        continue
                    with self._heartbeat(path):
                        yield i
                finally:
                    self._release(path)
                claims = self._claims()
            if not waiting:
                return
            time.sleep(poll_s)

    @contextlib.contextmanager
    def _heartbeat(self, path: Path):
        stop = threading.Event()

        def beat():
            while not stop.wait(self.lease_s / 4):
                with contextlib.suppress(OSError):
                    os.utime(path)

        t = threading.Thread(target=beat, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()

    @contextlib.contextmanager
    def assembly(self):
        """Claim the assembly of a run whose chunks are all done: yields True to the one worker that
        should assemble (the claim is held until the block ends), False to the others."""
        path = self._try_claim("assemble", self._claims())
        if path is None:
            yield False
            return
        try:
            with self._heartbeat(path):
                yield True
        finally:
            self._release(path)

    def finish(self, arrays: dict[str, np.ndarray], manifest_update: dict) -> None:
        """Write the assembled arrays as a labeled Dataset (`results.nc`, dims from `manifest_update["dims"]`),
        then the completed manifest (the marker of a finished run), each published only while the
        directory is still at this worker's run generation (`Superseded` otherwise)."""
        self.check_generation()
        manifest = read_manifest(self.dir)
        manifest.update(manifest_update)
        manifest["complete"] = True
        manifest["assembly_id"] = uuid.uuid4().hex
        target, other = assembled_name()
        staged = self.dir / f"{tmp_prefix(target)}staged.tmp"
        try:
            write_assembled(staged, arrays, manifest)
            self.check_generation()
            os.replace(staged, self.dir / target)
        except DiskFullError as e:
            raise DiskFullError(self.dir / target, e) from None
        except OSError:
            self.check_generation()  # --force removed the staged file under this worker
            raise
        finally:
            staged.unlink(missing_ok=True)
        (self.dir / other).unlink(missing_ok=True)  # an older assembly of this directory
        self.check_generation()
        write_json(self.dir / MANIFEST, manifest)
