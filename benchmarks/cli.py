"""The one argument parser of the suite's entries (`python -m benchmarks` and each `python -m benchmarks.<entry>`),
which studies may use too.

Every entry takes `--quick` (tiny shapes: the smoke test) and `--json PATH` (also write the result there;
'' or none: print only); an entry adds `--problem` / `--repeats` when it has them, and its own options after.
"""

from __future__ import annotations

import argparse
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"  # the current results, one file per benchmark


def parser(
    doc: str,
    *,
    quick: str | None,
    json: str | None | bool = None,
    problem: str | None = None,
    problems=None,
    repeats: int | None = None,
) -> argparse.ArgumentParser:
    """The shared parser: `doc` is the entry's docstring, `quick` says what --quick shrinks to (None: no --quick), `json` is the
    default output (a file name under benchmarks/results/; None: no default; False: no --json), `problem`/`repeats` the defaults
    of those options (None: the entry has no such option)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if quick:  # None: the script has no smaller variant (a study)
        ap.add_argument("--quick", action="store_true", help=quick)
    default = str(RESULTS / json) if isinstance(json, str) else None
    if json is not False:  # False: the entry writes no JSON of its own (the suite's runner)
        ap.add_argument(
            "--json",
            default=default,
            metavar="PATH",
            help="also write the result here ('' to skip)" + (f"; default {default}" if default else ""),
        )
    if problem is not None:
        from benchmarks.common import PROBLEMS

        ap.add_argument("--problem", default=problem, choices=tuple(problems or PROBLEMS))
    if repeats is not None:
        ap.add_argument("--repeats", type=int, default=repeats, help="timings per figure (the median is reported)")
    return ap
