"""Accelerator check of the deep-net FLS path: is the GPU's arithmetic the CPU's, and how fast is it?

    python benchmarks/gpu/gpu_deep_check.py [--out results.json] [--no-throughput]   # on a GPU machine
    python benchmarks/gpu/gpu_deep_check.py --cpu-smoke [--out results.json]         # tiny sizes, CPU: does it run?
    python benchmarks/gpu/gpu_deep_check.py --write-reference [--cpu-smoke]          # CPU: recompute the stored reference

1. Agreement: a short sweep (5-layer CNN on edim images, 6 lanes, full batch, small η) runs on the device,
   with float32 matmuls and convolutions at full precision, and is compared with CPU results computed
   independently beforehand and stored in the repository (benchmarks/gpu/gpu_results/cpu_reference.json; the
   smoke version's in cpu_reference_smoke.json; `--write-reference` recomputes them on the CPU): statuses
   and step counts must match and the final training losses agree to 1e-3 relative (else exit status 1).
   The GPU machine does not recompute the CPU side: the check is never the CPU against itself.
2. Throughput (unless --no-throughput): ResNet-18 (GroupNorm, width 64) minibatch SGD (batch 128) on the
   GPU experiment's data, timed after compilation for vmapped replica counts R (default 1); SGD steps/s,
   training images/s and the evaluation rate (forward images/s of one check over the train, validation and
   test sets), which experiments/deep_gpu_edim.py's budget assumes to be 3× the training image rate.
3. MLP replicas (unless --no-throughput): the digits MLP for R = 1, 16, 64 vmapped lanes.

--out writes strict JSON (no NaN or Infinity literals: null instead).

Measured on one H200 (jax 0.11.2, 2026-11-29; benchmarks/gpu/gpu_results/gpu_deep_check_run1.txt): R = 1 gave
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
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gflow.deep import train
from gflow.deep.analysis import json_safe
from gflow.deep.config import DeepDataConfig, DeepModelConfig, TrainConfig, load_preset
from gflow.deep.data import load_dataset
from gflow.runs import status


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


REFERENCE = Path(__file__).resolve().parent / "gpu_results"
LANES = ([0.1, 0.1, 1.0, 1.0, 10.0, 10.0], [0.01, 0.03] * 3, [0, 1] * 3)  # c, base η, seed of the 6 lanes
# Small learning rates: on an H200 (2026-11-29) lanes at base η = 0.3 and 1.0 (SGD steps η/c up to 10)
# drifted apart from the CPU's to O(1) loss differences within 200 full-batch steps even at 'highest'
# precision (one diverged on the CPU only): large-step SGD amplifies rounding differences, so only a
# stable regime can be compared.


def reference_path(small: bool) -> Path:
    return REFERENCE / ("cpu_reference_smoke.json" if small else "cpu_reference.json")


def agreement_records(device, *, small: bool) -> dict:
    """The agreement sweep's records on `device` (lists), float32 matmuls at full precision."""
    data_cfg, mcfg, tcfg = agreement_configs(small)
    with (
        jax.default_matmul_precision("highest"),
        jax.default_device(device) if device != jax.devices()[0] else contextlib.nullcontext(),
    ):
        data = load_dataset(data_cfg)
        rec = train.train_lanes(mcfg, tcfg, data, train.make_lanes(*LANES))
    return {k: np.asarray(v).tolist() for k, v in rec.items()}


def write_reference(*, small: bool, path: Path | None = None) -> Path:
    """Compute the agreement sweep on the CPU and store it as the reference a device is compared with."""
    path = Path(path or reference_path(small))
    rec = agreement_records(jax.devices("cpu")[0], small=small)
    meta = {
        "computed": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU ({platform.node()})",
        "jax": jax.__version__,
        "lanes": {"multiplier": LANES[0], "lr": LANES[1], "seed": LANES[2]},
        "configs": [dataclasses.asdict(c) for c in agreement_configs(small)],
    }
    path.write_text(json.dumps(json_safe({"meta": meta, "records": rec}), indent=1, allow_nan=False))
    return path


def compare(device_rec: dict, reference: dict, *, rtol: float = 1e-3) -> dict:
    """Verdict of the device's records against the stored CPU reference: statuses and steps equal, final
    training losses within `rtol` (relative), NaN on both sides (a diverged lane) agreeing."""
    a, b = device_rec, reference
    la, lb = np.asarray(a["final_train_loss"], float), np.asarray(b["final_train_loss"], float)
    both_nan = np.isnan(la) & np.isnan(lb)
    rel = np.where(both_nan, 0.0, np.abs(la - lb) / np.maximum(np.abs(lb), 1e-12))
    rel_ok = np.where(np.isnan(rel), False, rel < rtol)
    ok = bool(np.array_equal(a["status"], b["status"]) and np.array_equal(a["steps"], b["steps"]) and np.all(rel_ok))
    acc = np.abs(np.asarray(a["test_acc_at_peak"], float) - np.asarray(b["test_acc_at_peak"], float))
    return {
        "ok": ok,
        "rtol": rtol,
        "max_rel_loss_diff": None if np.isnan(rel).any() else float(np.max(rel)),
        "rel_loss_diff": json_safe(rel),
        "max_abs_test_acc_diff": json_safe(float(np.nanmax(acc)) if np.isfinite(acc).any() else float("nan")),
        "statuses": status.names_of(np.asarray(a["status"])).tolist(),
        "steps": {"device": list(a["steps"]), "cpu_reference": list(b["steps"])},
    }


