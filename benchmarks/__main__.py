"""The benchmark suite: what a user runs to compare gflow with the alternatives, and what it costs.

    python -m benchmarks                        # the full suite; results in benchmarks/results/ (hours here)
    python -m benchmarks --quick                # tiny shapes, in a temporary folder (the smoke test, minutes)
    python -m benchmarks --only memory batching --out /tmp/b

Entries, in order (each also runs on its own as `python -m benchmarks.<entry>`, with the same parser,
benchmarks/cli.py):

- `fair`: gflow against oracle-tuned and self-verifying GD loops (JAX and numpy) under the accuracy
  contract on t_η and θ(t_η), on the small problem and on the held-out one (`fair_contract_<problem>.json`);
- `memory`: peak RSS of a long sweep and its growth between chunks (`memory.json`);
- `batching`: cost-aware batching against one full vmap (`batching.json`);
- `accuracy`: the check of `flow.accuracy`'s contract on the check set (`accuracy_check.json`).

`python -m benchmarks.matched` is the older matched-accuracy harness (t_η only, with GD loops, scipy,
compile, FLOP/s, loop-vs-batched and scaling figures); the one-off investigations are in
benchmarks/studies/ (their findings: benchmarks/studies/README.md), the GPU checks in benchmarks/gpu/.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.cli import RESULTS, parser

# entry -> (module, [(argv of the full run, its output file)], argv of --quick, its output file)
SUITE = {
    "fair": [
        (["--problem", "small", "--levels", "1e-2", "1e-3", "--repeats", "3"], "fair_contract_small.json"),
        (["--problem", "heldout", "--levels", "1e-2", "1e-3", "--repeats", "3"], "fair_contract_heldout.json"),
    ],
    "memory": [([], "memory.json")],
    "batching": [([], "batching.json")],
    "accuracy": [(["--set", "check"], "accuracy_check.json")],
}
QUICK_OUT = {
    "fair": "fair_quick.json",
    "memory": "memory_quick.json",
    "batching": "batching_quick.json",
    "accuracy": "accuracy_quick.json",
}


def plan(quick: bool, out: Path, only=None) -> list[tuple[str, list[str]]]:
    """(entry, argv) in the order the suite runs them."""
    steps = []
    for name, runs in SUITE.items():
        if only and name not in only:
            continue
        if quick:
            steps.append((name, ["--quick", "--json", str(out / QUICK_OUT[name])]))
        else:
            steps += [(name, [*argv, "--json", str(out / file)]) for argv, file in runs]
    return steps


def run(quick: bool, out: Path, only=None, log=print) -> dict:
    """Run the suite's entries in process; {entry: [result of each run]}, plus the wall time of each."""
    import importlib

    out.mkdir(parents=True, exist_ok=True)
    res, walls = {}, {}
    for name, argv in plan(quick, out, only):
        log(f"== python -m benchmarks.{name} {' '.join(argv)}")
        t0 = time.perf_counter()
        res.setdefault(name, []).append(importlib.import_module(f"benchmarks.{name}").main(argv))
        walls.setdefault(name, []).append(time.perf_counter() - t0)
    log("wall (s): " + ", ".join(f"{k} {sum(v):.1f}" for k, v in walls.items()) + f"; results in {out}")
    return {"results": res, "wall_s": walls}


def main(argv=None):
    ap = parser(
        __doc__,
        json=False,
        quick="every entry at tiny shapes (its own --quick), written to --out (default: a new "
        "temporary folder) so the stored results stay",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help=f"folder for the results (default {RESULTS}; --quick: a temporary one)"
    )
    ap.add_argument("--only", nargs="+", choices=tuple(SUITE), default=None, help="run only these entries")
    args = ap.parse_args(argv)
    out = args.out or (Path(tempfile.mkdtemp(prefix="gflow-bench-")) if args.quick else RESULTS)
    return run(args.quick, out, args.only)


if __name__ == "__main__":
    main()
