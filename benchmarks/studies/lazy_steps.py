"""Where gflow's steps go in the lazy regime (issue 11, item 2): per solve of `flow.accuracy` mode.

For one α (default: the medium problem at α = 10, η = 1e-2, float64, seed 0, accuracy 1e-2) this
runs `flow.accuracy` mode once to get its solves' rtol sequence, then repeats each solve on its own at
that rtol (the same controller: no margin floor) with diffrax saving every accepted step, and reports
per solve: accepted and rejected steps, t_stop, the step sizes h (median, last), h·λ_max with λ_max
the largest Hessian eigenvalue of L at the step's start (power iteration on Hessian-vector products;
an explicit method's step is stability-limited where h·λ_max sits near its stability bound, 2.51 for
Bosh3 on the negative real axis), and which block of the error norm (u or the margins) is the larger
on the accepted steps, and by how much. Same run with the error norm restricted to either block
(`norm`=u or m) gives the steps each block alone would cost.

    python -m benchmarks.studies.lazy_steps [--problem medium] [--alpha 10] [--eta 1e-2] [--accuracy 1e-2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

import gflow  # noqa: E402
from benchmarks.common import problem_config  # noqa: E402
from gflow.twolayer import model  # noqa: E402
from gflow.twolayer.solvers import BlockFloorController as _BlockFloorController  # noqa: E402
from gflow.twolayer.solvers import FusedBosh3  # noqa: E402


def setup(problem, alpha, eta):
    cfg = problem_config(problem, target_loss=eta, dtype="float64", n_seeds=1, init_scales=(alpha,))
    data = gflow.twolayer.data.make_dataset(cfg.data, np.float64)
    p0 = model.init_params(
        key=model.init_key(0),
        d=cfg.data.d,
        width=cfg.model.width,
        init_scale=alpha,
        second_layer=cfg.model.second_layer,
        dtype=jnp.float64,
    )
    return cfg, data, p0


@jax.jit
def _lam_max(p, x, y):
    grad = jax.grad(lambda q: model.loss(q, x, y))

    def norm(v):
        return jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree.leaves(v)))

    def body(_, carry):
        v, _ = carry
        hv = jax.jvp(grad, (p,), (v,))[1]
        nv = norm(hv)
        return jax.tree.map(lambda a: a / nv, hv), nv

    v0 = jax.tree.map(lambda a: jax.random.normal(jax.random.PRNGKey(1), a.shape, a.dtype), p)
    v0 = jax.tree.map(lambda a: a / norm(v0), v0)
    return jax.lax.fori_loop(0, 40, body, (v0, jnp.asarray(0.0, x.dtype)))[1]


def lam_max(p, x, y):
    """Largest eigenvalue of ∇²L(θ) by power iteration (40 Hessian-vector products)."""
    return float(_lam_max(p, x, y))


def solve(cfg, data, p0, rtol, norm="both"):
    x, y, eta = data.x, data.y, cfg.flow.target_loss
    rms0 = model.param_norm(p0) / jnp.sqrt(p0.W.size + p0.a.size)
    atol = rtol * rms0
    m_scale = atol / rtol
    gram = x @ x.T if x.shape[0] < x.shape[1] else None

    def vf(t, s, _):
        v, dm = model.flow_velocity(jax.tree.map(jnp.add, p0, s[0]), x, y, 1.0, gram)
        return v, m_scale * dm

    def block_norm(err):
        nu, nm = optx.rms_norm(err[0]), optx.rms_norm(err[1])
        return {"both": jnp.maximum(nu, nm), "u": nu, "m": nm}[norm]

    ctrl = _BlockFloorController(rtol=rtol, atol=atol, norm=block_norm, use_floor=True, floor_margins=False)
    below = diffrax.Event(lambda t, s, _, **k: model.loss(jax.tree.map(jnp.add, p0, s[0]), x, y) <= eta)
    s0 = (jax.tree.map(jnp.zeros_like, p0), m_scale * y * model.apply(p0, x))
    sol = jax.jit(
        lambda s0: diffrax.diffeqsolve(
            diffrax.ODETerm(vf),
            FusedBosh3(),
            0.0,
            cfg.flow.t_max,
            None,
            s0,
            saveat=diffrax.SaveAt(steps=True),
            stepsize_controller=ctrl,
            event=below,
            max_steps=1000,
            throw=False,
        )
    )(s0)  # saves every step: keep the buffer small
    ts = np.asarray(sol.ts)
    keep = np.isfinite(ts)
    ts = np.concatenate([[0.0], ts[keep]])
    us = jax.tree.map(lambda a: a[keep], sol.ys)
    starts = [s0] + [jax.tree.map(lambda a: a[i], us) for i in range(len(ts) - 2)]
    hs = np.diff(ts)
    # per accepted step: the scaled error of each block (one step re-taken from its start)
    blocks = []
    step = jax.jit(lambda s, h: FusedBosh3().step(diffrax.ODETerm(vf), 0.0, h, s, None, vf(0.0, s, None), False)[:2])
    for s, h in zip(starts, hs):
        y1, err = step(s, h)
        scaled = ctrl_scaled(ctrl, s, y1, err)
        blocks.append((float(optx.rms_norm(scaled[0])), float(optx.rms_norm(scaled[1]))))
    blocks = np.asarray(blocks)
    sample = np.unique(np.linspace(0, len(starts) - 1, 5).astype(int))
    lam = {int(i): lam_max(jax.tree.map(jnp.add, p0, starts[i][0]), x, y) for i in sample}
    st = sol.stats
    return {
        "rtol": float(rtol),
        "norm": norm,
        "accepted": int(st["num_accepted_steps"]),
        "rejected": int(st["num_rejected_steps"]),
        "t_end": float(ts[-1]),
        "h_median": float(np.median(hs)),
        "h_last": float(hs[-1]),
        "h_first": float(hs[0]),
        "h_lam_max_at_steps": {i: float(hs[i] * v) for i, v in lam.items()},
        "lam_max_at_steps": lam,
        "u_block_larger_fraction": float(np.mean(blocks[:, 0] > blocks[:, 1])),
        "err_ratio_m_over_u_median": float(np.median(blocks[:, 1] / blocks[:, 0])),
    }


def ctrl_scaled(ctrl, y0, y1, err):
    """The per-component error as the controller scales it (floor on u, none on the margins)."""

    def one(a, b, e):
        size = jnp.maximum(jnp.abs(a), jnp.abs(b))
        rms = jnp.sqrt(jnp.mean(size**2))
        return e / (ctrl.atol + ctrl.rtol * jnp.maximum(size, rms))

    return (
        jax.tree.map(one, y0[0], y1[0], err[0]),
        err[1] / (ctrl.atol + ctrl.rtol * jnp.maximum(jnp.abs(y0[1]), jnp.abs(y1[1]))),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="medium")
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--eta", type=float, default=1e-2)
    ap.add_argument("--accuracy", type=float, default=1e-2)
    ap.add_argument("--norms", nargs="+", default=["both"], choices=("both", "u", "m"))
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    cfg, data, p0 = setup(args.problem, args.alpha, args.eta)
    acc_cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, accuracy=args.accuracy, max_steps=10**6))
    r = gflow.simulate(init_scale=args.alpha, seed=0, config=acc_cfg, data=data)
    k = int(r.n_solves)
    # the rtol sequence: 10·acc, then /3 twice, then the controller's choice (the last one is r.rtol)
    rtols = [10 * args.accuracy / 3**i for i in range(min(k, 3))]
    out = {
        "problem": args.problem,
        "alpha": args.alpha,
        "eta": args.eta,
        "accuracy": args.accuracy,
        "accuracy_mode": {
            "n_solves": k,
            "n_steps": int(r.n_steps),
            "n_rejected": int(r.n_rejected),
            "final_rtol": float(r.rtol),
            "t_stop": float(r.t_stop),
            "t_err_est": float(r.t_err_est),
        },
        "solves": [],
    }
    print(json.dumps(out["accuracy_mode"]), flush=True)
    norms = args.norms
    for rt in rtols + ([float(r.rtol)] if k > 3 else []):
        for norm in norms:
            row = solve(cfg, data, p0, rt, norm)
            print(json.dumps(row), flush=True)
            out["solves"].append(row)
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
