"""What one gflow step costs against one GD iteration, piece by piece.

One problem, one α, seed 0, float64, in one process; the variants alternate, `repeats` timings each,
medians. Per unit of work:
- **GD iteration**: the jitted JAX GD loop of the fair benchmark (`benchmarks.gd.jax_gd_sweep`) at an lr
  too small to reach η, `n_iters` iterations: one gradient and one loss a step;
- **vector field**: gflow's vector field (`model.flow_velocity`: −∇L and the margin rate) and the loss,
  in a `fori_loop`; a Bosh3 step evaluates it 3 times (FSAL);
- **bare diffrax step**: `diffrax.Bosh3` + `PIDController` on θ − θ(0) alone, no event, no saves, to the
  gflow run's t_η: diffrax's own loop around the 3 evaluations;
- **gflow step, minimal observables**: `gflow.simulate` at fixed `rtol`, with the save grid and the final
  observables cut to their minimum (`flow.n_save=2`, `n_test_grid=1`, `sa_draws=1`): its solver, controller,
  margin block and stop event, plus the stop's refinement, over the run's steps; once driven by
  `diffrax.diffeqsolve` (`flow.integrator='diffrax'`) and once by gflow's lean loop (the default; the same steps);
- **gflow step, as shipped**: the same run with the default observables (48 saved times, 512 test points on
  the grid, the semi-analytic test error from 4,096 draws at the stop), over the same steps.

    python -m benchmarks.studies.step_cost [--problem small] [--alpha 0.1] [--rtol 1e-5] [--repeats 5] [--json PATH]
    python -m benchmarks.studies.step_cost --quick    # tiny problem, seconds: the smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.common import loadavg, machine, problem_config, write_json  # noqa: E402
from benchmarks.gd import jax_gd_sweep  # noqa: E402
from gflow.twolayer import model  # noqa: E402


def pieces(problem, alpha, rtol, n_iters):
    """{name: (callable, units of work it does)}; each callable is compiled by its first call."""
    cfg = problem_config(problem, dtype="float64", n_seeds=1, init_scales=(alpha,), rtol=rtol)
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    x, y, c = data.x, data.y, jnp.float64(cfg.model.multiplier)
    gram = x @ x.T if x.shape[0] < x.shape[1] else None
    p0 = model.init_params(
        key=model.init_key(0),
        d=x.shape[1],
        width=cfg.model.width,
        init_scale=jnp.float64(alpha),
        second_layer=cfg.model.second_layer,
        dtype=jnp.float64,
    )
    lean = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, n_save=2, n_test_grid=1, sa_draws=1))
    lean_diffrax = dataclasses.replace(lean, flow=dataclasses.replace(lean.flow, integrator="diffrax"))
    run = gflow.simulate(init_scale=alpha, config=cfg, data=data)
    steps, t_eta = int(run.n_steps), float(run.t_stop)

    @jax.jit
    def evals(p):
        def body(_, p):
            v, _dm = model.flow_velocity(p, x, y, c, gram)
            return jax.tree.map(lambda a, b: a + 1e-9 * b * model.loss(p, x, y, c), p, v)

        return jax.lax.fori_loop(0, n_iters, body, p)

    rms0 = model.param_norm(p0) / jnp.sqrt(jnp.asarray(p0.W.size + p0.a.size, jnp.float64))

    def vf(t, u, _):
        return model.flow_velocity(jax.tree.map(jnp.add, p0, u), x, y, c, gram)[0]

    @jax.jit
    def bare():
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf),
            diffrax.Bosh3(),
            0.0,
            t_eta,
            None,
            jax.tree.map(jnp.zeros_like, p0),
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * rms0),
            max_steps=10**6,
            throw=False,
        )
        return sol.stats["num_steps"]

    bare_steps = int(bare())
    return {
        "GD iteration": (
            lambda: jax_gd_sweep(
                [alpha], [0], data, width=cfg.model.width, lr=1e-9, eta=cfg.flow.target_loss, max_iters=n_iters
            ),
            n_iters,
        ),
        "vector field": (lambda: evals(p0), n_iters),
        "bare diffrax step": (bare, bare_steps),
        "gflow step, diffrax loop, minimal observables": (
            lambda: gflow.simulate(init_scale=alpha, config=lean_diffrax, data=data),
            steps,
        ),
        "gflow step, lean loop, minimal observables": (
            lambda: gflow.simulate(init_scale=alpha, config=lean, data=data),
            steps,
        ),
        "gflow step, as shipped": (lambda: gflow.simulate(init_scale=alpha, config=cfg, data=data), steps),
    }, steps


def run(problem="small", alpha=0.1, rtol=1e-5, repeats=5, n_iters=2000, log=print):
    fns, steps = pieces(problem, alpha, rtol, n_iters)
    for f, _ in fns.values():  # compile
        jax.block_until_ready(f())
    walls = {k: [] for k in fns}
    for _ in range(repeats):  # alternating
        for k, (f, _) in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            walls[k].append(time.perf_counter() - t0)
    per = {k: statistics.median(walls[k]) / n for k, (_, n) in fns.items()}
    gd = per["GD iteration"]
    rows = {
        k: {
            "units": fns[k][1],
            "median_s": statistics.median(walls[k]),
            "ms_per_unit": 1e3 * v,
            "over_gd_iteration": v / gd,
        }
        for k, v in per.items()
    }
    res = {
        "problem": problem,
        "alpha": alpha,
        "rtol": rtol,
        "dtype": "float64",
        "gflow_steps": steps,
        "repeats": repeats,
        "rows": rows,
        "load": loadavg(),
        "machine": machine(),
    }
    log(f"{problem}, α={alpha:g}, rtol {rtol:g}, float64 ({steps} gflow steps), medians of {repeats}:")
    for k, r in rows.items():
        log(f"  {k:24s} {r['ms_per_unit']:8.3f} ms  ({r['over_gd_iteration']:.2f}× a GD iteration; {r['units']} units)")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problem", default="small")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny problem, 2 repeats, 200 iterations")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        res = run("tiny", a.alpha, 1e-3, repeats=2, n_iters=200)
    else:
        res = run(a.problem, a.alpha, a.rtol, a.repeats)
    write_json(res, a.json)
    return res


if __name__ == "__main__":
    main()
