"""Deep-net FLS sweep: peak test accuracy over the grid output multiplier c × base learning rate η
(SGD step η/c), trained to 99% training accuracy, with the (c, η) heatmap and the best accuracy vs c.

    python experiments/deep_fls_sweep.py --preset digits-mlp [--quick] [--out DIR] [--data-path DIR]

CPU presets: digits-mlp, mnist1d-mlp (13 c = 2⁻¹⁰…2² × 4 η × 4 seeds), mnist1d-cnn, digits-cnn, edim-cnn
(subsets of that c grid; measured walls and results in EXPERIMENTS.md, "Deep nets").
GPU presets (one H200): edim-resnet18 (the ~8-minute experiment; experiments/deep_gpu_edim.py runs it with its
budget arithmetic), cifar10-resnet18, cifar100-resnet50, cifar100-vgg19 (full training sets; need --data-path
with the python batches; hours each). They train one lane per chunk (sweep.max_lanes = 1): vmapped
ResNet-18 replicas were slower in total than a single one on an H200 (benchmarks/gpu_deep_check.py).
`--quick` shrinks any preset to a seconds-long smoke run (tiny net, 3 c × 2 η × 2 seeds, 80 steps, target 80%, 50% on mnist1d).
Writes DIR/{manifest.json, results.nc, summary.json, heatmap.png (vs η), heatmap_step_size.png (vs η/c),
best_vs_c.png}; a rerun resumes. Accuracies are in percent in the figures, the printed table and summary.json
(null where a value does not exist); results.nc (`gflow.load_run`) keeps the raw fractions.
"""

from __future__ import annotations

import argparse
import json

from gflow.deep import DeepConfig, DeepDataConfig, DeepModelConfig, DeepSweepConfig, TrainConfig, run_deep_sweep
from gflow.deep.analysis import STATUS_SHORT, u_shape_summary
from gflow.deep.plot import plot_best_vs_c, plot_heatmap
from gflow.runs.store import write_json

CPU_PRESETS = ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn", "digits-cnn", "edim-cnn")
GPU_PRESETS = ("edim-resnet18", "cifar10-resnet18", "cifar100-resnet50", "cifar100-vgg19")
TWO_POWERS = tuple(2.0**k for k in range(-10, 3))  # 2⁻¹⁰ … 2², the default c grid


def _powers(*exponents) -> tuple[float, ...]:
    return tuple(2.0**k for k in exponents)


