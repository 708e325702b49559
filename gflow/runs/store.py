"""Run directories: `manifest.json` (config, input fingerprint, versions, device, timing, status counts,
array dims) and `results.nc`, the assembled result as a labeled `xarray.Dataset` in netCDF-4 (docs/run-directories.md,
"Results on disk", says why netCDF). `load_run` returns that Dataset; older directories hold `arrays.npz`
instead, which `load_run` reads the same way.

- Every file is written atomically (a temporary file in the same directory, then renamed) with the
  permissions the umask allows (0666 & ~umask), so a shared results directory stays readable.
- Every .npz written here carries a SHA-256 of its arrays (member `__sha256__`), and `results.nc` one of
  its variables (attribute `sha256`), checked on reading: a truncated, corrupt or empty file raises
  `CorruptFileError` instead of returning wrong numbers.
- `fingerprint` hashes the inputs that decide the results (effective config, data, dtype, versions of
  the numerical packages); a run directory with a different fingerprint is never resumed.

This module imports no engine (no JAX, and xarray only when a Dataset is built): the command line stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
RESULTS = "results.nc"
ARRAYS = "arrays.npz"  # the assembled arrays of directories written before results.nc
NETCDF_ENGINE = (
    "netcdf4"  # how results.nc is written and read (docs/run-directories.md, "What a run directory holds": measured)
)
CHECKSUM_KEY = "__sha256__"
FINGERPRINT_KEY = "__fingerprint__"
CHUNK_INDEX_KEY = "__id__chunk"  # the chunk index a chunk file holds (gflow.runs.runner: chunk identity)
# Packages whose version can change the numbers a run produces.
NUMERICS_PACKAGES = ("gflow", "jax", "jaxlib", "diffrax", "equinox", "optimistix")


class CorruptFileError(ValueError):
    """A results file that cannot be read back, or whose checksum does not match its contents."""


class DiskFullError(OSError):
    """A write that failed because the file system holding `filename` is full (or over its quota)."""

    why: str  # the cause in words (the OS's message, or the exception)

    def __init__(self, path, cause: BaseException):
        why: object
        if isinstance(cause, DiskFullError):  # the same fault, named after the file it was written for
            why = cause.why
        elif isinstance(cause, OSError) and cause.strerror:
            why = cause.strerror
        else:
            why = f"{type(cause).__name__}: {cause}"
        self.why = " ".join(str(why).split())
        super().__init__(errno.ENOSPC, f"cannot write it: the disk is full ({self.why})", str(path))


DISK_FULL_BYTES = 1 << 20  # a failed write with less than this free beside it is blamed on a full disk


def _disk_full(directory: Path, e: BaseException) -> bool:
    """Whether the failed write `e` in `directory` ran out of space: ENOSPC/EDQUOT, or any other error
    (the netCDF library reports `NetCDF: HDF error`) while less than `DISK_FULL_BYTES` are free there
    (measured before the partial file is removed)."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(e, DiskFullError):
        return False
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < DISK_FULL_BYTES


def stale_tmp_files(directory, max_age_s: float) -> list[Path]:
    """Temporary files gflow left in `directory` (named by `tmp_prefix`) whose writer is a dead process on
    this host, or that have not changed for `max_age_s` seconds (a writer on another host)."""
    out: list[Path] = []
    host, now = socket.gethostname(), time.time()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return out
    for name in names:
        path = Path(directory) / name
        m = TMP_PATTERN.match(name)
        legacy = (
            name.startswith(".")
            and name.endswith(".tmp")
            and m is None
            and re.match(r"^\.[^/]+\.[A-Za-z0-9_]{8}\.tmp$", name)
        )
        if not (m or legacy):
            continue
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        dead = m is not None and m["host"] == host and not _pid_alive(int(m["pid"]))
        if dead or age > max_age_s:
            out.append(path)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)@(?P<host>[^/]*)-[A-Za-z0-9_]+\.tmp$")


