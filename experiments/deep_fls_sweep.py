"""Deep-net FLS sweep: peak test accuracy over the grid output multiplier c × base learning rate η
(SGD step η/c), trained to 99% training accuracy, with the (c, η) heatmap and the best accuracy vs c.

    python experiments/deep_fls_sweep.py --preset digits-mlp [--quick] [--out DIR] [--data-path DIR]

The presets are TOML files shipped with gflow (gflow/deep/presets/; `gflow deep presets` lists them, and
`gflow deep sweep --preset NAME` runs one from the command line, then `gflow deep plot DIR` draws these figures).
CPU presets: digits-mlp, mnist1d-mlp (13 c = 2⁻¹⁰…2² × 4 η × 4 seeds), mnist1d-cnn, digits-cnn, edim-cnn
(subsets of that c grid; measured walls and results in EXPERIMENTS.md, "Deep nets").
GPU presets (one H200): edim-resnet18 (the ~8-minute experiment; experiments/deep_gpu_edim.py runs it with its
budget arithmetic), cifar10-resnet18, cifar100-resnet50, cifar100-vgg19 (full training sets; need --data-path
with the python batches; hours each). They train one lane per chunk (sweep.max_lanes = 1): vmapped
ResNet-18 replicas were slower in total than a single one on an H200 (benchmarks/gpu/gpu_deep_check.py).
`--quick` shrinks any preset to a seconds-long smoke run (tiny net, 3 c × 2 η × 2 seeds, 80 steps, target 80%,
50% on mnist1d: each preset's [quick] table); `--full-grid` applies its [full_grid] table (no effect with --quick).
Writes DIR/{manifest.json, results.nc, summary.json, heatmap.png (vs η), heatmap_step_size.png (vs η/c),
best_vs_c.png}; a rerun resumes. Accuracies are in percent in the figures, the printed table and summary.json
(null where a value does not exist); results.nc (`gflow.load_run`) keeps the raw fractions.
"""

from __future__ import annotations

import argparse
import json

from gflow.deep import DeepConfig, run_deep_sweep
from gflow.deep.analysis import summary_table, u_shape_summary
from gflow.deep.config import LOCAL_DATASETS, load_preset
from gflow.deep.plot import plot_best_vs_c, plot_heatmap
from gflow.runs.store import write_json

CPU_PRESETS = ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn", "digits-cnn", "edim-cnn")
GPU_PRESETS = ("edim-resnet18", "cifar10-resnet18", "cifar100-resnet50", "cifar100-vgg19")


def get_config(
    preset: str = "digits-mlp", *, quick: bool = False, data_path: str = "", full_grid: bool = False
) -> DeepConfig:
    """The preset's config: gflow/deep/presets/<preset>.toml (its comments say why each value), with its
    [full_grid] and/or [quick] tables applied; `data_path` replaces data.path of the presets whose data
    is read from a local directory (CIFAR) and is ignored by the others."""
    cfg = load_preset(preset, quick=quick, full_grid=full_grid)
    return cfg.replace(data={"path": data_path}) if data_path and cfg.data.name in LOCAL_DATASETS else cfg


def print_summary(summary: dict) -> None:
    """The per-c table (accuracies in %, gains in pp) with each c's run statuses and budget."""
    print(summary_table(summary))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="digits-mlp", choices=CPU_PRESETS + GPU_PRESETS)
    ap.add_argument("--quick", action="store_true", help="tiny smoke-test version of the preset")
    ap.add_argument("--out", default=None, help="run directory (default runs/deep_<preset>[_quick])")
    ap.add_argument("--data-path", default="", help="CIFAR: directory with the python-pickle batches")
    ap.add_argument("--force", action="store_true", help="discard a run directory that holds another config")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument(
        "--full-grid",
        action="store_true",
        help="the whole power-of-two c grid 2⁻¹⁰…2² with 4 seeds (the CNN presets default to a subset)",
    )
    args = ap.parse_args(argv)
    cfg = get_config(args.preset, quick=args.quick, data_path=args.data_path, full_grid=args.full_grid)
    out = args.out or f"runs/deep_{args.preset}{'_quick' if args.quick else ''}"
    res = run_deep_sweep(cfg, out=out, progress=not args.quiet, force=args.force)
    summary = u_shape_summary(res.arrays)  # percent, NaN → null
    write_json(res.dir / "summary.json", summary)
    print(
        f"{args.preset}: {res.meta['n_runs']} runs in {res.meta['wall_s']:.1f} s "
        f"(compile {res.meta['compile_s']:.1f} s), statuses {json.dumps(res.meta['status_counts'])}"
    )
    print_summary(summary)
    figures = [plot_heatmap(res.dir), plot_heatmap(res.dir, y="step_size"), plot_best_vs_c(res.dir)]
    print("figures:", ", ".join(map(str, figures)))
    return res, summary


if __name__ == "__main__":
    main()
