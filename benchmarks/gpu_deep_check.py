"""Accelerator check of the deep-net FLS path (meant to take < 5 minutes on one H200; sized for the device
time one task gets, and to pin down the numbers experiments/deep_gpu_edim.py's budget rests on).

    python benchmarks/gpu_deep_check.py [--out results.json]      # on a GPU machine
    python benchmarks/gpu_deep_check.py --cpu-smoke               # tiny sizes, CPU only: does the script run?

1. Agreement: the same short sweep (5-layer CNN on edim images, 6 lanes) runs on the accelerator and on
   the CPU, with float32 matmuls and convolutions at full precision on both; the statuses and step counts
   must match and the final training losses agree to 1e-3 relative (else exit status 1).
2. Throughput: ResNet-18 (GroupNorm, width 64) minibatch SGD (batch 128) on the GPU experiment's data
   (32×32×3 edim images, 4096 train / 2048 test), timed after compilation for vmapped replica counts R
   (default 1; R = 8 was slower in total, below); prints SGD steps/s (summed over replicas), training
   images/s, and the evaluation rate (forward images/s of one check over train + test), which
   experiments/deep_gpu_edim.py's budget assumes to be 3× the training image rate.
3. MLP replicas: the digits MLP (2 hidden layers of 128, full batch of 500) for R = 1, 16, 64 vmapped
   lanes, where vmapped replicas should pay on a GPU (one small lane leaves the device idle): SGD
   steps/s summed over replicas, and the speed-up per lane over R = 1.

Measured on one H200 (jax 0.11.2, 2026-11-29; benchmarks/gpu_results/gpu_deep_check_run1.txt): R = 1 gave
159.7 steps/s (20 437 images/s, compile + first round 17.9 s), R = 8 only 91.7 steps/s summed over the 8
replicas (11 732 images/s, compile 44.5 s), and R = 32 did not finish compiling in the time left. vmapping
replicas of a convnet turns its convolutions into grouped/batched ones, which were slower in total than one
replica: run big convnets on a GPU one lane per chunk (`sweep.max_lanes = 1`, as the GPU presets of
experiments/deep_fls_sweep.py do). Vmapped lanes pay off on the CPU and for small nets.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from gflow.deep import train
from gflow.deep.config import DeepDataConfig, DeepModelConfig, TrainConfig, load_preset
from gflow.deep.data import load_dataset


def agreement_configs(small: bool):
    """Data, model and training configs of the agreement sweep (5-layer CNN on edim images, full batch).
    The smoke version is the `edim-cnn` preset's [quick] table (compiled once for both)."""
    if small:
        cfg = load_preset("edim-cnn", quick=True)
        return cfg.data, cfg.model, cfg.train
    data_cfg = DeepDataConfig(name="edim", edim_dim=4, edim_size=8, edim_classes=4, n_train=256, n_test=512)
    return data_cfg, DeepModelConfig(arch="cnn", width=8), TrainConfig(check_every=10, max_steps=200)


def throughput_configs(small: bool):
    """Data, model and training configs of the throughput runs: the GPU experiment's data and net (the
    `edim-resnet18` preset: ResNet-18, GroupNorm, on 32×32×3 images) with minibatch SGD that never stops;
    the smoke version reuses the agreement sweep's (already compiled) configs."""
    if small:
        return agreement_configs(True)
    preset = load_preset("edim-resnet18")
    tcfg = TrainConfig(batch_size=128, check_every=50, max_steps=10**6, target_acc=1.0, eval_batch_size=2048)
    return preset.data, preset.model, tcfg


def mlp_configs(small: bool):
    """The digits MLP (the `digits-mlp` preset's data and net, full batch); smaller in the smoke version."""
    preset = load_preset("digits-mlp")
    data_cfg, mcfg = preset.data, preset.model
    if small:
        data_cfg, mcfg = dataclasses.replace(data_cfg, n_train=100), dataclasses.replace(mcfg, width=16)
    return data_cfg, mcfg, TrainConfig(check_every=10, max_steps=10**6, target_acc=1.0)