def tmp_prefix(name: str) -> str:
    """The prefix of a temporary file gflow writes beside `name`: it names the writing process and
    host, so a later run can tell a dead writer's leftover (`stale_tmp_files`)."""
    return f".{name}.tmp-{os.getpid()}@{socket.gethostname()}-"


@contextlib.contextmanager
def _atomic(path: Path):
    """Yield (fd, name) of a temporary file beside `path`, renamed to `path` when the block succeeds and
    removed when it fails. The caller writes, flushes and fsyncs it. A write that fails because the disk
    is full raises `DiskFullError` naming `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=tmp_prefix(path.name), suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; results files follow the umask
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException as e:
        full = isinstance(e, Exception) and _disk_full(path.parent, e)
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full:
            raise DiskFullError(path, e) from None
        raise


def _atomic_write(path: Path, write) -> None:
    with _atomic(path) as (fd, _), os.fdopen(fd, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2, sort_keys=False).encode()))


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of `arrays` (in name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        v = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{v.dtype.str}|{v.shape}|".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray], fingerprint: str | None = None) -> None:
    """Write `arrays` with their checksum (and the input fingerprint, if given) atomically."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    extra = {CHECKSUM_KEY: np.asarray(arrays_digest(arrays))}
    if fingerprint is not None:
        extra[FINGERPRINT_KEY] = np.asarray(fingerprint)
    payload: dict[str, Any] = {**arrays, **extra}
    _atomic_write(Path(path), lambda f: np.savez(f, **payload))


def read_npz(path, *, fingerprint: str | None = None, require_checksum: bool = False) -> dict[str, np.ndarray]:
    """The arrays of an .npz written by `write_npz`, verified against its checksum.

    Raises `CorruptFileError` (naming the problem) for an unreadable, truncated or empty file, a
    checksum mismatch, a missing checksum when `require_checksum`, or a fingerprint other than
    `fingerprint` (when given)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        raise CorruptFileError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    stored = arrays.pop(CHECKSUM_KEY, None)
    stored_fp = arrays.pop(FINGERPRINT_KEY, None)
    if stored is None:
        if require_checksum:
            raise CorruptFileError(f"{path}: has no checksum")
    elif str(stored) != arrays_digest(arrays):
        raise CorruptFileError(f"{path}: checksum mismatch")
    if fingerprint is not None and (stored_fp is None or str(stored_fp) != fingerprint):
        raise CorruptFileError(f"{path}: holds results of different inputs (fingerprint {stored_fp} ≠ {fingerprint})")
    return arrays


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def numerics_versions() -> dict[str, str]:
    out = {}
    for pkg in NUMERICS_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def data_fingerprint(arrays: dict[str, np.ndarray] | None = None, *, config: dict | None = None) -> str:
    """Hash of a run's data: of the arrays themselves (user data), or of the config that generates
    them (data section and data seeds)."""
    if arrays is not None:
        return "arrays:" + arrays_digest({k: np.asarray(v) for k, v in arrays.items()})[:16]
    return "config:" + _hash(config)


# Config fields that cannot change any result (only what is accepted, or the loop that computes it: the lean
# loop and diffeqsolve take the same steps bit for bit): left out of the fingerprint and
# not compared when a run directory is resumed. (section, key), in both wings.
NON_RESULT_FIELDS = {("sweep", "max_runs"), ("sweep", "max_memory_gb"), ("flow", "integrator")}


def result_fields(config: dict) -> dict:
    """`config` less its `NON_RESULT_FIELDS`."""
    return {
        s: ({k: v for k, v in vals.items() if (s, k) not in NON_RESULT_FIELDS} if isinstance(vals, dict) else vals)
        for s, vals in config.items()
    }


def fingerprint(*, config: dict, data: str, dtype: str) -> dict[str, str]:
    """The inputs that decide a run's results, each hashed, plus `all`, the hash of them together. The
    config is hashed less its `NON_RESULT_FIELDS`."""
    parts = {
        "config": _hash(result_fields(config)),
        "data": data,
        "dtype": dtype,
        "numerics": _hash(numerics_versions()),
    }
    return {**parts, "all": _hash(parts)}


def fingerprint_diff(old: dict, new: dict) -> list[str]:
    """Names of the fingerprint parts that differ, e.g. ['data', 'numerics']."""
    out = []
    for part in ("config", "data", "dtype", "numerics"):
        if old.get(part) != new.get(part):
            out.append(part)
    return out


def check_out_dir(path) -> Path:
    """Raise a one-line OSError if `path` cannot be a run directory: it is a file, or it (or the
    nearest existing parent, where it would be created) is not a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory (--out needs a directory)", str(path))
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "is not a directory, so the run directory cannot be created in it", str(probe)
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "not writable", str(probe))
    _probe_write(probe)
    return path