def get_config(preset: str = "digits-mlp", *, quick: bool = False, data_path: str = "") -> DeepConfig:
    """The preset's config. Budgets: steps to 99% training accuracy were measured against c on the CPU
    presets (EXPERIMENTS.md, "Steps to 99% against c"); at a fixed η they do not grow as c shrinks for
    these nets, so one max_steps serves every c (budget_power 0) and is set above the slowest measured
    run; a run that still stops at its budget is shown as `max_steps` everywhere."""
    mlp_sweep = DeepSweepConfig(multipliers=TWO_POWERS, lrs=(0.01, 0.03, 0.1, 0.3), n_seeds=4, max_lanes=16)
    if preset == "digits-mlp":
        cfg = DeepConfig(
            data=DeepDataConfig(name="digits", n_train=500),  # 8×8 digits, 10 classes; the other 1297 are the test set
            model=DeepModelConfig(arch="mlp", width=128, depth=2),  # 2 hidden ReLU layers of 128
            # full-batch SGD to 99% train accuracy; slowest measured run: 980 steps (η = 0.01)
            train=TrainConfig(check_every=10, max_steps=2000),
            # 13 c × 4 η × 4 seeds; one c per chunk (16 vmapped lanes), so fast chunks are not held up by slow ones
            sweep=mlp_sweep,
        )
    elif preset == "mnist1d-mlp":
        cfg = DeepConfig(
            data=DeepDataConfig(name="mnist1d", mnist1d_samples=4000, n_train=500, n_test=800),  # signals of length 40
            model=DeepModelConfig(arch="mlp", width=128, depth=2),
            train=TrainConfig(check_every=20, max_steps=4000, eval_batch_size=4096),
            sweep=mlp_sweep,
        )
    elif preset in ("mnist1d-cnn", "digits-cnn"):
        data = (DeepDataConfig(name="mnist1d", mnist1d_samples=4000, n_train=500, n_test=800) if preset == "mnist1d-cnn"
                else DeepDataConfig(name="digits", n_train=500))
        cfg = DeepConfig(
            data=data,
            model=DeepModelConfig(arch="cnn", width=8, depth=5),  # the 5-layer CNN (1-D convs on mnist1d), channels 8…64
            # minibatch SGD (5 steps per epoch); one forward pass evaluates train + test. On mnist1d the
            # slowest measured run that reached 99% took 2800 steps (c = 2⁻², η = 0.3)
            train=TrainConfig(batch_size=100, check_every=50, max_steps=3000, eval_batch_size=4096),
            # a subset of the 2⁻¹⁰…2² grid: at c = 2⁻¹⁰ no η in {0.03, 0.1, 0.3} trained in 3000 steps (EXPERIMENTS.md);
            # one lane per chunk: vmapped CNN lanes were slower per lane than single ones on this CPU
            sweep=DeepSweepConfig(multipliers=_powers(-6, -4, -2, 0, 2), lrs=(0.03, 0.1, 0.3), n_seeds=2, max_lanes=1),
        )
    elif preset == "edim-cnn":
        cfg = DeepConfig(
            data=DeepDataConfig(name="edim", edim_dim=8, edim_size=8, edim_classes=4, n_train=256, n_test=1000),
            model=DeepModelConfig(arch="cnn", width=8, depth=5),  # the 5-layer CNN, channels 8…64
            # full batch; eval_batch_size ≥ n_train + n_test: one forward pass evaluates both sets
            train=TrainConfig(check_every=20, max_steps=2000, eval_batch_size=4096),
            sweep=DeepSweepConfig(multipliers=_powers(-8, -6, -4, -2, 0, 2), lrs=(0.01, 0.03, 0.3), n_seeds=2, max_lanes=1),
        )
    elif preset == "edim-resnet18":
        # The GPU experiment sized for one H200 (experiments/deep_gpu_edim.py runs it; budget arithmetic there):
        # 32×32×3 images of intrinsic dimension 16, 10 classes, 4096 train / 2048 test, batch 128 (32 steps per
        # epoch), a check every 2 epochs, an 80-epoch budget, 6 c × 2 η × 2 seeds = 24 runs, one lane per chunk.
        cfg = DeepConfig(
            data=DeepDataConfig(name="edim", edim_dim=16, edim_size=32, edim_channels=3, edim_classes=10,
                                n_train=4096, n_test=2048),
            model=DeepModelConfig(arch="resnet", width=64, depth=18, norm="group"),
            train=TrainConfig(batch_size=128, check_every=64, max_steps=80 * 32, eval_batch_size=2048),
            sweep=DeepSweepConfig(multipliers=_powers(-8, -6, -4, -2, 0, 2), lrs=(0.03, 0.1), n_seeds=2, max_lanes=1),
        )
    elif preset in ("cifar10-resnet18", "cifar100-resnet50", "cifar100-vgg19"):
        name = preset.split("-")[0]
        arch, depth = {"resnet18": ("resnet", 18), "resnet50": ("resnet", 50), "vgg19": ("vgg", 19)}[preset.split("-")[1]]
        default_dir = {"cifar10": "data/cifar-10-batches-py", "cifar100": "data/cifar-100-python"}[name]
        cfg = DeepConfig(
            # the full 50 000-image training set and the 10 000-image test set, as the paper trains
            data=DeepDataConfig(name=name, path=data_path or default_dir, n_train=-1),
            # GroupNorm by default (a per-example net; model.norm = 'batch' for BatchNorm fidelity runs, see README)
            model=DeepModelConfig(arch=arch, width=64, depth=depth, norm="group"),
            # 391 steps per epoch at batch 128; a check every 2 epochs, a 200-epoch budget
            train=TrainConfig(batch_size=128, check_every=782, max_steps=782 * 100, eval_batch_size=2000),
            # the paper's headline c = 2⁻⁴ (ResNet-50/CIFAR-100) lies on this grid; hours on one H200 per η and seed
            sweep=DeepSweepConfig(multipliers=_powers(-8, -6, -4, -2, 0, 2), lrs=(0.03, 0.1), n_seeds=2, max_lanes=1),
        )
    else:
        raise SystemExit(f"--preset: unknown preset {preset!r}; choose from {', '.join(CPU_PRESETS + GPU_PRESETS)}")
    if quick:  # a smoke run: tiny net and data, full batch, 3 multipliers × 2 η × 2 seeds, 80 steps, target 80%
        # (50% on mnist1d, which a tiny net does not fit to 80% in 80 steps)
        data = {"n_train": 64, "n_test": 128, **({"mnist1d_samples": 400} if cfg.data.name == "mnist1d" else {})}
        if cfg.data.name == "edim":
            data.update(edim_size=8, edim_channels=1, edim_dim=2, edim_classes=2)
        cfg = cfg.replace(data=data, model={"width": 32 if cfg.model.arch == "mlp" else 4, "depth": 0},
                          train={"batch_size": 0, "check_every": 10, "max_steps": 80,
                                 "target_acc": 0.5 if cfg.data.name == "mnist1d" else 0.8},
                          sweep={"multipliers": (0.25, 1.0, 4.0), "lrs": (0.3, 1.0), "n_seeds": 2})
    return cfg