def agreement(devices, *, small: bool) -> dict:
    """The same 6-lane sweep on each device; returns the per-device records and the verdict."""
    data_cfg, mcfg, tcfg = agreement_configs(small)
    # Small learning rates: on an H200 (2026-11-29) lanes at base η = 0.3 and 1.0 (SGD steps η/c up to 10)
    # drifted apart from the CPU's to O(1) loss differences within 200 full-batch steps even at 'highest'
    # precision (one diverged on the CPU only): large-step SGD amplifies rounding differences, so only a
    # stable regime can be compared.
    c, lr, seed = [0.1, 0.1, 1.0, 1.0, 10.0, 10.0], [0.01, 0.03] * 3, [0, 1] * 3
    out = {}
    # full float32 precision where two devices are compared (GPUs may otherwise use TF32)
    with jax.default_matmul_precision("highest") if len(devices) > 1 else contextlib.nullcontext():
        for dev in devices:
            # (entering default_device changes the jit cache key: only do it when needed)
            with jax.default_device(dev) if dev != jax.devices()[0] else contextlib.nullcontext():
                data = load_dataset(data_cfg)
                rec = train.train_lanes(mcfg, tcfg, data, train.make_lanes(c, lr, seed))
            out[str(dev)] = rec
    a, b = out.values() if len(out) == 2 else (next(iter(out.values())),) * 2
    la, lb = np.asarray(a["final_train_loss"], float), np.asarray(b["final_train_loss"], float)
    both_nan = np.isnan(la) & np.isnan(lb)  # a diverged lane on both devices agrees
    rel = np.where(both_nan, 0.0, np.abs(la - lb) / np.maximum(np.abs(lb), 1e-12))
    rel = np.where(np.isnan(rel), np.inf, rel)
    print("| c | η (step η/c) | seed | " + " | ".join(f"{k}: status, steps, final loss, peak test acc" for k in out) + " |")
    for i in range(len(c)):
        cells = [f"{train.status_names(r['status'])[i]}, {int(r['steps'][i])}, {float(r['final_train_loss'][i]):.4g}, "
                 f"{float(r['peak_test_acc'][i]):.3f}" for r in out.values()]
        print(f"| {c[i]} | {lr[i]} | {seed[i]} | " + " | ".join(cells) + " |")
    ok = bool(np.array_equal(a["status"], b["status"]) and np.array_equal(a["steps"], b["steps"]) and np.all(rel < 1e-3))
    return {"ok": ok, "max_rel_loss_diff": float(np.max(rel)), "max_abs_peak_acc_diff":
            float(np.nanmax(np.abs(a["peak_test_acc"] - b["peak_test_acc"]))), "statuses": train.status_names(a["status"]).tolist(),
            "steps": {k: v["steps"].tolist() for k, v in out.items()}}


def _eval_rate(state, lanes, data, mcfg, tcfg) -> float:
    """Forward images/s of one check (train + test sets, every lane), timed after compiling it."""
    static = train.model_static(mcfg, data, jnp.dtype(tcfg.dtype))
    eval_set = train._eval_set_jit(data)
    jax.block_until_ready(train._check_host(state, lanes, data, eval_set, static, tcfg, True))  # compiles
    t0 = time.perf_counter()
    jax.block_until_ready(train._check_host(state, lanes, data, eval_set, static, tcfg, True))
    return len(lanes.seed) * int(eval_set[0].shape[0]) / (time.perf_counter() - t0)


