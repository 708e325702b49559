"""Deep-net FLS sweep: peak test accuracy over the grid output multiplier c × base learning rate η
(SGD step η/c), trained to 99% training accuracy, with the (c, η) heatmap and the best accuracy vs c.

    python experiments/deep_fls_sweep.py --preset digits-mlp [--quick] [--out DIR] [--data-path DIR]

CPU presets: digits-mlp, mnist1d-cnn, edim-cnn (10, 14 and 34 minutes on the 2-core CPU under a load
average of ~10, 2026-11-29; measured results in EXPERIMENTS.md, "Deep nets").
GPU presets (one H200): cifar10-resnet18 (needs --data-path with the CIFAR-10 python batches),
edim-resnet18; they train one lane per chunk (sweep.max_lanes = 1): vmapped ResNet-18 replicas were slower
in total than a single one on an H200 (benchmarks/gpu_deep_check.py).
`--quick` shrinks any preset to a seconds-long smoke run (tiny net, 60 steps, target 60%).
Writes DIR/{manifest.json, arrays.npz, heatmap.png, best_vs_c.png, summary.json}; a rerun resumes.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from gflow.deep import DeepConfig, DeepDataConfig, DeepModelConfig, DeepSweepConfig, TrainConfig, run_deep_sweep
from gflow.deep.analysis import u_shape_summary
from gflow.deep.plot import plot_best_vs_c, plot_heatmap
from gflow.store import write_json

CPU_PRESETS = ("digits-mlp", "mnist1d-cnn", "edim-cnn")
GPU_PRESETS = ("cifar10-resnet18", "edim-resnet18")


def _logspace(lo, hi, num):
    return tuple(float(v) for v in np.logspace(lo, hi, num))


def get_config(preset: str = "digits-mlp", *, quick: bool = False, data_path: str = "") -> DeepConfig:
    if preset == "digits-mlp":
        cfg = DeepConfig(
            data=DeepDataConfig(name="digits", n_train=500),  # 8×8 digits, 10 classes; the other 1297 are the test set
            model=DeepModelConfig(arch="mlp", width=128, depth=2),  # 2 hidden ReLU layers of 128
            train=TrainConfig(check_every=10, max_steps=2000),  # full-batch SGD to 99% train accuracy
            # 5 c × 3 η × 3 seeds; one c per chunk, so a chunk of fast lanes is not held up by slow ones
            sweep=DeepSweepConfig(multipliers=_logspace(-2, 2, 5), lrs=(0.03, 0.3, 3.0), n_seeds=3, max_lanes=9),
        )
    elif preset == "mnist1d-cnn":
        cfg = DeepConfig(
            data=DeepDataConfig(name="mnist1d", mnist1d_samples=4000, n_train=500, n_test=800),  # 1-D signals of length 40
            model=DeepModelConfig(arch="cnn", width=8, depth=5),  # the 5-layer CNN, 1-D convs, channels 8…64
            # minibatch SGD (5 steps per epoch); one forward pass evaluates train + test
            train=TrainConfig(batch_size=100, check_every=50, max_steps=2000, eval_batch_size=4096),
            sweep=DeepSweepConfig(multipliers=_logspace(-3, 1, 5), lrs=(0.03, 0.3), n_seeds=2, max_lanes=1),
        )
    elif preset == "edim-cnn":
        cfg = DeepConfig(
            data=DeepDataConfig(name="edim", edim_dim=8, edim_size=8, edim_classes=4, n_train=256, n_test=1000),
            model=DeepModelConfig(arch="cnn", width=8, depth=5),  # the 5-layer CNN, channels 8…64
            # full batch; eval_batch_size ≥ n_train + n_test: one forward pass evaluates both sets
            train=TrainConfig(check_every=20, max_steps=800, eval_batch_size=4096),
            # one lane per chunk: on the CPU, 5 vmapped CNN lanes took 2× longer per lane than one lane alone
            sweep=DeepSweepConfig(multipliers=_logspace(-3, 1, 5), lrs=(0.03, 0.3), n_seeds=2, max_lanes=1),
        )
    elif preset == "cifar10-resnet18":
        cfg = DeepConfig(
            data=DeepDataConfig(name="cifar10", path=data_path or "data/cifar-10-batches-py", n_train=10000, n_test=10000),
            model=DeepModelConfig(arch="resnet", width=64, depth=18, norm="group"),  # GroupNorm: see README
            train=TrainConfig(batch_size=128, check_every=200, max_steps=20000, eval_batch_size=2000),
            # one lane per chunk: on an H200, 8 vmapped ResNet-18 replicas ran slower in total than one (README)
            sweep=DeepSweepConfig(multipliers=_logspace(-3, 1, 5), lrs=(0.01, 0.1), n_seeds=1, max_lanes=1),
        )
    elif preset == "edim-resnet18":
        cfg = DeepConfig(
            data=DeepDataConfig(name="edim", edim_dim=16, edim_size=32, edim_channels=3, edim_classes=10,
                                n_train=10000, n_test=5000),
            model=DeepModelConfig(arch="resnet", width=64, depth=18, norm="group"),
            train=TrainConfig(batch_size=128, check_every=200, max_steps=20000, eval_batch_size=2500),
            sweep=DeepSweepConfig(multipliers=_logspace(-3, 1, 5), lrs=(0.01, 0.1), n_seeds=2, max_lanes=1),
        )
    else:
        raise SystemExit(f"--preset: unknown preset {preset!r}; choose from {', '.join(CPU_PRESETS + GPU_PRESETS)}")
    if quick:  # a smoke run: tiny net and data, full batch, 3 multipliers × 2 η, one seed, 60 steps, target 60%
        data = {"n_train": 128, "n_test": 128, **({"mnist1d_samples": 400} if cfg.data.name == "mnist1d" else {})}
        cfg = cfg.replace(data=data, model={"width": 32 if cfg.model.arch == "mlp" else 4},
                          train={"batch_size": 0, "check_every": 10, "max_steps": 60,
                                 "target_acc": 0.6},
                          sweep={"multipliers": (0.1, 1.0, 10.0), "lrs": (0.1, 1.0), "n_seeds": 1})
    return cfg


def print_summary(summary: dict) -> None:
    print(f"{'c':>9} {'best peak test acc':>20} {'at η':>8}")
    for c, acc, se, lr in zip(summary["multiplier"], summary["best_acc"], summary["best_acc_se"], summary["best_lr"]):
        text = "no η reached the target" if lr is None else f"{acc:.4f} ± {se:.4f}" if np.isfinite(se) else f"{acc:.4f}"
        print(f"{c:9.3g} {text:>20} {'' if lr is None else f'{lr:8.3g}'}")
    where = ("interior" if summary["interior"] else
             "not interior: at the grid end or next to a c where no η reached the target")
    print(f"c* = {summary['c_star']:.3g} ({where})")
    for end in ("small_c", "large_c"):
        g = summary.get(f"gain_over_{end}")
        if g:
            z = f" = {g['z']:.1f} s.e." if g["z"] is not None else ""
            print(f"best − (c = {g['c']:.3g}): {100 * g['gain']:+.2f} pp{z}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="digits-mlp", choices=CPU_PRESETS + GPU_PRESETS)
    ap.add_argument("--quick", action="store_true", help="tiny smoke-test version of the preset")
    ap.add_argument("--out", default=None, help="run directory (default runs/deep_<preset>[_quick])")
    ap.add_argument("--data-path", default="", help="CIFAR: directory with the python-pickle batches")
    ap.add_argument("--force", action="store_true", help="discard a run directory that holds another config")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    cfg = get_config(args.preset, quick=args.quick, data_path=args.data_path)
    out = args.out or f"runs/deep_{args.preset}{'_quick' if args.quick else ''}"
    res = run_deep_sweep(cfg, out, progress=not args.quiet, force=args.force)
    summary = u_shape_summary(res.arrays)
    write_json(res.dir / "summary.json", summary)
    print(f"{args.preset}: {res.meta['n_runs']} runs in {res.meta['wall_s']:.1f} s "
          f"(compile {res.meta['compile_s']:.1f} s), statuses {json.dumps(res.meta['status_counts'])}")
    print_summary(summary)
    print(f"figures: {plot_heatmap(res.dir)}, {plot_best_vs_c(res.dir)}")
    return res, summary


if __name__ == "__main__":
    main()
