"""Cost of the semi-analytic test error (gflow.twolayer.gm_error) against the Monte-Carlo one and a training gradient,
and of a whole run with and without the semi-analytic error on the save grid (issue 16).

    python experiments/sa_cost.py [--quick] [--out runs/sa_cost]

Times are medians of `reps` calls after compilation (jax.block_until_ready). Writes <out>/summary.json.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import gflow
from gflow.twolayer import model
from gflow.twolayer.data import make_dataset
from gflow.twolayer.gm_error import semi_analytic_error

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa


def get_config(quick: bool = False) -> dict:
    preset = dict(
        cases=[(5, 100, 512), (5, 100, 10_000), (400, 100, 512)],  # (d, h, draws)
        run=dict(n=40, d=5, width=100, alpha=1e-3, n_test=4000, n_save=(2, 48)),
        reps=20,
    )
    if quick:
        preset.update(cases=[(5, 8, 64)], run=dict(n=8, d=3, width=8, alpha=1e-2, n_test=100, n_save=(2, 4)), reps=2)
    return preset


def median_time(f, *args, reps):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/sa_cost")
    p = get_config(args.quick)
    timer = fa.Timer()
    rows = []
    for d, h, m in p["cases"]:
        ds = make_dataset(gflow.DataConfig(n=40, d=d, n_test=m, kappa=1.0, sigma=0.25))
        params = model.init_params(key=model.init_key(0), d=d, width=h, init_scale=1.0)
        sa = jax.jit(lambda q: semi_analytic_error(q.W, q.a, ds.s, ds.kappa, ds.sigma, ds.x_test))
        mc = jax.jit(lambda q: jnp.mean(ds.y_test * model.apply(q, ds.x_test) < 0))
        grad = jax.jit(lambda q: model.loss_and_grad(q, ds.x, ds.y, 1.0))
        rows.append(
            {
                "d": d,
                "h": h,
                "draws": m,
                **{
                    k: median_time(f, params, reps=p["reps"]) for k, f in (("sa_s", sa), ("mc_s", mc), ("grad_s", grad))
                },
            }
        )
        print(rows[-1])
    r = p["run"]
    runs = []
    for n_save in r["n_save"]:
        for sa_grid in (False, True):
            cfg = gflow.Config(
                data=gflow.DataConfig(n=r["n"], d=r["d"], kappa=1.0, sigma=0.25, mode="separable", n_test=r["n_test"]),
                model=gflow.ModelConfig(width=r["width"]),
                flow=gflow.FlowConfig(n_save=n_save, sa_grid=sa_grid),
            )
            t = median_time(
                lambda s: gflow.simulate(init_scale=r["alpha"], seed=s, config=cfg).t_stop,
                0,
                reps=max(1, p["reps"] // 4),
            )
            runs.append({"n_save": n_save, "sa_grid": sa_grid, "run_s": t})
            print(runs[-1])
    summary = {"preset": p, "observable": rows, "runs": runs, "wall_s": timer.seconds()}
    fa.write_summary(args.out, summary)
    return summary


if __name__ == "__main__":
    main()
