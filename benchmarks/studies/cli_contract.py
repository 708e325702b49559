"""A warm `gflow sweep` of the default config at `flow.accuracy` = L against the short vmapped JAX GD script a
researcher would write instead, which self-verifies the same runs; both end to end, both under the contract.

The default config (`gflow.Config()`: n = 40, d = 100, h = 100, 13 α × 8 seeds = 104 runs, η = 0.01, float32).
- **gflow**: `python -m gflow.cli sweep --out DIR --set flow.accuracy=L --quiet --no-plot`.
- **JAX GD** (`GD_SCRIPT`, 30 lines, run as `python -c`): for each α, the 8 seeds vmapped in one jitted
  `while_loop` of full-batch GD (loss and gradient from `gflow.twolayer.model.loss_and_grad`, one fused pass an
  iteration) until L ≤ η, with t_η and θ interpolated linearly inside the last iteration; lr starts at 1 and
  halves until t_η and θ of lr and lr/2 agree to L for every seed of that α (the self-verification the contract
  asks of any contender; the answer is the lr/2 run).
Both are separate Python processes with a warm JAX compile cache (one cold call each first, not timed), so each
pays its start-up, imports, data, cache loads and writing its results; the two alternate, `repeats` times,
medians. CPU time (user + system, all threads, `getrusage(RUSAGE_CHILDREN)`) is recorded beside the wall.

**The contract**, checked for both against float64 references (gflow at `flow.accuracy` = L/10, `simulate` per
run, not charged): |t_η − t_ref|/t_ref ≤ L and ‖θ − θ_ref‖ ≤ L·‖θ_ref − θ(0)‖. gflow's θ comes from `simulate`
of the same run at the same settings (the sweep does not keep θ); the largest t_η difference between the sweep
and `simulate` is recorded beside it.

    python -m benchmarks.studies.cli_contract [--level 1e-2] [--repeats 3] [--json benchmarks/results/cli_contract.json]
    python -m benchmarks.studies.cli_contract --quick --json ''    # 2 α × 2 seeds: the smoke test
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import gflow  # noqa: E402
from benchmarks.common import loadavg, machine, write_json  # noqa: E402
from benchmarks.reference import state_rel_diff  # noqa: E402
from gflow.twolayer.config import Config, with_overrides  # noqa: E402

# The contender, as a user would write it. argv: level, the output .npz, then `--set` overrides of the default config.
GD_SCRIPT = """
import sys, numpy as np, jax, jax.numpy as jnp
from gflow.twolayer import config as C, data as D, model as M
cfg, level, out = C.Config().with_overrides(sys.argv[3:]), float(sys.argv[1]), sys.argv[2]
ds, eta = D.make_dataset(cfg.data), cfg.flow.target_loss
keys = jax.vmap(M.init_key)(jnp.arange(cfg.sweep.n_seeds, dtype=jnp.uint32))
def gd(alpha, key, lr):  # full-batch GD to L <= eta; t and theta interpolated inside the last iteration
    p0 = M.init_params(key=key, d=cfg.data.d, width=cfg.model.width, init_scale=alpha, dtype=ds.x.dtype)
    def body(c):
        k, p, _, l, g = c
        q = jax.tree.map(lambda v, w: v - lr * w, p, g)
        return (k + 1, q, p, *M.loss_and_grad(q, ds.x, ds.y)) + (l,)
    l0, g0 = M.loss_and_grad(p0, ds.x, ds.y)
    c = (0, p0, p0, l0, g0, l0)
    k, p, q, l, _, lq = jax.lax.while_loop(lambda c: (c[3] > eta) & (c[0] < 10**7) & jnp.isfinite(c[3]), lambda c: body(c[:5]), c)
    s = jnp.where(k > 0, (lq - eta) / (lq - l), 0.0)  # fraction of the last iteration
    return jnp.maximum(k - 1 + s, 0) * lr, jax.tree.map(lambda a, b: a + s * (b - a), q, p), p0
run = jax.jit(jax.vmap(gd, (None, 0, None)))
def rel(p, q, p0): return jnp.sqrt(sum(jnp.sum((a - b) ** 2, axis=(1, 2)[:a.ndim - 1]) for a, b in zip(p, q))
                                   / sum(jnp.sum((a - b) ** 2, axis=(1, 2)[:a.ndim - 1]) for a, b in zip(q, p0)))
