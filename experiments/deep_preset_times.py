"""Measured run-time estimates of the deep presets, for `gflow deep presets`.

    python experiments/deep_preset_times.py [--rounds 3] [--write]   # measures the CPU presets on this machine

A full CPU run of every preset would take hours on a shared 2-core machine, so each CPU preset's rate is
measured on a short run instead: the lanes of one chunk of the sweep (the chunk holding the middle c of its
grid, as many lanes as the sweep vmaps), compiled by one round, then timed over `--rounds` rounds of
`check_every` SGD steps and a check each (evaluations included). The worst case of the whole preset is its
lane-steps (every run to its step budget, `TrainConfig.budget(c)`) at that rate, plus one compile per
chunk shape. Runs that reach the target stop early, so real sweeps take less.

GPU presets are not measured here: their estimate uses the one GPU rate measured so far, 160 SGD
steps/s of ResNet-18 (GroupNorm, width 64, batch 128, 32×32×3 images) on one H200
(benchmarks/gpu/gpu_results/gpu_deep_check_run1.txt), with evaluations at an assumed 3× the training image
rate; presets with other nets (ResNet-50, VGG-19) have no measured rate and say so.

--write stores the figures in gflow/deep/presets/_timings.toml (with the date, the machine and its load
average), which `gflow deep presets` reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np

from gflow.deep.config import load_preset, preset_names

TIMINGS = Path(__file__).resolve().parents[1] / "gflow" / "deep" / "presets" / "_timings.toml"
GPU_STEPS_PER_S = 160.0  # ResNet-18, GroupNorm, batch 128, 32×32×3, one H200 (measured)
GPU_FORWARD_SPEEDUP = 3.0  # assumed


def worst_case_lane_steps(cfg) -> int:
    per_c = len(cfg.sweep.lrs) * cfg.sweep.n_seeds
    return int(sum(cfg.train.budget(c) for c in cfg.sweep.multipliers) * per_c)


def _description(name: str) -> str:
    from gflow.deep.config import preset_descriptions

    return preset_descriptions()[name]


def measure(name: str, rounds: int = 3) -> dict:
    """The measured rate of a CPU preset (lane-steps/s, evaluations included) and its worst-case estimate."""
    import jax
    import jax.numpy as jnp

    from gflow.deep import train
    from gflow.deep.data import load_dataset
    from gflow.deep.sweep import _grid, lanes_per_chunk

    cfg = load_preset(name)
    dtype = jnp.dtype(cfg.train.dtype)
    data = load_dataset(cfg.data, dtype)
    c, lr, seed = _grid(cfg)
    k, _ = lanes_per_chunk(cfg, data, len(c))
    start = k * ((len(c) // 2) // k)
    idx = np.minimum(np.arange(start, start + k), len(c) - 1)
    lanes = train.make_lanes(c[idx], lr[idx], seed[idx], dtype)
    # never stop while timing (every lane computes whether it has stopped or not; this keeps the count exact)
    tcfg = dataclasses.replace(
        cfg.train,
        target_acc=1.0,
        max_steps=cfg.train.check_every * 10**5,
        diverge_factor=float("inf"),
        budget_power=0.0,
    )
    t0 = time.perf_counter()
    state = train.init_lanes(cfg.model, tcfg, data, lanes)
    state = jax.block_until_ready(train.advance(state, lanes, data, cfg.model, tcfg, 1, loop=cfg.sweep.loop))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(train.advance(state, lanes, data, cfg.model, tcfg, rounds, loop=cfg.sweep.loop))
    wall = time.perf_counter() - t0
    rate = rounds * tcfg.check_every * k / wall
    lane_steps = worst_case_lane_steps(cfg)
    n_chunks = -(-len(c) // k)
    return {
        "lane_steps_per_s": round(rate, 2),
        "lanes_per_chunk": int(k),
        "worst_case_lane_steps": lane_steps,
        "first_round_s": round(compile_s, 2),
        "cpu_estimate_s": round(lane_steps / rate + compile_s, 1),
        "chunks": n_chunks,
    }


def gpu_estimate(name: str) -> dict:
    """The worst-case GPU estimate of a ResNet-18 preset at the measured H200 rate; none for other nets."""
    from gflow.deep.data import n_val_of

    cfg = load_preset(name)
    m = cfg.model
    if not (m.arch == "resnet" and m.resolved_depth == 18 and cfg.train.batch_size == 128):
        return {"gpu_estimate_s": None, "gpu_note": f"no GPU rate measured for {m.arch}-{m.resolved_depth}"}
    steps = worst_case_lane_steps(cfg)
    if cfg.data.name == "edim":
        n_train, n_eval = cfg.data.n_train, cfg.data.n_train + cfg.data.n_test + (n_val_of(cfg.data) or 0)
    else:  # CIFAR: the 50 000 training images (less a tenth for validation) and the 10 000 test images
        n_train, n_eval = 45_000, 60_000
    per_epoch = n_train // cfg.train.batch_size
    checks = steps // cfg.train.check_every
    eval_s = checks * n_eval / (GPU_FORWARD_SPEEDUP * GPU_STEPS_PER_S * cfg.train.batch_size)
    return {
        "gpu_estimate_s": round(steps / GPU_STEPS_PER_S + eval_s + 20.0, 1),
        "steps_per_epoch": per_epoch,
        "gpu_note": f"{GPU_STEPS_PER_S:g} SGD steps/s (ResNet-18, one H200, measured); evaluations at "
        f"{GPU_FORWARD_SPEEDUP:g}× the training image rate (assumed); 20 s compile",
    }


def to_toml(meta: dict, rows: dict) -> str:
    lines = [
        "# Measured run-time estimates of the deep presets (written by experiments/deep_preset_times.py --write;",
        "# read by `gflow deep presets`). Worst case: every run to its step budget.",
        "",
    ]
    for k, v in meta.items():
        lines.append(f"{k} = {v!r}".replace("'", '"'))
    for name, row in rows.items():
        lines += ["", f"[{name}]"]
        for k, v in row.items():
            if v is not None:
                lines.append(f"{k} = {v!r}".replace("'", '"'))
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per CPU preset (after one compiling round)")
    ap.add_argument("--presets", default=None, help="comma-separated subset (default: all)")
    ap.add_argument("--write", action="store_true", help=f"store the figures in {TIMINGS}")
    args = ap.parse_args(argv)
    names = args.presets.split(",") if args.presets else preset_names()
    rows = {}
    for name in names:
        gpu = _description(name).startswith("GPU")
        row = gpu_estimate(name) if gpu else measure(name, args.rounds)
        rows[name] = row
        print(name, row, flush=True)
    load = os.getloadavg()[0]
    meta = {
        "measured": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, load average "
        f"{load:.1f} at the end",
        "jax": __import__("jax").__version__,
    }
    if args.write:  # rows of presets not measured now are kept, with the file's earlier date and machine
        import tomllib

        old = tomllib.loads(TIMINGS.read_text()) if TIMINGS.is_file() and args.presets else {}
        kept = {k: v for k, v in old.items() if isinstance(v, dict) and k not in rows}
        if kept:
            meta = {
                **meta,
                "note": f"rows {', '.join(sorted(kept))} measured on {old.get('measured')} ({old.get('machine')})",
            }
        TIMINGS.write_text(to_toml(meta, {**kept, **rows}))
        print("wrote", TIMINGS)
    return {"meta": meta, "presets": rows}


if __name__ == "__main__":
    main()