def _probe_write(directory: Path) -> None:
    """Create and remove a file in `directory`: file systems such as /proc pass the access check and
    refuse files (a one-line OSError naming the directory)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=tmp_prefix("probe"), suffix=".tmp")
    except OSError as e:
        raise OSError(
            e.errno, f"cannot create files here ({e.strerror}), so it cannot hold a run directory", str(directory)
        ) from None
    os.close(fd)
    os.unlink(name)


def versions() -> dict[str, str]:
    out = numerics_versions()
    try:
        out["numpy"] = metadata.version("numpy")
    except metadata.PackageNotFoundError:  # pragma: no cover
        out["numpy"] = "not installed"
    return out


def git_commit() -> str | None:
    """The commit of the gflow source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def save_run(out_dir, config: dict, result) -> Path:
    """Write a sweep result (`arrays`, `dims`, `meta`, as `run_sweep` returns) to `out_dir` (created if
    needed): results first, manifest last. The wing's `meta` carries what the manifest records about it
    (statuses, observables or records), so this module needs neither engine."""
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_results(
        out,
        result.arrays,
        {"config": config, "versions": versions(), "git_commit": git_commit(), **result.meta, "dims": result.dims},
    )
    return out


def write_results(run_dir, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    """Write the assembled `arrays` as `results.nc` (labeled by `manifest["dims"]`), then the manifest."""
    run_dir = Path(run_dir)
    _write_assembled(run_dir, arrays, manifest)
    write_json(run_dir / MANIFEST, manifest)


def netcdf4_available() -> bool:
    """Whether the netCDF4 package (the engine of results.nc) can be imported."""
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        return False
    return True


def assembled_name() -> tuple[str, str]:
    """(the file an assembly writes, the other one): results.nc where netCDF4 is installed; otherwise (e.g. a
    GPU image with xarray but no netCDF library) the checksummed arrays.npz that `load_run` reads the same
    way, labelled by the manifest's dims."""
    return (RESULTS, ARRAYS) if netcdf4_available() else (ARRAYS, RESULTS)


def write_assembled(path, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    """Write the assembled `arrays` to `path` in the format `assembled_name()` chose (labelled by
    `manifest["dims"]` for results.nc)."""
    if assembled_name()[0] == RESULTS:
        write_dataset(path, to_dataset(arrays, manifest["dims"], manifest))
    else:
        write_npz(path, arrays)


def _write_assembled(run_dir: Path, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    name, other = assembled_name()
    write_assembled(run_dir / name, arrays, manifest)
    (run_dir / other).unlink(missing_ok=True)  # an older assembly would shadow this one


def read_manifest(run_dir) -> dict:
    """The manifest of a run directory; FileNotFoundError if there is none, CorruptFileError if unreadable."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a gflow run directory (needs {MANIFEST} and {RESULTS})")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f"{path}: unreadable ({type(e).__name__}: {e}); rerun with --force to start over"
        ) from None
    if not isinstance(manifest, dict):
        raise CorruptFileError(f"{path}: not a gflow manifest; rerun with --force to start over")
    problem = manifest_problem(manifest)
    if problem:
        raise CorruptFileError(f"{path}: not a gflow manifest ({problem}); rerun with --force to start over")
    return manifest


# The manifest keys gflow reads back, and the JSON types each must have when present.
MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "config": dict,
    "plan": dict,
    "fingerprint": (dict, type(None)),
    "complete": bool,
    "dims": dict,
    "generation": (str, type(None)),
    "assembly_id": (str, type(None)),
    "statuses": dict,
    "versions": dict,
    "n_chunks": int,
}


def manifest_problem(manifest: dict) -> str | None:
    """What is wrong with the shape of a manifest's JSON (e.g. 'config must be an object, got 5'), or None."""
    names = {dict: "an object", bool: "true or false", str: "a string", int: "an integer", type(None): "null"}
    for key, types in MANIFEST_TYPES.items():
        if key in manifest and not isinstance(manifest[key], types):
            want = " or ".join(names[t] for t in (types if isinstance(types, tuple) else (types,)))
            return f"{key} must be {want}, got {json.dumps(manifest[key])[:40]}"
    fp = manifest.get("fingerprint")
    if isinstance(fp, dict) and not all(isinstance(v, str) for v in fp.values()):
        return "fingerprint values must be strings"
    dims = manifest.get("dims")
    if isinstance(dims, dict) and not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in dims.values()
    ):
        return "dims must map names to lists of axis names"
    return None


def load_run(run_dir):
    """The result of a finished run directory as an `xarray.Dataset`, verified against its checksum.

    Dims and coordinates are the sweep's named axes (the two-layer init-scale axis is `init_scale`);
    `status` holds the status codes, their names in its attributes (`flag_values`, `flag_meanings`); the
    manifest (config, versions, device, timing, status table, …) is in `ds.attrs`. E.g.
    `ds.final_test_err.mean("seed").plot(x="init_scale", xscale="log")`. An unfinished directory raises
    FileNotFoundError saying how many chunks are done (the same count `gflow sweep` would resume from:
    chunks that pass their checksum and fingerprint)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    results, arrays = run_dir / RESULTS, run_dir / ARRAYS
    if not manifest.get("complete", True) or not (results.is_file() or arrays.is_file()):
        raise FileNotFoundError(
            f"{run_dir}: run incomplete ({chunk_summary(run_dir, manifest)}); rerun the same sweep to finish it"
        )
    try:
        if results.is_file():
            return read_dataset(results)
        return to_dataset(read_npz(arrays), manifest["dims"], manifest)  # written before results.nc
    except CorruptFileError as e:
        raise CorruptFileError(f"{e}; rerun the same sweep to reassemble it from its chunks") from None


def arrays_of(ds) -> dict[str, np.ndarray]:
    """Every variable and coordinate of a Dataset as a numpy array, by name (for numpy-only code)."""
    return {name: np.asarray(v.values) for name, v in {**ds.coords, **ds.data_vars}.items()}


def to_dataset(arrays: dict[str, np.ndarray], dims: dict[str, list[str]], manifest: dict):
    """The labeled Dataset of named `arrays` with dims `dims[name]`; attrs: the manifest less its dims.

    A 1-D array labelling an axis that has no array of its own names that axis (the two-layer `scale`
    axis becomes `init_scale`); arrays named after an axis are its coordinates. Status codes written
    under another code table (an older directory) are translated by name (`gflow.runs.status.recode`)."""
    import xarray as xr

    from . import status as st

    dims = {k: list(v) for k, v in dims.items()}
    rename = {}
    for name, d in dims.items():
        if len(d) == 1 and d[0] != name and d[0] not in dims and sum(v == d for v in dims.values()) == 1:
            rename[d[0]] = name
    dims = {k: [rename.get(a, a) for a in v] for k, v in dims.items()}
    axes = {a for v in dims.values() for a in v}
    attrs = {k: v for k, v in manifest.items() if k != "dims"}
    arrays = dict(arrays)
    table = attrs.get("statuses")
    if "status" in arrays and table:
        if any(st.CODE.get(n) != info["code"] for n, info in table.items()):
            arrays["status"] = st.recode(arrays["status"], table)
            attrs["statuses"] = {n: {**info, "code": st.CODE[n]} for n, info in table.items()}
            attrs["status_codes_recoded"] = True
    coords = {k: (dims[k], np.asarray(v)) for k, v in arrays.items() if k in axes}
    data = {k: (dims[k], np.asarray(v)) for k, v in arrays.items() if k not in axes}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if "status" in ds and attrs.get("statuses"):
        table = attrs["statuses"]
        ds["status"].attrs.update(
            long_name="status code of the run (gflow.runs.status)",
            flag_values=np.asarray([info["code"] for info in table.values()], ds["status"].dtype),
            flag_meanings=" ".join(table),
        )
    return ds


def _canonical(v) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype.kind in "OSU":  # strings come back from netCDF as objects: hash their text
        return np.asarray([str(x) for x in v.ravel()], dtype=str).reshape(v.shape)
    return v


def _digest(ds) -> str:
    return arrays_digest({name: _canonical(v.values) for name, v in ds.variables.items()})


def write_dataset(path, ds, engine: str = NETCDF_ENGINE) -> None:
    """Write `ds` to netCDF-4 atomically, with the SHA-256 of its variables (attr `sha256`); attributes
    that netCDF cannot hold (dicts, lists, booleans, None) are stored as JSON and listed in `json_attrs`."""
    path = Path(path)
    out = ds.copy()
    enc = [k for k, v in out.attrs.items() if isinstance(v, (bool, dict, list, tuple, type(None)))]
    out.attrs = {k: (json.dumps(v) if k in enc else v) for k, v in out.attrs.items()}
    out.attrs["json_attrs"] = " ".join(enc)
    out.attrs["sha256"] = _digest(ds)
    with _atomic(path) as (fd, tmp):
        os.close(fd)  # the netCDF library opens the file by name
        out.to_netcdf(tmp, engine=engine)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def read_dataset(path, engine: str = NETCDF_ENGINE):
    """The Dataset of a file written by `write_dataset`, loaded into memory and checked against its
    SHA-256 (CorruptFileError if unreadable or if the checksum does not match)."""
    import xarray as xr

    path = Path(path)
    try:
        with xr.open_dataset(path, engine=engine, decode_times=False, decode_timedelta=False) as f:
            ds = f.load()
    except FileNotFoundError:
        raise
    except Exception as e:  # OSError, ValueError from h5py/netCDF on a truncated or foreign file
        raise CorruptFileError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    attrs = dict(ds.attrs)
    stored = attrs.pop("sha256", None)
    if stored is None or stored != _digest(ds):
        raise CorruptFileError(f"{path}: " + ("has no checksum" if stored is None else "checksum mismatch"))
    for k in attrs.pop("json_attrs", "").split():
        attrs[k] = json.loads(attrs[k])
    ds.attrs = attrs
    return ds


def chunk_summary(run_dir, manifest: dict) -> str:
    """'12 of 13 chunks done, 1 corrupt': verified chunks against the plan (nothing is moved)."""
    fp = (manifest.get("fingerprint") or {}).get("all")
    total = (manifest.get("plan") or {}).get("n_chunks", "?")
    done = bad = 0
    for path in sorted((Path(run_dir) / "chunks").glob("chunk-*.npz")):
        try:
            arrays = read_npz(path, fingerprint=fp, require_checksum=True)
        except CorruptFileError:
            bad += 1
            continue
        held = arrays.get(CHUNK_INDEX_KEY)
        if held is not None and f"chunk-{int(held):06d}.npz" != path.name:
            bad += 1
        else:
            done += 1
    return f"{done} of {total} chunks done" + (
        f", {bad} corrupt or from other inputs (a rerun recomputes them)" if bad else ""
    )