def agreement(device, *, small: bool, reference: Path | None = None) -> dict:
    """The agreement sweep on `device` against the stored CPU reference; prints a table, returns the verdict."""
    ref_path = Path(reference or reference_path(small))
    stored = json.loads(ref_path.read_text())
    rec = agreement_records(device, small=small)
    out = compare(rec, stored["records"])
    print(
        f"| c | η | seed | device: status, steps, final loss, test acc | CPU reference ({stored['meta']['computed']}, "
        f"{stored['meta']['machine']}): status, steps, final loss, test acc |"
    )
    for i, (c, lr, seed) in enumerate(zip(*LANES)):
        cells = [
            f"{status.names_of(int(r['status'][i]))}, {int(r['steps'][i])}, {r['final_train_loss'][i]:.6g}, "
            f"{r['test_acc_at_peak'][i]}"
            for r in (rec, stored["records"])
        ]
        print(f"| {c} | {lr} | {seed} | " + " | ".join(cells) + " |")
    return {**out, "reference": str(ref_path), "reference_meta": stored["meta"]}


def _eval_rate(state, lanes, data, mcfg, tcfg) -> float:
    """Forward images/s of one check (train, validation and test sets, every lane), timed after compiling it."""
    static = train.model_static(mcfg, data, jnp.dtype(tcfg.dtype))
    eval_set = train._eval_set_jit(data)  # train, validation and test examples
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
        row = {
            "replicas": r,
            "steps": steps,
            "wall_s": wall,
            "compile_and_first_round_s": t_compile,
            "steps_per_s": steps / wall,
            "images_per_s": steps * batch / wall,
            "eval_images_per_check": data.x.shape[0] + data.x_test.shape[0],
        }
        if measure_eval:
            row["eval_images_per_s"] = _eval_rate(state, lanes, data, mcfg, tcfg)
            row["eval_over_train_image_rate"] = row["eval_images_per_s"] / row["images_per_s"]
        if rows:
            row["per_lane_speedup_over_first"] = row["steps_per_s"] / r / (rows[0]["steps_per_s"] / rows[0]["replicas"])
        ev = f"; eval {row['eval_images_per_s']:.0f} images/s" if measure_eval else ""
        print(
            f"R = {r:3d}: {row['steps_per_s']:9.1f} steps/s  {row['images_per_s']:11.0f} train images/s{ev}  "
            f"(wall {wall:.2f} s for {steps} steps incl. {rounds} evaluations/lane; compile+first round {t_compile:.1f} s)"
        )
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU only")
    ap.add_argument("--replicas", default=None, help="ResNet-18 replica counts, comma-separated (default 1; smoke 6)")
    ap.add_argument("--mlp-replicas", default=None, help="MLP replica counts (default 1,16,64; smoke 1,4)")
    ap.add_argument("--out", default=None, help="write the results as strict JSON here")
    ap.add_argument(
        "--reference",
        default=None,
        help="the stored CPU reference (default benchmarks/gpu/gpu_results/cpu_reference[_smoke].json)",
    )
    ap.add_argument("--write-reference", action="store_true", help="compute the CPU reference and store it, then exit")
    ap.add_argument("--no-throughput", action="store_true", help="run the agreement check only")
    args = ap.parse_args(argv)
    if args.write_reference:
        print("wrote", write_reference(small=args.cpu_smoke, path=args.reference))
        return None
    t_start = time.perf_counter()
    accel = jax.devices("cpu")[0] if args.cpu_smoke else jax.devices()[0]
    if accel.platform == "cpu" and not args.cpu_smoke:
        print(
            "no accelerator found: comparing the CPU with the stored CPU reference (use --cpu-smoke for the tiny version)"
        )
    print(f"device: {accel.platform}:{getattr(accel, 'device_kind', '')}; reference: stored CPU results")
    replicas = [int(v) for v in (args.replicas or ("6" if args.cpu_smoke else "1")).split(",")]
    mlp_replicas = [int(v) for v in (args.mlp_replicas or ("1,4" if args.cpu_smoke else "1,16,64")).split(",")]
    check = agreement(accel, small=args.cpu_smoke, reference=args.reference)
    diff = check["max_rel_loss_diff"]
    print(
        f"agreement device vs stored CPU reference: {'OK' if check['ok'] else 'MISMATCH'}; max relative difference "
        f"of the final training loss {'n/a (NaN on one side)' if diff is None else f'{diff:.2e}'}"
    )
    rows, mlp_rows = [], []
    if not args.no_throughput:
        with jax.default_device(accel) if accel != jax.devices()[0] else contextlib.nullcontext():
            rows = throughput(replicas, small=args.cpu_smoke)
            print("MLP replicas (digits MLP, full batch):")
            mlp_rows = throughput(mlp_replicas, small=args.cpu_smoke, configs=mlp_configs, measure_eval=False)
    total = time.perf_counter() - t_start
    print(f"total {total:.1f} s")
    result = {
        "device": f"{accel.platform}:{getattr(accel, 'device_kind', '')}",
        "agreement": check,
        "throughput": rows,
        "mlp_replicas": mlp_rows,
        "total_s": total,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))
    if not check["ok"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
