"""The deep-net FLS experiment sized for one H200: ResNet-18 (GroupNorm, width 64) on generated 32×32×3 images of
intrinsic dimension 16, 10 classes, 4096 training / 2048 test images, SGD at η/c with batch 128, a check every
2 epochs (64 steps), an 80-epoch budget (2560 steps), c ∈ {2⁻⁸, 2⁻⁶, 2⁻⁴, 2⁻², 1, 4} × η ∈ {0.03, 0.1} × 2 seeds
(24 runs, one lane per chunk: experiments/deep_fls_sweep.py's `edim-resnet18` preset).

    python experiments/deep_gpu_edim.py [--out DIR] [--time-limit S]   # on the GPU machine; a rerun resumes
    python experiments/deep_gpu_edim.py --cpu-smoke                    # tiny version on the CPU (tested)

Budget arithmetic (printed by `budget()`), from the measured 160 SGD steps/s of ResNet-18 / GroupNorm /
batch 128 on one H200 (benchmarks/gpu_results/gpu_deep_check_run1.txt, R = 1: 159.7 steps/s):
- worst case, every run to its budget: 24 runs × 2560 steps = 61 440 SGD steps → 384 s;
- evaluation: 40 checks per run × 6144 images (train + test) = 5.9 M forward images; at 3× the training
  image rate (a forward pass is about a third of a training step; NOT measured: gpu_deep_check.py now
  measures it) that is 96 s;
- compile and data: ~20 s (ResNet-18 compile + first round took 17.9 s).
Worst case about 8.3 minutes; runs that reach 99% training accuracy before 80 epochs stop early and
return their time. `--time-limit` (default 540 s) starts no new run after that many seconds: the finished
runs are saved and a rerun resumes with the rest, so a session cut short loses at most the run under way.
Writes DIR/{manifest.json, results.nc, summary.json, heatmap.png, heatmap_step_size.png, best_vs_c.png}.
Not yet run on a GPU (no device was lent when it was written).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gflow.deep.config import load_preset

STEPS_PER_S = 160.0  # measured: ResNet-18, GroupNorm, batch 128, one H200, one lane (159.7)
FORWARD_SPEEDUP = 3.0  # assumed: forward-only images/s over training images/s (not measured)


def get_config(cpu_smoke: bool = False):
    """The edim-resnet18 preset (gflow/deep/presets/edim-resnet18.toml); the smoke version is its [quick]
    table (tiny net and images, seconds)."""
    return load_preset("edim-resnet18", quick=cpu_smoke)


def budget(cfg, steps_per_s: float = STEPS_PER_S, forward_speedup: float = FORWARD_SPEEDUP) -> dict:
    """Worst-case time of the sweep (every run to its step budget) from the measured training throughput."""
    n_runs = len(cfg.sweep.multipliers) * len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    steps = sum(cfg.train.budget(c) for c in cfg.sweep.multipliers) * len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    batch = cfg.train.batch_size
    checks = sum(cfg.train.budget(c) // cfg.train.check_every for c in cfg.sweep.multipliers) * len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    eval_images = checks * (cfg.data.n_train + cfg.data.n_test)
    sgd_s = steps / steps_per_s
    eval_s = eval_images / (forward_speedup * steps_per_s * batch)
    return {"runs": n_runs, "sgd_steps": steps, "sgd_s": sgd_s, "checks": checks, "eval_images": eval_images,
            "eval_s": eval_s, "compile_s": 20.0, "total_s": sgd_s + eval_s + 20.0,
            "assumptions": f"{steps_per_s:g} SGD steps/s (measured), forward {forward_speedup:g}× the training "
                           "image rate (assumed), 20 s compile"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny version on the CPU")
    ap.add_argument("--out", default=None, help="run directory (default runs/deep_gpu_edim[_smoke])")
    ap.add_argument("--time-limit", type=float, default=540.0, help="start no new run after this many seconds")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    import jax

    from gflow.deep import run_deep_sweep
    from gflow.deep.analysis import summary_table, u_shape_summary
    from gflow.deep.plot import plot_best_vs_c, plot_heatmap
    from gflow.deep.sweep import SweepTimeLimit
    from gflow.runs.store import write_json

    cfg = get_config(args.cpu_smoke)
    b = budget(get_config(False))
    print(f"budget (full experiment, worst case): {b['runs']} runs, {b['sgd_steps']} SGD steps = {b['sgd_s']:.0f} s, "
          f"{b['checks']} checks × {get_config(False).data.n_train + get_config(False).data.n_test} images = "
          f"{b['eval_s']:.0f} s, total {b['total_s'] / 60:.1f} min ({b['assumptions']})")
    dev = jax.devices()[0]
    if dev.platform == "cpu" and not args.cpu_smoke:
        sys.exit("no accelerator: this experiment is sized for one H200 (use --cpu-smoke for the tiny CPU version)")
    out = Path(args.out or f"runs/deep_gpu_edim{'_smoke' if args.cpu_smoke else ''}")
    t0 = time.perf_counter()
    try:
        res = run_deep_sweep(cfg, out, progress=not args.quiet, time_limit_s=args.time_limit)
    except SweepTimeLimit as stop:
        print(f"{stop}; wall {time.perf_counter() - t0:.0f} s")
        return None
    summary = u_shape_summary(res.arrays)
    write_json(out / "summary.json", {**summary, "budget_arithmetic": b, "device": res.meta["device"],
                                      "wall_s": res.meta["wall_s"], "compile_s": res.meta["compile_s"]})
    figures = [plot_heatmap(out), plot_heatmap(out, y="step_size"), plot_best_vs_c(out)]
    print(summary_table(summary))
    print(f"{res.meta['n_runs']} runs on {res.meta['device']}: training {res.meta['wall_s']:.0f} s "
          f"(compile {res.meta['compile_s']:.0f} s), statuses {json.dumps(res.meta['status_counts'])}; "
          f"wall {time.perf_counter() - t0:.0f} s")
    print("figures:", ", ".join(map(str, figures)))
    return res, summary


if __name__ == "__main__":
    main()
