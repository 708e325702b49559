"""What the observables cost on the default sweep's problem: CPU time of `run_sweep` (13 α × 2 seeds, float32)
with the default observables and with the save grid and/or the semi-analytic final error cut, medians of
alternating repeats after compilation (docs/numerics.md, "What the observables cost").

    python -m benchmarks.studies.observables_cost [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

import gflow
from benchmarks.common import loadavg, machine, write_json
from gflow.twolayer.config import Config, SweepConfig

VARIANTS = {
    "default": {},
    "n_save=2": dict(n_save=2),
    "sa_final": dict(sa_final=True),
    "sa_final, n_save=2": dict(sa_final=True, n_save=2),
}


def run(repeats=3, n_seeds=2, log=print):
    base = Config()
    cfgs = {
        k: dataclasses.replace(base, flow=dataclasses.replace(base.flow, **v), sweep=SweepConfig(n_seeds=n_seeds))
        for k, v in VARIANTS.items()
    }
    data = gflow.twolayer.data.make_dataset(base.data, np.float32)
    for c in cfgs.values():  # compile
        gflow.run_sweep(c, data=data, progress=False)
    cpu = {k: [] for k in cfgs}
    for _ in range(repeats):
        for k, c in cfgs.items():
            t0 = time.process_time()
            gflow.run_sweep(c, data=data, progress=False)
            cpu[k].append(time.process_time() - t0)
    res = {
        "cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "cpu_s_all": cpu,
        "repeats": repeats,
        "load": loadavg(),
        "machine": machine(),
    }
    for k, v in res["cpu_s"].items():
        log(f"  {k:22s} {v:.2f} s CPU")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    res = run(a.repeats)
    write_json(res, a.json)
    return res


if __name__ == "__main__":
    main()
