"""How much can batching runs gain on this machine? Per-lane cost against batch size B.

The issue-4 target "batched sweep ≥ 5× a Python loop of `gflow.simulate`" needs a batch of B runs
to cost less than B/5 single runs. This measures, on the small problem (n=40, d=200, h=100,
float32, matmul precision 'highest') at one α (all lanes take about the same number of steps):

- `vf`: the vector field alone (gradient + margin rate), vmapped over B lanes: ms per lane-evaluation;
- `solve`: gflow's batched solve of B runs (`gflow.twolayer.sweep.solve_batch`): ms per lane-step
  (wall / (B × the batch's largest step count));
- `simulate`: one `gflow.simulate` call: ms per step, the unit of the Python loop;
- `matmul`: GFLOP/s of the forward product of B lanes at once, x (n×d) · [W_1ᵀ … W_Bᵀ] (d×B·h),
  against a 2048³ matmul (what this machine's cores reach on large matrices).

A step evaluates the vector field 3 times (Bosh3, FSAL) plus the loss for the stop event, so
`3·vf + loss` per lane at the best B bounds what any batched solve can reach; the ratio
simulate / that bound is the most batching could gain here even with zero solver overhead.

    python -m benchmarks.studies.batch_ceiling [--alpha 0.01] [--repeats 5]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gflow
from benchmarks.cli import parser
from benchmarks.common import problem_config, report, timed
from gflow.twolayer import model
from gflow.twolayer.flow import Lane
from gflow.twolayer.sweep import solve_batch

BATCHES = (1, 4, 16, 64)


def _lanes(cfg, batch, alpha):
    full = lambda v: jnp.full((batch,), v, jnp.float32)  # noqa: E731
    return Lane(
        init_scale=full(alpha),
        multiplier=full(cfg.model.multiplier),
        target_loss=full(cfg.flow.target_loss),
        rtol=full(cfg.flow.rtol),
        init_key=jax.vmap(model.init_key)(jnp.arange(batch)),
    )


def measure(alpha=0.01, repeats=5, batches=BATCHES) -> dict:
    cfg = problem_config("small", n_seeds=1, init_scales=(alpha,))
    data = gflow.twolayer.data.make_dataset(cfg.data, jnp.float32)
    x, y = data.x, data.y
    gram = x @ x.T
    flow = cfg.flow.compiled()
    rows = []
    mm = jax.jit(lambda a, b: a @ b)
    big = jnp.ones((2048, 2048), jnp.float32)
    jax.block_until_ready(mm(big, big))
    t_big, _ = timed(mm, big, big, repeats=repeats)
    peak = 2 * 2048**3 / t_big
    with jax.default_matmul_precision(cfg.flow.matmul_precision):
        for b in batches:
            lanes = _lanes(cfg, b, alpha)
            params = jax.vmap(
                lambda k: model.init_params(key=k, d=x.shape[1], width=cfg.model.width, init_scale=alpha)
            )(lanes.init_key)
            vf = jax.jit(jax.vmap(lambda p: model.flow_velocity(p, x, y, 1.0, gram)))
            loss = jax.jit(jax.vmap(lambda p: model.loss(p, x, y, 1.0)))
            solve = lambda lanes=lanes: solve_batch(
                lanes,
                data,
                width=cfg.model.width,  # noqa: E731
                second_layer=cfg.model.second_layer,
                flow=flow,
            )
            for fn in (lambda: vf(params), lambda: loss(params), solve):
                jax.block_until_ready(fn())  # compile
            t_vf, _ = timed(vf, params, repeats=repeats * 4)
            t_loss, _ = timed(loss, params, repeats=repeats * 4)
            t_solve, res = timed(solve, repeats=repeats)
            w_all = jnp.ones((x.shape[1], b * cfg.model.width), jnp.float32)
            jax.block_until_ready(mm(x, w_all))
            t_mm, _ = timed(mm, x, w_all, repeats=repeats * 4)
            steps = int(np.max(np.asarray(res.n_steps)))
            rows.append(
                {
                    "batch": b,
                    "vf_ms_per_lane": 1e3 * t_vf / b,
                    "loss_ms_per_lane": 1e3 * t_loss / b,
                    "solve_ms_per_lane_step": 1e3 * t_solve / (b * steps),
                    "solve_steps_max": steps,
                    "solve_wall_s": t_solve,
                    "matmul_gflops": 2 * x.shape[0] * x.shape[1] * b * cfg.model.width / t_mm / 1e9,
                }
            )
            print(rows[-1], flush=True)
    sim = lambda: gflow.simulate(init_scale=alpha, seed=0, config=cfg, data=data)  # noqa: E731
    jax.block_until_ready(sim())
    t_sim, r = timed(sim, repeats=repeats)
    sim_ms_per_step = 1e3 * t_sim / int(r.n_steps)
    best = min(rows, key=lambda row: 3 * row["vf_ms_per_lane"] + row["loss_ms_per_lane"])
    floor = 3 * best["vf_ms_per_lane"] + best["loss_ms_per_lane"]
    best_solve = min(row["solve_ms_per_lane_step"] for row in rows)
    return {
        "problem": "small",
        "alpha": alpha,
        "dtype": "float32",
        "repeats": repeats,
        "rows": rows,
        "simulate_ms_per_step": sim_ms_per_step,
        "simulate_steps": int(r.n_steps),
        "evaluation_floor_ms_per_lane_step": floor,
        "evaluation_floor_batch": best["batch"],
        "ceiling_loop_over_batched": sim_ms_per_step / floor,
        "matmul_2048_gflops": peak / 1e9,
        "achieved_loop_over_batched": sim_ms_per_step / best_solve,
    }


def main():
    ap = parser(__doc__, quick=None, json="batch_ceiling.json", repeats=5)
    ap.add_argument("--alpha", type=float, default=0.01)
    args = ap.parse_args()
    report(measure(args.alpha, args.repeats), args.json)


if __name__ == "__main__":
    main()
