"""Hand-mutation check of the test suite (not run by CI; pytest does not collect this file).

Each mutant is one deliberate bug: a unique snippet of library code replaced by a wrong one. For each,
the script writes the mutated file, runs the test selection that should catch it, restores the file
and reports caught (a test failed) or SURVIVED (all selected tests passed).

    nice -n 5 python tests/mutants.py                 # all mutants (about 20-25 min on 2 busy cores)
    python tests/mutants.py --list                    # ids and descriptions
    nice -n 5 python tests/mutants.py --only psi-sign,tie --baseline

Safety: the original bytes of a file are saved to `.mutants-journal.json` (repository root) before it
is mutated and written back afterwards, also on Ctrl-C, SIGTERM or an exception; a run killed outright
leaves the journal, and the next run restores from it before doing anything else. The script never
touches git. The subprocesses share one JAX compilation cache, so unmutated programs compile once.
The tests import gflow from the checkout this file sits in. To keep working in a checkout while the
mutants run, run the script from a copy (`git worktree add`, or a copy of the tracked files).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOURNAL = ROOT / ".mutants-journal.json"


@dataclass(frozen=True)
class Mutant:
    id: str
    what: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest arguments: files and -k selections


MUTANTS = [
    # --- the 8 that survived the suite at 898ca4c (issue 17) ---
    Mutant(
        "test-key",
        "test set drawn with the training key",
        "gflow/twolayer/data.py",
        "x_test, y_test = sample(k_test, n_test)",
        "x_test, y_test = sample(k_train, n_test)",
        ("tests/twolayer/test_data.py",),
    ),
    Mutant(
        "psi-sign",
        "Ψ computed against −x₊",
        "gflow/twolayer/observables.py",
        '"Psi": theory.cosine(w_hat, args.xplus)',
        '"Psi": theory.cosine(w_hat, -args.xplus)',
        ("tests/twolayer/test_observables.py", "-k", "alignment"),
    ),
    Mutant(
        "margin-scale",
        "margin block's error-control scale ×10",
        "gflow/twolayer/flow.py",
        "m_scale = atol / rtol",
        "m_scale = 10 * atol / rtol",
        ("tests/twolayer/test_flow.py", "-k", "floor_margins"),
    ),
    Mutant(
        "finite0",
        "mid-run overflow not flagged (finite = finite0)",
        "gflow/twolayer/flow.py",
        "finite = finite0 & _all_finite((p_end, model.flow_velocity(p_end, x, y, c, gram)))",
        "finite = finite0",
        ("tests/twolayer/test_flow.py", "-k", "overflow"),
    ),
    Mutant(
        "chunk-direct",
        "chunk files written directly, not atomically (no temporary file)",
        "gflow/runs/store.py",
        'fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")',
        "fd, tmp = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), str(path)",
        ("tests/runs/test_runner.py",),
    ),
    Mutant(
        "epoch-order",
        "deep minibatches in the same order every epoch",
        "gflow/deep/train.py",
        "jax.random.fold_in(order_key, state.step // per_epoch)",
        "jax.random.fold_in(order_key, 0)",
        ("tests/deep/test_deep_train.py", "-k", "reshuffled"),
    ),
    Mutant(
        "peak-last-tie",
        "deep peak_step takes the last tie",
        "gflow/deep/stop.py",
        "better = finite & ~(test_acc <= state.peak_test_acc)",
        "better = finite & ~(test_acc < state.peak_test_acc)",
        ("tests/deep/test_deep_train.py", "-k", "peak_step"),
    ),
    Mutant(
        "tie",
        "ties (f = 0) counted as correct in test_err",
        "gflow/twolayer/observables.py",
        "jnp.where(m_test == 0, args.tie_weight, 0.0)",
        "jnp.where(m_test == 0, 0.0, 0.0)",
        ("tests/twolayer/test_observables.py", "-k", "ties"),
    ),
    # --- more plausible bugs ---
    Mutant(
        "margin-tol",
        "margin block's error tolerance ×10 looser in the step-size norm",
        "gflow/twolayer/flow.py",
        "jnp.maximum(optx.rms_norm(err[0]), optx.rms_norm(err[1]))",
        "jnp.maximum(optx.rms_norm(err[0]), optx.rms_norm(err[1]) / 10)",
        ("tests/twolayer/test_flow.py", "-k", "floor_margins"),
    ),
    Mutant(
        "deep-step-eta",
        "deep SGD step size η instead of η/c",
        "gflow/deep/train.py",
        "opt = make_optimizer(tcfg, (lane.lr / lane.multiplier).astype(dtype))",
        "opt = make_optimizer(tcfg, lane.lr.astype(dtype))",
        ("tests/deep/test_deep_train.py", "-k", "uncentered"),
    ),
    Mutant(
        "epoch-every-step",
        "a new permutation every step (batches do not partition an epoch)",
        "gflow/deep/train.py",
        "jax.random.fold_in(order_key, state.step // per_epoch)",
        "jax.random.fold_in(order_key, state.step)",
        ("tests/deep/test_deep_train.py", "-k", "reshuffled"),
    ),
    Mutant(
        "deep-uncentered",
        "centered model ignores f_θ₀",
        "gflow/deep/loss.py",
        "return multiplier * (net_out if f0 is None else net_out - f0)",
        "return multiplier * net_out",
        ("tests/deep/test_deep_train.py", "-k", "centered_multiplier"),
    ),
    Mutant(
        "grad-no-c",
        "gradient and flow velocity without the multiplier in the loss derivative",
        "gflow/twolayer/model.py",
        "return jnp.mean(values), (multiplier / n) * y * slopes",
        "return jnp.mean(values), (1.0 / n) * y * slopes",
        ("tests/twolayer/test_model.py", "-k", "flow_velocity"),
    ),
    Mutant(
        "w-hat-all",
        "ŵ₊ sums all neurons, not a_j > 0",
        "gflow/twolayer/model.py",
        "return jnp.where(params.a > 0, params.a, 0.0) @ params.W",
        "return params.a @ params.W",
        ("tests/twolayer/test_observables.py", "-k", "alignment"),
    ),
    Mutant(
        "psi-neg-unweighted",
        "ψ_neg not weighted by ‖w_j‖²",
        "gflow/twolayer/observables.py",
        "wpos, wneg = jnp.where(pos, sq, 0.0), jnp.where(pos, 0.0, sq)",
        "wpos, wneg = jnp.where(pos, sq, 0.0), jnp.where(pos, 0.0, 1.0)",
        ("tests/twolayer/test_observables.py", "-k", "alignment"),
    ),
    Mutant(
        "mu-all",
        "μ₊ as the mean of all points",
        "gflow/twolayer/data.py",
        "return (pos @ x) / jnp.maximum(jnp.sum(pos), 1.0)",
        "return jnp.mean(x, axis=0)",
        ("tests/twolayer/test_data.py", "-k", "class_means"),
    ),
    Mutant(
        "stop-tol",
        "stop refinement tolerance ×100 looser",
        "gflow/twolayer/stop.py",
        "tol = jnp.log1p(stop_rtol)",
        "tol = jnp.log1p(100 * stop_rtol)",
        ("tests/twolayer/test_flow.py", "-k", "stopped_loss and float64"),
    ),
    Mutant(
        "status-tmax",
        "t_max endings reported as max_steps",
        "gflow/twolayer/stop.py",
        'code = jnp.where(result == REACHED_T1, STATUS_CODE["t_max"], code)',
        'code = jnp.where(result == REACHED_T1, STATUS_CODE["max_steps"], code)',
        ("tests/twolayer/test_flow.py", "-k", "early_endings"),
    ),
    Mutant(
        "label-bias",
        "labels drawn +1 with probability 0.7",
        "gflow/twolayer/data.py",
        "jax.random.bernoulli(k_y, jnp.float32(0.5), (m,))",
        "jax.random.bernoulli(k_y, jnp.float32(0.7), (m,))",
        ("tests/twolayer/test_data.py", "-k", "statistics or independent"),
    ),
    Mutant(
        "unsigned-a",
        "balanced init without the random sign",
        "gflow/twolayer/model.py",
        "        a = sign * jnp.linalg.norm(W, axis=1)",
        "        a = jnp.linalg.norm(W, axis=1)",
        ("tests/twolayer/test_model.py",),
    ),
    Mutant(
        "init-no-sqrt-d",
        "init rows N(0, I) instead of N(0, I/d)",
        "gflow/twolayer/model.py",
        "jnp.float32).astype(dtype) / jnp.sqrt(jnp.asarray(d, dtype))",
        "jnp.float32).astype(dtype)",
        ("tests/twolayer/test_model.py", "-k", "variance"),
    ),
    Mutant(
        "claim-steal",
        "a live claim is taken over (two workers compute one chunk)",
        "gflow/runs/runner.py",
        "if old is not None and self._claim_is_live(old):",
        "if False:",
        ("tests/runs/test_run_dir.py", "-k", "claim"),
    ),
    Mutant(
        "resume-recomputes",
        "a rerun recomputes the finished chunks",
        "gflow/runs/runner.py",
        "                if self.is_done(i):\n                    continue\n                path = "
        "self._try_claim(self.chunk_path(i).stem, claims)\n"
        "                if path is None:\n                    waiting = True\n                    continue\n"
        "                try:\n                    if self.is_done(i):",
        "                path = self._try_claim(self.chunk_path(i).stem, claims)\n"
        "                if path is None:\n                    waiting = True\n                    continue\n"
        "                try:\n                    if False:",
        ("tests/runs/test_run_dir.py", "-k", "killed_mid_chunk or three_processes"),
    ),
    Mutant(
        "plan-unsorted",
        "chunks not sorted by cost",
        "gflow/twolayer/sweep.py",
        "order = flat[np.lexsort((flat, seed, eff, eta, rtol))]",
        "order = flat",
        ("tests/twolayer/test_sweep_engine.py", "-k", "plan_sorts"),
    ),
    Mutant(
        "bayes-swap",
        "Bayes error Φ(−σ/κ)",
        "gflow/twolayer/theory.py",
        "return ndtr(-jnp.asarray(kappa) / sigma)",
        "return ndtr(-jnp.asarray(sigma) / kappa)",
        ("tests/twolayer/test_theory.py", "-k", "bayes"),
    ),
    Mutant(
        "hermite-k1",
        "stop refinement's Hermite end slope taken at the step start",
        "gflow/twolayer/stop.py",
        "k1 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_end, x, y, c)[1])",
        "k1 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_start, x, y, c)[1])",
        ("tests/twolayer/test_flow.py", "-k", "trajectory_matches_scipy"),
    ),
    Mutant(
        "sweep-seed-shift",
        "sweep lanes use init seed + 1",
        "gflow/twolayer/sweep.py",
        "keys = jax.vmap(model.init_key)(jnp.asarray([s for _, _, s in rows], jnp.uint32))",
        "keys = jax.vmap(model.init_key)(jnp.asarray([s + 1 for _, _, s in rows], jnp.uint32))",
        ("tests/twolayer/test_sweep.py", "-k", "single_runs"),
    ),
    Mutant(
        "deep-target-strict",
        "deep stop rule needs train accuracy > target (not ≥)",
        "gflow/deep/stop.py",
        "reached = (train_acc >= tcfg.target_acc)",
        "reached = (train_acc > tcfg.target_acc)",
        ("tests/deep/test_deep_train.py", "-k", "stop_rule or frozen"),
    ),
]


def _restore_from_journal() -> None:
    if not JOURNAL.exists():
        return
    saved = json.loads(JOURNAL.read_text())
    for rel, text in saved.items():
        (ROOT / rel).write_text(text)
        print(f"restored {rel} from {JOURNAL.name} (a previous run was interrupted)")
    JOURNAL.unlink()


def _apply(m: Mutant) -> str:
    """Mutate m.path; returns the original text (also journaled)."""
    path = ROOT / m.path
    text = path.read_text()
    count = text.count(m.old)
    if count != 1:
        raise RuntimeError(f"mutant {m.id}: snippet found {count} times in {m.path} (code changed? update the mutant)")
    JOURNAL.write_text(json.dumps({m.path: text}))
    path.write_text(text.replace(m.old, m.new))
    return text


def _restore(m: Mutant, original: str) -> None:
    (ROOT / m.path).write_text(original)
    JOURNAL.unlink(missing_ok=True)


def _pytest(args, env, timeout) -> tuple[str, float, str]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    result = {0: "passed", 1: "failed"}.get(proc.returncode, f"error rc={proc.returncode}")
    first_error = next((ln.strip() for ln in lines if ln.startswith("E ")), "")  # what the failing test said
    return result, time.perf_counter() - t0, ((lines[-1] if lines else "") + "  " + first_error[:160]).strip()


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated mutant ids")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--baseline", action="store_true", help="first run every selection on the unmutated code")
    ap.add_argument("--baseline-only", action="store_true", help="only run the selections on the unmutated code")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per pytest run (a timeout counts as caught)")
    args = ap.parse_args(argv)
    _restore_from_journal()
    mutants = MUTANTS
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {m.id for m in MUTANTS}
        if unknown:
            ap.error(f"unknown mutant ids: {sorted(unknown)}")
        mutants = [m for m in MUTANTS if m.id in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.id:20s} {m.path:24s} {m.what}")
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    # the tests import gflow from this checkout (ROOT), whatever checkout the package is installed from
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR")
        or tempfile.mkdtemp(prefix="gflow-mutants-cache-"),
    }
    if args.baseline or args.baseline_only:
        for sel in dict.fromkeys(m.tests for m in mutants):
            result, secs, tail = _pytest(sel, env, args.timeout)
            print(f"baseline {' '.join(sel)}: {result} ({secs:.0f} s) {tail}", flush=True)
            if result != "passed":
                print("the unmutated code fails this selection: fix that first")
                return 2
        if args.baseline_only:
            return 0
    rows = []
    for m in mutants:
        original = _apply(m)
        try:
            result, secs, tail = _pytest(m.tests, env, args.timeout)
        finally:
            _restore(m, original)
        verdict = "SURVIVED" if result == "passed" else ("caught" if result in ("failed", "timeout") else result)
        rows.append((m, verdict, secs))
        print(f"{m.id:20s} {verdict:9s} {secs:5.0f} s  {m.what}  [{' '.join(m.tests)}] {tail}", flush=True)
    caught = sum(v == "caught" for _, v, _ in rows)
    survived = [m.id for m, v, _ in rows if v == "SURVIVED"]
    errors = [m.id for m, v, _ in rows if v not in ("caught", "SURVIVED")]
    print(
        f"\n{caught} caught, {len(survived)} survived {survived}, {len(errors)} errors {errors}; "
        f"{sum(s for _, _, s in rows):.0f} s"
    )
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
