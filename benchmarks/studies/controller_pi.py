"""PI step-size control in flow.accuracy mode (issue 11, item 2): does it cut the lazy α's rejected steps?

gflow's controller is diffrax's PID controller as an I controller (pcoeff 0, icoeff 1). In the lazy
regime the steps are stability-limited and ~40% are rejected (benchmarks/studies/lazy_steps.py); PI control
is the textbook remedy. This runs `flow.accuracy` mode (float64, seed 0) over a few α with each
(pcoeff, icoeff) and prints steps, rejected steps, solves, t_stop and the error estimate per α.
Step counts only (no timing).

    python -m benchmarks.studies.controller_pi small 1e-5,0.001,0.1,1.0,10.0 1e-2
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.common import problem_config  # noqa: E402
from gflow.twolayer import flow  # noqa: E402

VARIANTS = {"I(0,1)": (0.0, 1.0), "PI(0.4,0.3)": (0.4, 0.3), "PI(0.3,0.3)": (0.3, 0.3), "PI(0.2,0.4)": (0.2, 0.4)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    problem, alphas, acc = argv[0], [float(a) for a in argv[1].split(",")], float(argv[2])
    base = flow.BlockFloorController
    cfg = problem_config(problem, dtype="float64", n_seeds=1, init_scales=tuple(alphas))
    cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, accuracy=acc, max_steps=10**6))
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    try:
        for name, (p, i) in VARIANTS.items():
            flow.BlockFloorController = functools.partial(base, pcoeff=p, icoeff=i)
            jax.clear_caches()
            r = gflow.run_sweep(cfg, data=data, progress=False).arrays
            print(
                name,
                "steps",
                r["n_steps"][:, 0].tolist(),
                "rej",
                r["n_rejected"][:, 0].tolist(),
                "solves",
                r["n_solves"][:, 0].tolist(),
                "t",
                [f"{t:.6g}" for t in r["t_stop"][:, 0]],
                "est",
                [f"{t:.1e}" for t in r["t_err_est"][:, 0]],
                flush=True,
            )
    finally:
        flow.BlockFloorController = base


if __name__ == "__main__":
    main()
