"""Steps to 99% training accuracy against the multiplier c on the CPU presets' data and nets, one init seed,
a long budget: the measurement that set the presets' step budgets (EXPERIMENTS.md, "Steps to 99% against c").

    python experiments/deep_steps_vs_c.py digits-mlp     # c = 2⁻¹⁰, 2⁻⁸, …, 2² × η ∈ {0.01, 0.03, 0.1, 0.3}, 4000 steps
    python experiments/deep_steps_vs_c.py mnist1d-cnn    # c = 2⁻¹⁰, 2⁻⁶, 2⁻², 2² × η ∈ {0.03, 0.1, 0.3}, 3000 steps

Prints, per c and η, status:steps:peak test accuracy (%); writes the run directory runs/deep_steps_<name>.
"""

from __future__ import annotations

import sys

import numpy as np

from gflow.deep import DeepConfig, run_deep_sweep
from gflow.deep.analysis import STATUS_SHORT
from gflow.deep.config import load_preset
from gflow.deep.stop import STATUS_NAMES


def get_config(name: str) -> DeepConfig:
    """The preset's data, net and η grid (gflow/deep/presets/<name>.toml) with one seed, a long budget and
    a sparser c grid."""
    if name == "digits-mlp":
        return load_preset(name).replace(
            train={"max_steps": 4000},
            sweep={"multipliers": tuple(2.0**k for k in (-10, -8, -6, -4, -2, 0, 2)), "n_seeds": 1, "max_lanes": 4},
        )
    if name == "mnist1d-cnn":
        return load_preset(name).replace(sweep={"multipliers": tuple(2.0**k for k in (-10, -6, -2, 2)), "n_seeds": 1})
    raise SystemExit(f"unknown {name!r}: digits-mlp or mnist1d-cnn")


def main(argv=None):
    name = (argv or sys.argv[1:] or ["digits-mlp"])[0]
    cfg = get_config(name)
    res = run_deep_sweep(cfg, out=f"runs/deep_steps_{name}", progress=False)
    a = res.arrays
    print(f"{name}: {res.meta['n_runs']} runs, training {res.meta['wall_s']:.0f} s")
    print("c \\ η: " + "  ".join(f"{lr:g}" for lr in cfg.sweep.lrs))
    for i, c in enumerate(cfg.sweep.multipliers):
        cells = [
            f"{STATUS_SHORT[STATUS_NAMES[a['status'][i, j, 0]]]}:{a['steps'][i, j, 0]}:{100 * a['peak_test_acc'][i, j, 0]:.1f}"
            for j in range(len(cfg.sweep.lrs))
        ]
        print(f"2^{int(np.log2(c))}: " + "  ".join(cells))
    return res


if __name__ == "__main__":
    main()
