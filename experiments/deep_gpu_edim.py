"""The deep-net FLS experiment sized for one GPU session: ResNet-18 (GroupNorm, width 64) on generated
32×32×3 images of intrinsic dimension 16, 10 classes, 4096 training / 1024 validation / 2048 test images,
SGD at η/c with batch 128, a check every 2 epochs (64 steps), a 60-epoch budget (1920 steps),
c ∈ {2⁻⁸, 2⁻⁶, 2⁻⁴, 2⁻², 1, 4} × η ∈ {0.03, 0.1} × 2 seeds (24 runs, one lane per chunk: the
`edim-resnet18` preset). The peak step, the best η and c* are chosen on the validation set; the test
accuracy is reported there.

    python experiments/deep_gpu_edim.py [--land DIR] [--run-dir DIR] [--time-limit S]   # on the GPU machine
    python experiments/deep_gpu_edim.py --cpu-smoke [--land DIR]                        # tiny version, CPU (tested)

It runs on a fresh GPU machine with only the repository and the image's packages (jax, numpy, scipy,
xarray, h5py, matplotlib; no netCDF library: the run directory then holds arrays.npz instead of
results.nc, read the same way by `gflow.load_run`). The run directory (default runs/deep_gpu_edim, inside
the checkout, so a second call on the same warm machine resumes it) is copied into the landing directory
(--land, default $OUT/deep_gpu_edim, or runs/gpu_out/deep_gpu_edim when $OUT is unset) as few files:

    summary.json      strict JSON (no NaN/Infinity): per c the test accuracy at the η chosen on validation,
                      c*, gains, statuses, the device, timings and the budget arithmetic; on a partial
                      run, "complete": false and the records of every finished run
    heatmap.png, best_vs_c.png, curves.png   (complete runs; curves: the chosen c at its chosen η)
    run.tar.gz        the whole run directory (manifest, results, chunks): `gflow deep plot` works on it

Exit status: 0 complete; 3 stopped at --time-limit with the finished runs landed (rerun to resume); 2 bad
input. Budget arithmetic (`budget()`), from the measured 160 SGD steps/s of ResNet-18 / GroupNorm / batch
128 on one H200 (benchmarks/gpu/gpu_results/gpu_deep_check_run1.txt, R = 1: 159.7 steps/s); an H100 has not
been measured: its figure is what summary.json's steps_per_s will say.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from gflow.deep.config import load_preset

STEPS_PER_S = 160.0  # measured: ResNet-18, GroupNorm, batch 128, one H200, one lane (159.7)
FORWARD_SPEEDUP = 3.0  # assumed: forward-only images/s over training images/s (not measured)
EXIT_PARTIAL = 3


def get_config(cpu_smoke: bool = False):
    """The edim-resnet18 preset (gflow/deep/presets/edim-resnet18.toml); the smoke version is its [quick]
    table (tiny net and images, seconds)."""
    return load_preset("edim-resnet18", quick=cpu_smoke)


def budget(cfg, steps_per_s: float = STEPS_PER_S, forward_speedup: float = FORWARD_SPEEDUP) -> dict:
    """Worst-case time of the sweep (every run to its step budget) from the measured training throughput;
    an evaluation covers the training, validation and test sets."""
    from gflow.deep.data import n_val_of

    per_seed = len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    n_runs = len(cfg.sweep.multipliers) * per_seed
    steps = sum(cfg.train.budget(c) for c in cfg.sweep.multipliers) * per_seed
    checks = sum(cfg.train.budget(c) // cfg.train.check_every for c in cfg.sweep.multipliers) * per_seed
    n_eval = cfg.data.n_train + cfg.data.n_test + (n_val_of(cfg.data) or 0)
    eval_images = checks * n_eval
    sgd_s = steps / steps_per_s
    eval_s = eval_images / (forward_speedup * steps_per_s * cfg.train.batch_size)
    return {
        "runs": n_runs,
        "sgd_steps": steps,
        "sgd_s": sgd_s,
        "checks": checks,
        "images_per_check": n_eval,
        "eval_images": eval_images,
        "eval_s": eval_s,
        "compile_s": 20.0,
        "total_s": sgd_s + eval_s + 20.0,
        "assumptions": f"{steps_per_s:g} SGD steps/s (measured on one H200), forward {forward_speedup:g}× the "
        "training image rate (assumed), 20 s compile",
    }


def land_dir(arg: str | None, smoke: bool) -> Path:
    """--land, else $OUT/deep_gpu_edim[_smoke], else runs/gpu_out/deep_gpu_edim[_smoke]."""
    name = "deep_gpu_edim" + ("_smoke" if smoke else "")
    return Path(arg) if arg else Path(os.environ.get("OUT") or "runs/gpu_out") / name


def write_strict_json(path: Path, obj) -> None:
    """JSON without NaN or Infinity literals (they become null); raises if any slipped through."""
    from gflow.deep.analysis import json_safe

    path.write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False))


def _tar(run_dir: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return dest


def finished_runs(cfg, run_dir: Path) -> list[dict]:
    """The records of every run of the finished chunks of `run_dir` (c-major lanes, as the sweep orders them)."""
    from gflow.deep.train import RECORDS
    from gflow.runs import status
    from gflow.runs.store import CorruptFileError, read_manifest, read_npz

    manifest = read_manifest(run_dir)
    fp, per_chunk = (manifest.get("fingerprint") or {}).get("all"), manifest["plan"]["lanes_per_chunk"]
    c, lr, seed = (
        v.ravel()
        for v in np.meshgrid(cfg.sweep.multipliers, cfg.sweep.lrs, np.arange(cfg.sweep.n_seeds), indexing="ij")
    )
    rows = []
    for path in sorted((run_dir / "chunks").glob("chunk-*.npz")):
        try:
            chunk = read_npz(path, fingerprint=fp, require_checksum=True)
        except CorruptFileError:
            continue
        start = int(path.stem.split("-")[1]) * per_chunk
        for k in range(len(chunk["status"])):
            row = {
                "multiplier": float(c[start + k]),
                "lr": float(lr[start + k]),
                "seed": int(seed[start + k]),
                "status": str(status.names_of(chunk["status"][k])),
            }
            row.update({name: chunk[name][k].item() for name in RECORDS if name != "status"})
            rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny version on the CPU")
    ap.add_argument(
        "--run-dir", default=None, help="run directory (default runs/deep_gpu_edim[_smoke]); a rerun resumes"
    )
    ap.add_argument("--land", default=None, help="where the results land (default $OUT/deep_gpu_edim[_smoke])")
    ap.add_argument("--time-limit", type=float, default=330.0, help="start no new run after this many seconds")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    import jax

    from gflow.deep import run_deep_sweep
    from gflow.deep.analysis import summary_table, u_shape_summary
    from gflow.deep.plot import plot_best_vs_c, plot_curves, plot_heatmap
    from gflow.deep.sweep import SweepTimeLimit
    from gflow.runs.store import netcdf4_available

    cfg, full = get_config(args.cpu_smoke), get_config(False)
    b = budget(full)
    print(
        f"budget (full experiment, worst case): {b['runs']} runs, {b['sgd_steps']} SGD steps = {b['sgd_s']:.0f} s, "
        f"{b['checks']} checks × {b['images_per_check']} images = {b['eval_s']:.0f} s, total {b['total_s'] / 60:.1f} min "
        f"({b['assumptions']})"
    )
    dev = jax.devices()[0]
    device = f"{dev.platform}:{getattr(dev, 'device_kind', '')}"
    if dev.platform == "cpu" and not args.cpu_smoke:
        print(
            "no accelerator: this experiment is sized for one GPU (use --cpu-smoke for the tiny CPU version)",
            file=sys.stderr,
        )
        return 2
    run_dir = Path(args.run_dir or f"runs/deep_gpu_edim{'_smoke' if args.cpu_smoke else ''}")
    land = land_dir(args.land, args.cpu_smoke)
    land.mkdir(parents=True, exist_ok=True)
    print(
        f"device {device}; run directory {run_dir}; results land in {land}; netCDF4 "
        f"{'available' if netcdf4_available() else 'missing: arrays.npz instead of results.nc'}"
    )
    n_runs = len(cfg.sweep.multipliers) * len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    base = {
        "experiment": "deep_gpu_edim" + ("_smoke" if args.cpu_smoke else ""),
        "device": device,
        "jax": jax.__version__,
        "config": cfg.to_dict(),
        "budget_arithmetic": b,
    }
    try:
        res = run_deep_sweep(cfg, out=run_dir, progress=not args.quiet, time_limit_s=args.time_limit)
    except SweepTimeLimit as stop:
        rows = finished_runs(cfg, run_dir)
        write_strict_json(
            land / "summary.json",
            {
                **base,
                "complete": False,
                "stopped": str(stop),
                "runs_done": len(rows),
                "runs_total": n_runs,
                "finished_runs": rows,
                "wall_s": time.perf_counter() - t0,
            },
        )
        _tar(run_dir, land / "run.tar.gz")
        print(f"PARTIAL: {stop}; {len(rows)} finished runs landed in {land}; rerun the same command to resume")
        return EXIT_PARTIAL
    summary = u_shape_summary(res.arrays)
    meta = res.meta
    steps_done = int(np.sum(res.arrays["steps"]))
    figures = [plot_heatmap(run_dir), plot_best_vs_c(run_dir)]
    chosen = summary.get("test_acc_at_chosen_c")
    if chosen:
        i = list(summary["multiplier"]).index(chosen["c"])
        figures.append(plot_curves(run_dir, chosen["c"], summary["best_lr"][i], out=run_dir / "curves.png"))
    for f in figures:
        shutil.copy2(f, land / f.name)
    write_strict_json(
        land / "summary.json",
        {
            **base,
            "complete": True,
            **summary,
            "status_counts": meta["status_counts"],
            "training_s": meta["wall_s"],
            "compute_s": meta.get("compute_s"),
            "compile_s": meta["compile_s"],
            "sgd_steps_done": steps_done,
            "steps_per_s": steps_done / meta["wall_s"] if meta["wall_s"] > 0 else None,
            "note": "steps_per_s counts training steps over training time, evaluations and compiles included",
            "wall_s": time.perf_counter() - t0,
        },
    )
    _tar(run_dir, land / "run.tar.gz")
    print(summary_table(summary))
    print(
        f"{meta['n_runs']} runs on {device}: training {meta['wall_s']:.0f} s (compile {meta['compile_s']:.0f} s), "
        f"{steps_done} SGD steps, statuses {json.dumps(meta['status_counts'])}; wall {time.perf_counter() - t0:.0f} s"
    )
    print("landed:", ", ".join(sorted(p.name for p in land.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