def throughput(replicas, *, small: bool, configs=throughput_configs, measure_eval: bool = True) -> list[dict]:
    """Steps/s and images/s of vmapped lanes for each replica count (time after compilation)."""
    data_cfg, mcfg, tcfg = configs(small)
    data = load_dataset(data_cfg)
    batch = tcfg.batch_size or data.x.shape[0]
    rows = []
    for r in replicas:
        lanes = train.make_lanes(np.geomspace(0.1, 10, r), np.full(r, 0.01), np.arange(r))
        t0 = time.perf_counter()
        state = train.init_lanes(mcfg, tcfg, data, lanes)
        state = jax.block_until_ready(train.advance(state, lanes, data, mcfg, tcfg, n_rounds=1))  # compiles
        t_compile = time.perf_counter() - t0
        steps0 = int(np.sum(state.step))
        rounds = 2
        t0 = time.perf_counter()
        state = jax.block_until_ready(train.advance(state, lanes, data, mcfg, tcfg, n_rounds=rounds))
        wall = time.perf_counter() - t0
        steps = int(np.sum(state.step)) - steps0
        row = {"replicas": r, "steps": steps, "wall_s": wall, "compile_and_first_round_s": t_compile,
               "steps_per_s": steps / wall, "images_per_s": steps * batch / wall,
               "eval_images_per_check": data.x.shape[0] + data.x_test.shape[0]}
        if measure_eval:
            row["eval_images_per_s"] = _eval_rate(state, lanes, data, mcfg, tcfg)
            row["eval_over_train_image_rate"] = row["eval_images_per_s"] / row["images_per_s"]
        if rows:
            row["per_lane_speedup_over_first"] = row["steps_per_s"] / r / (rows[0]["steps_per_s"] / rows[0]["replicas"])
        ev = f"; eval {row['eval_images_per_s']:.0f} images/s" if measure_eval else ""
        print(f"R = {r:3d}: {row['steps_per_s']:9.1f} steps/s  {row['images_per_s']:11.0f} train images/s{ev}  "
              f"(wall {wall:.2f} s for {steps} steps incl. {rounds} evaluations/lane; compile+first round {t_compile:.1f} s)")
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU only")
    ap.add_argument("--replicas", default=None, help="ResNet-18 replica counts, comma-separated (default 1; smoke 6)")
    ap.add_argument("--mlp-replicas", default=None, help="MLP replica counts (default 1,16,64; smoke 1,4)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--no-throughput", action="store_true", help="run the agreement check only")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    cpu = jax.devices("cpu")[0]
    accel = cpu if args.cpu_smoke else jax.devices()[0]
    if accel.platform == "cpu" and not args.cpu_smoke:
        print("no accelerator found: comparing the CPU with itself (use --cpu-smoke for the tiny version)")
    print(f"accelerator: {accel.platform}:{getattr(accel, 'device_kind', '')}; reference: cpu")
    replicas = [int(v) for v in (args.replicas or ("6" if args.cpu_smoke else "1")).split(",")]
    mlp_replicas = [int(v) for v in (args.mlp_replicas or ("1,4" if args.cpu_smoke else "1,16,64")).split(",")]
    check = agreement([accel, cpu] if accel != cpu else [cpu], small=args.cpu_smoke)
    print(f"agreement accelerator vs CPU: {'OK' if check['ok'] else 'MISMATCH'}; max relative difference of the final "
          f"training loss {check['max_rel_loss_diff']:.2e}, of the peak test accuracy {check['max_abs_peak_acc_diff']:.2e}")
    with jax.default_device(accel) if accel != jax.devices()[0] else contextlib.nullcontext():
        rows = [] if args.no_throughput else throughput(replicas, small=args.cpu_smoke)
        print("MLP replicas (digits MLP, full batch):")
        mlp_rows = [] if args.no_throughput else throughput(mlp_replicas, small=args.cpu_smoke, configs=mlp_configs,
                                                             measure_eval=False)
    total = time.perf_counter() - t_start
    print(f"total {total:.1f} s")
    result = {"device": f"{accel.platform}:{getattr(accel, 'device_kind', '')}", "agreement": check,
              "throughput": rows, "mlp_replicas": mlp_rows, "total_s": total}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    if not check["ok"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