def print_summary(summary: dict) -> None:
    """The per-c table (accuracies in %, gains in pp) with each c's run statuses and budget."""
    print(f"{'c':>9} {'best peak test acc (%)':>24} {'at η':>6} {'η/c':>8} {'budget':>7}  runs by status")
    budgets = summary.get("budget", [None] * len(summary["multiplier"]))
    for c, acc, se, lr, step, why, counts, budget in zip(
            summary["multiplier"], summary["best_test_acc"], summary["best_test_acc_se"], summary["best_lr"],
            summary["best_step_size"], summary["invalid_reason"], summary["statuses"], budgets):
        text = f"none valid ({why})" if lr is None else f"{acc:.2f} ± {se:.2f}" if se is not None else f"{acc:.2f}"
        runs = ", ".join(f"{STATUS_SHORT[k]} {v}" for k, v in counts.items())
        print(f"{c:9.4g} {text:>24} {'' if lr is None else f'{lr:6.3g}'} {'' if step is None else f'{step:8.3g}':>8} "
              f"{budget if budget is not None else '':>7}  {runs}")
    if summary["c_star"] is None:
        print("c*: none (no valid cell)")
    else:
        print(f"c* = {summary['c_star']:.3g} ({summary['c_star_where']})")
    for end in ("small_c", "large_c"):
        g = summary.get(f"gain_over_{end}")
        if g:
            z = f" = {g['z']:.1f} s.e." if g["z"] is not None else ""
            print(f"best − (c = {g['c']:.3g}): {g['gain_pp']:+.2f} pp{z}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="digits-mlp", choices=CPU_PRESETS + GPU_PRESETS)
    ap.add_argument("--quick", action="store_true", help="tiny smoke-test version of the preset")
    ap.add_argument("--out", default=None, help="run directory (default runs/deep_<preset>[_quick])")
    ap.add_argument("--data-path", default="", help="CIFAR: directory with the python-pickle batches")
    ap.add_argument("--force", action="store_true", help="discard a run directory that holds another config")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--full-grid", action="store_true",
                    help="the whole power-of-two c grid 2⁻¹⁰…2² with 4 seeds (the CNN presets default to a subset)")
    args = ap.parse_args(argv)
    cfg = get_config(args.preset, quick=args.quick, data_path=args.data_path)
    if args.full_grid and not args.quick:
        cfg = cfg.replace(sweep={"multipliers": TWO_POWERS, "n_seeds": 4})
    out = args.out or f"runs/deep_{args.preset}{'_quick' if args.quick else ''}"
    res = run_deep_sweep(cfg, out, progress=not args.quiet, force=args.force)
    summary = u_shape_summary(res.arrays)  # percent, NaN → null
    write_json(res.dir / "summary.json", summary)
    print(f"{args.preset}: {res.meta['n_runs']} runs in {res.meta['wall_s']:.1f} s "
          f"(compile {res.meta['compile_s']:.1f} s), statuses {json.dumps(res.meta['status_counts'])}")
    print_summary(summary)
    figures = [plot_heatmap(res.dir), plot_heatmap(res.dir, y="step_size"), plot_best_vs_c(res.dir)]
    print("figures:", ", ".join(map(str, figures)))
    return res, summary


if __name__ == "__main__":
    main()
