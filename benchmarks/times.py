"""The README's two commands, timed: wall, CPU, peak memory and the load they ran under.

    python -m benchmarks.times --what sweep   # the default sweep, ~20 s idle on 2 cores
    python -m benchmarks.times --what tests   # the default test suite (minutes)
    python -m benchmarks.times --what all

Each command runs in a child process from the repository root with a fresh, empty JAX compilation cache
(`JAX_COMPILATION_CACHE_DIR` in a temporary folder), so the figures are those of a first run. Recorded per
measurement: the exact command, wall seconds, CPU seconds (user + sys of the whole child process tree,
from `resource.getrusage(RUSAGE_CHILDREN)`), peak RSS of the largest process of the tree (`ru_maxrss`), the
1-minute load average at the start, the UTC date, the machine (CPU count, memory, processor) and the exit
status. A measurement is filed as `idle` when the load average at its start is below 1, else as `loaded`,
and replaces the earlier measurement of the same kind and condition in `benchmarks/results/times.json`.
A measurement into the default file also rewrites the README's table (`--readme` rewrites it alone);
`tests/test_docs.py` checks that the README quotes the file exactly. Entries with a `source` were recorded
before this script existed (their README rows are marked †).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "times.json"
IDLE_LOAD = 1.0  # a 1-minute load average below this at the start counts as idle

# The README's commands (without their `pip install` prefix, which is timed by nothing here). "{out}" is a
# fresh temporary folder.
COMMANDS = {
    "sweep": "gflow sweep --out {out}/default",
    "tests": "python -m pytest -q",
}


def machine() -> dict:
    """CPU count, total memory and processor name of this machine."""
    mem_gib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory_gib": mem_gib, "cpu": model, "python": platform.python_version()}


def measure(what: str) -> dict:
    """Run the README's `what` command once in a child process and return its measurement."""
    command = COMMANDS[what]
    with tempfile.TemporaryDirectory(prefix="gflow-times-") as tmp:
        # a fresh cache, named as the test session's own (tests/test_compile_cache.py checks the tests use it)
        env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=tempfile.mkdtemp(prefix="gflow-jax-cache-", dir=tmp))
        bindir = str(Path(sys.executable).parent)  # the `gflow` and `python` of the interpreter running this
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        proc = subprocess.run(command.format(out=tmp), shell=True, cwd=ROOT, env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": command.format(out="<tmp>"),
        "condition": "idle" if load < IDLE_LOAD else "loaded",
        "date": date,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_gib": round(after.ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB on Linux
        "load_avg_1min_at_start": round(load, 2),
        "returncode": proc.returncode,
        "machine": machine(),
    }


def record(result: dict, what: str, path: Path = DEFAULT_OUT) -> dict:
    """File `result` under `what` and its condition in the JSON at `path`; return the whole file's data."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(what, {})[result["condition"]] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


LABELS = {"sweep": "default sweep", "tests": "tests"}
BEGIN, END = "<!-- times:begin (python -m benchmarks.times --readme) -->", "<!-- times:end -->"


def _seconds(value) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" + (f" ({value / 60:.1f} min)" if value >= 120 else "")


def table(data: dict) -> str:
    """The README's table of the measurements in `data` (the JSON's contents); "—" where one was not recorded."""
    rows = [
        "| command | machine | wall | CPU (user + sys) | peak memory | load at start | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for what in ("sweep", "tests"):
        for condition in ("idle", "loaded"):
            r = data.get(what, {}).get(condition)
            if r is None:
                continue
            m = r["machine"]
            mem = "—" if r["peak_rss_gib"] is None else f"{r['peak_rss_gib']:.2f} GiB"
            load = "—" if r["load_avg_1min_at_start"] is None else f"{r['load_avg_1min_at_start']:.2f}"
            mark = " †" if "source" in r else ""
            rows.append(
                f"| {LABELS[what]} | {m['nproc']} cores, {condition} | {_seconds(r['wall_s'])} | {_seconds(r['cpu_s'])} "
                f"| {mem} | {load} | {r['date']}{mark} |"
            )
    return "\n".join(rows)


def write_readme(data: dict, readme: Path = ROOT / "README.md") -> None:
    """Replace the table between the README's times markers with `table(data)`."""
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + "\n" + table(data) + "\n" + END + tail)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["sweep", "tests", "all"], default="all")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to update")
    parser.add_argument(
        "--readme", action="store_true", help="measure nothing: rewrite the README's table from the JSON"
    )
    args = parser.parse_args(argv)
    if args.readme:
        write_readme(json.loads(args.out.read_text()))
        return 0
    status = 0
    for what in ["sweep", "tests"] if args.what == "all" else [args.what]:
        result = measure(what)
        print(json.dumps({what: result}, indent=2))
        if result["returncode"] != 0:  # a failed run's time is no time of the command: not filed
            print(f"{what}: the command failed (exit {result['returncode']}); nothing filed", file=sys.stderr)
            status = 1
            continue
        data = record(result, what, args.out)
        if args.out == DEFAULT_OUT:
            write_readme(data)  # the README quotes the file it was measured into
    return status


if __name__ == "__main__":
    sys.exit(main())
