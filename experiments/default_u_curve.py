"""The default FLS sweep as a script: test error vs init scale α on the Gaussian mixture.

    python experiments/default_u_curve.py [--out runs/default_u_curve]

Same as `gflow sweep --out DIR`; here the config is spelled out so it can be edited. The run directory
resumes: a rerun loads the chunks already done.
"""

from __future__ import annotations

import argparse

import numpy as np

import gflow
from gflow.twolayer.plot import plot_sweep


def get_config() -> gflow.Config:
    return gflow.Config(
        data=gflow.DataConfig(
            n=40,  # training points
            n_test=4000,  # Monte-Carlo test points
            d=100,  # input dimension
            kappa=1.0,  # signal strength κ
            sigma=0.5,  # noise σ: Bayes error Φ(−κ/σ) = 2.3%
            seed=0,  # one dataset for all α and init seeds
        ),
        model=gflow.ModelConfig(width=100, second_layer="balanced"),
        flow=gflow.FlowConfig(target_loss=0.01, solver="bosh3", rtol=1e-3),  # stop at training loss η
        sweep=gflow.SweepConfig(init_scales=tuple(np.logspace(-5, 1, 13)), n_seeds=8),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/default_u_curve")
    args = ap.parse_args(argv)
    cfg = get_config()
    gflow.run_sweep(cfg, out=args.out)
    print(f"figure: {plot_sweep(args.out)}")


if __name__ == "__main__":
    main()