T, W, A = [], [], []
for alpha in cfg.sweep.init_scales:
    lr = 1.0
    t, p, p0 = run(alpha, keys, lr)
    while True:
        t2, p2, _ = run(alpha, keys, lr / 2)
        if jnp.all(jnp.abs(t / t2 - 1) <= level) and jnp.all(rel(p, p2, p0) <= level): break
        lr, t, p = lr / 2, t2, p2
    T.append(t2); W.append(p2.W); A.append(p2.a)
np.savez(out, t=np.array(T), W=np.array(W), a=np.array(A))
"""

QUICK = ["sweep.init_scales=[0.01, 1.0]", "sweep.n_seeds=2", "data.n_test=200"]


def _child(cmd, env):
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def gflow_cli(sets, cache, workdir):
    """(wall, cpu, arrays) of one `gflow sweep` process."""
    out = tempfile.mkdtemp(dir=workdir)
    cmd = [sys.executable, "-m", "gflow.cli", "sweep", "--out", out, "--quiet", "--no-plot"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "GFLOW_COMPILE_CACHE": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    wall, cpu = _child(cmd, env)
    return wall, cpu, gflow.runs.store.arrays_of(gflow.runs.store.load_run(out))


def gd_script(level, sets, cache, workdir):
    """(wall, cpu, results) of one run of the GD script (JAX's compile cache at `cache`, as the CLI's)."""
    out = os.path.join(tempfile.mkdtemp(dir=workdir), "gd.npz")
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    wall, cpu = _child([sys.executable, "-c", GD_SCRIPT, str(level), out, *sets], env)
    return wall, cpu, dict(np.load(out))


def references(cfg, level):
    """Per (α, seed): float64 t_η and θ at flow.accuracy = level/10, and θ(0) (simulate, one run at a time)."""
    ref = with_overrides(cfg, ["flow.dtype=float64", f"flow.accuracy={level / 10}", "flow.max_steps=1000000"])
    return _states(ref)


def _states(cfg):
    data = gflow.twolayer.data.make_dataset(cfg.data, np.dtype(cfg.flow.dtype))
    t, W, a, est = [], [], [], []
    for alpha in cfg.sweep.init_scales:
        for seed in range(cfg.sweep.n_seeds):
            r = gflow.simulate(init_scale=alpha, seed=seed, config=cfg, data=data)
            t.append(float(r.t_stop))
            W.append(np.asarray(r.params.W, np.float64))
            a.append(np.asarray(r.params.a, np.float64))
            est.append(max(float(r.t_err_est), float(r.theta_err_est)))
    shape = (len(cfg.sweep.init_scales), cfg.sweep.n_seeds)
    return dict(
        t=np.reshape(t, shape),
        W=np.reshape(W, shape + W[0].shape),
        a=np.reshape(a, shape + a[0].shape),
        est=np.reshape(est, shape),
    )


def _init(cfg):
    from gflow.twolayer import model

    W0, a0 = [], []
    for alpha in cfg.sweep.init_scales:
        for seed in range(cfg.sweep.n_seeds):
            p = model.init_params(
                key=model.init_key(seed), d=cfg.data.d, width=cfg.model.width, init_scale=alpha, dtype=np.float64
            )
            W0.append(np.asarray(p.W))
            a0.append(np.asarray(p.a))
    shape = (len(cfg.sweep.init_scales), cfg.sweep.n_seeds)
    return np.reshape(W0, shape + W0[0].shape), np.reshape(a0, shape + a0[0].shape)


def contract(t, W, a, ref, W0, a0, level):
    """Per-run errors against the references, and how many runs meet both halves."""
    t_err = np.abs(np.asarray(t, np.float64) / ref["t"] - 1)
    th_err = np.array(
        [
            [
                state_rel_diff(W[i, j], a[i, j], ref["W"][i, j], ref["a"][i, j], W0[i, j], a0[i, j])
                for j in range(t_err.shape[1])
            ]
            for i in range(t_err.shape[0])
        ]
    )
    met = (t_err <= level) & (th_err <= level)
    return {
        "t_err_max": float(np.max(t_err)),
        "theta_err_max": float(np.max(th_err)),
        "met": int(met.sum()),
        "runs": int(met.size),
        "t_err": t_err.tolist(),
        "theta_err": th_err.tolist(),
    }


def measure(level=1e-2, repeats=3, quick=False, log=print) -> dict:
    sets = QUICK if quick else []
    cfg = with_overrides(Config(), sets)
    t0 = time.perf_counter()
    ref = references(cfg, level)
    W0, a0 = _init(cfg)
    log(f"references: {time.perf_counter() - t0:.1f} s, largest own estimate {np.max(ref['est']):.1e}")
    g_sets = sets + [f"flow.accuracy={level}"]
    walls, cpus = {"gflow": [], "jax_gd": []}, {"gflow": [], "jax_gd": []}
    with tempfile.TemporaryDirectory() as work:
        caches = {k: os.path.join(work, f"cache-{k}") for k in walls}
        cold = {
            "gflow": gflow_cli(g_sets, caches["gflow"], work)[0],
            "jax_gd": gd_script(level, sets, caches["jax_gd"], work)[0],
        }
        log(f"cold walls: {cold}")
        for _ in range(repeats):
            w, c, arrays = gflow_cli(g_sets, caches["gflow"], work)
            walls["gflow"].append(w)
            cpus["gflow"].append(c)
            w, c, gd = gd_script(level, sets, caches["jax_gd"], work)
            walls["jax_gd"].append(w)
            cpus["jax_gd"].append(c)
            log({k: [f"{v:.2f}" for v in w] for k, w in walls.items()} | {"load": loadavg()})
    mine = _states(with_overrides(cfg, [f"flow.accuracy={level}"]))  # gflow's θ: simulate, same settings
    t_sweep = np.asarray(arrays["t_stop"], np.float64)
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
    out = {
        "config": "gflow.Config() (default)" + (f" with {sets}" if sets else ""),
        "level": level,
        "runs": int(t_sweep.size),
        "repeats": repeats,
        "reference_accuracy": level / 10,
        "reference_est_max": float(np.max(ref["est"])),
        "cold_wall_s": cold,
        "gflow": {
            "wall_s": med["gflow"],
            "walls": walls["gflow"],
            "cpu_s": med_cpu["gflow"],
            "cpus": cpus["gflow"],
            "steps": int(np.sum(arrays["n_steps"])),
            "n_solves_mean": float(np.mean(arrays["n_solves"])),
            "sweep_vs_simulate_t_rel_diff_max": float(np.max(np.abs(t_sweep / mine["t"] - 1))),
            **contract(t_sweep, mine["W"], mine["a"], ref, W0, a0, level),
        },
        "jax_gd": {
            "wall_s": med["jax_gd"],
            "walls": walls["jax_gd"],
            "cpu_s": med_cpu["jax_gd"],
            "cpus": cpus["jax_gd"],
            "script_lines": len(GD_SCRIPT.strip().splitlines()),
            **contract(gd["t"], gd["W"], gd["a"], ref, W0, a0, level),
        },
        "ratio_wall_gd_over_gflow": med["jax_gd"] / med["gflow"],
        "ratio_cpu_gd_over_gflow": med_cpu["jax_gd"] / med_cpu["gflow"],
        "load_at_end": loadavg(),
        "machine": machine(),
    }
    for k in ("gflow", "jax_gd"):
        r = out[k]
        log(
            f"{k:7s} wall {r['wall_s']:.2f} s  cpu {r['cpu_s']:.2f} s  contract met {r['met']}/{r['runs']}  "
            f"max t err {r['t_err_max']:.1e}  max θ err {r['theta_err_max']:.1e}"
        )
    log(f"JAX GD / gflow: wall {out['ratio_wall_gd_over_gflow']:.2f}×, cpu {out['ratio_cpu_gd_over_gflow']:.2f}×")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--level", type=float, default=1e-2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2 α × 2 seeds, 1 repeat: the smoke test")
    ap.add_argument("--json", default="benchmarks/results/cli_contract.json")
    a = ap.parse_args(argv)
    res = measure(a.level, 1 if a.quick else a.repeats, quick=a.quick)
    write_json(res, None if a.quick and a.json == "benchmarks/results/cli_contract.json" else a.json)
    return res


if __name__ == "__main__":
    main()
