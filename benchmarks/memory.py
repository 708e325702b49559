"""Peak memory of a long sweep: 2,000 small runs (n=40, d=200, h=100), checked for growth between chunks.

    python -m benchmarks.memory [--runs 2000] [--out /tmp/gflow-memory-run] [--quick] [--json PATH]

RSS is sampled every 50 ms in a thread; growth is the RSS after the last chunk minus the RSS after
the first 10% of chunks (the first chunk includes compilation). Prints JSON.
"""

from __future__ import annotations

import shutil
import time

import numpy as np

import gflow
from benchmarks.cli import parser
from benchmarks.common import RssSampler, problem_config, report, rss_mb
from gflow.twolayer.sweep import bytes_per_lane, make_plan


def measure(n_runs=2000, out="/tmp/gflow-memory-run", problem="small") -> dict:
    n_seeds = 100
    scales = tuple(float(v) for v in np.logspace(-4, 0.5, max(1, n_runs // n_seeds)))
    cfg = problem_config(problem, n_seeds=n_seeds, init_scales=scales)
    shutil.rmtree(out, ignore_errors=True)
    plan = make_plan(cfg)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    with RssSampler() as s:
        gflow.run_sweep(cfg, out=out, progress=False)
    wall = time.perf_counter() - t0
    # RSS at the moment each chunk file appeared (both on the wall clock)
    done = sorted(p.stat().st_mtime for p in (gflow.runs.store.Path(out) / "chunks").glob("chunk-*.npz"))
    samples = np.asarray(s.samples)

    def rss_at(when):
        return float(samples[min(np.searchsorted(samples[:, 0], when), len(samples) - 1), 1])

    k = max(1, len(done) // 10)
    rss_early, rss_last = rss_at(done[k - 1]), rss_at(done[-1])
    return {
        "n_runs": len(scales) * n_seeds,
        "chunk_size": plan.chunk_sizes[0],
        "n_chunks": len(plan.chunks()),
        "estimated_bytes_per_lane_mb": bytes_per_lane(cfg) / 2**20,
        "estimated_chunk_mb": plan.chunk_sizes[0] * bytes_per_lane(cfg) / 2**20,
        "rss_before_mb": rss0,
        "peak_rss_mb": s.peak,
        "rss_after_10pct_chunks_mb": rss_early,
        "rss_after_last_chunk_mb": rss_last,
        "growth_mb": rss_last - rss_early,
        "wall_s": wall,
        "runs_per_s": n_runs / wall,
        "peak_rss_per_run_kb": 1024 * (s.peak - rss0) / n_runs,
    }


def main(argv=None):
    ap = parser(__doc__, quick="the tiny problem, 100 runs", json="memory.json", problem="small")
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--out", default="/tmp/gflow-memory-run", help="the sweep's run directory (deleted first)")
    args = ap.parse_args(argv)
    if args.quick:
        args.problem, args.runs = "tiny", 100
    res = {"problem": args.problem, **measure(args.runs, args.out, problem=args.problem)}
    report(res, args.json)
    return res


if __name__ == "__main__":
    main()
