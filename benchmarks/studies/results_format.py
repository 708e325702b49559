"""How to store a run's assembled result: netCDF-4 through the netcdf4 or h5netcdf engine, against the checksummed
arrays.npz it replaces. For each run directory: write time, read time (open, load, checksum check, as
`gflow.load_run` does) and size, median of `--repeat` alternating rounds.

    python benchmarks/studies/results_format.py RUN_DIR [RUN_DIR …] [--repeat 7] [--json OUT]

h5netcdf is measured only where h5py is installed (it writes through h5py); zarr is not measured: it is not
installed (README, "Results on disk", says why it was not needed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path

from gflow.runs import store

ENGINES = ("netcdf4",) + (("h5netcdf",) if importlib.util.find_spec("h5py") else ())  # h5netcdf writes through h5py


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(run_dir, repeat: int = 7) -> dict:
    ds = store.load_run(run_dir)
    manifest = store.read_manifest(run_dir)
    arrays = (
        store.read_npz(Path(run_dir) / store.ARRAYS)
        if (Path(run_dir) / store.ARRAYS).is_file()
        else store.arrays_of(ds)
    )
    rows = {name: {"write_s": [], "read_s": []} for name in ("npz", *ENGINES)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"npz": Path(tmp) / "arrays.npz", **{e: Path(tmp) / f"{e}.nc" for e in ENGINES}}
        for _ in range(repeat):  # alternate the formats within each round
            rows["npz"]["write_s"].append(_time(lambda: store.write_npz(paths["npz"], arrays)))
            rows["npz"]["read_s"].append(
                _time(lambda: store.to_dataset(store.read_npz(paths["npz"]), manifest["dims"], manifest))
            )
            for e in ENGINES:
                rows[e]["write_s"].append(_time(lambda: store.write_dataset(paths[e], ds, engine=e)))
                rows[e]["read_s"].append(_time(lambda: store.read_dataset(paths[e], engine=e)))
        sizes = {name: p.stat().st_size for name, p in paths.items()}
    return {
        "run_dir": str(run_dir),
        "variables": len(ds.variables),
        "values": int(sum(v.size for v in ds.variables.values())),
        **{
            name: {
                "write_ms": 1e3 * statistics.median(r["write_s"]),
                "read_ms": 1e3 * statistics.median(r["read_s"]),
                "bytes": sizes[name],
            }
            for name, r in rows.items()
        },
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json")
    args = p.parse_args(argv)
    out = [measure(d, args.repeat) for d in args.run_dirs]
    for r in out:
        print(f"{r['run_dir']}: {r['variables']} variables, {r['values']} values")
        print(f"  {'format':10s} {'write ms':>9s} {'read ms':>9s} {'bytes':>9s}")
        for name in ("npz", *ENGINES):
            print(f"  {name:10s} {r[name]['write_ms']:9.1f} {r[name]['read_ms']:9.1f} {r[name]['bytes']:9d}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
