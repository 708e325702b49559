"""benchmarks/ as a suite and studies: every script has a place (the suite, benchmarks/studies/README.md's table,
or benchmarks/gpu/), every stored result is named by a README, and `python -m benchmarks` runs its entries
through their own parsers (in process, no solves: the end-to-end run is the slow test below)."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
B = ROOT / "benchmarks"
# the modules the suite's entries share (not entries themselves)
SHARED = {
    "__init__",
    "__main__",
    "cli",
    "common",
    "gd",
    "scipy_ivp",
    "measure",
    "judge",
    "report",
    "reference",
    "matched",
    "times",
}  # times: the README's two commands, timed (docs)


def _studies_table():
    rows = [line for line in (B / "studies" / "README.md").read_text().splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([a-z_]+)`", r).group(1): r for r in rows}


def test_every_script_is_in_the_suite_or_a_listed_study():
    from benchmarks.__main__ import SUITE

    top = {p.stem for p in B.glob("*.py")}
    assert top == SHARED | set(SUITE), (
        f"unplaced: {sorted(top - SHARED - set(SUITE))}, missing: {sorted((SHARED | set(SUITE)) - top)}"
    )
    studies = {p.stem for p in (B / "studies").glob("*.py")} - {"__init__"}
    table = _studies_table()
    assert studies == set(table), (
        f"not in studies/README.md: {sorted(studies - set(table))}; listed, absent: {sorted(set(table) - studies)}"
    )
    for name, row in table.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 5 and all(cells), f"{name}: a row has finding, figure, date and command ({row})"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}|–", cells[3]), f"{name}: date {cells[3]!r}"
        assert f"benchmarks.studies.{name}" in cells[4] or f"benchmarks/studies/{name}.py" in cells[4], name
    assert {p.name for p in (B / "gpu").glob("*.py")} == {"__init__.py", "gpu_check.py", "gpu_deep_check.py"}


def test_every_stored_result_is_named_and_every_named_result_exists():
    text = (B / "README.md").read_text() + (B / "studies" / "README.md").read_text()
    for p in (B / "results").glob("*.json"):
        assert p.name in text, f"benchmarks/results/{p.name} is cited by neither README"
    for name in set(re.findall(r"`([a-z0-9_]+\.json)`", text)):
        assert (B / "results" / name).is_file(), f"a README names results/{name}, which is absent"


def test_data_files_are_where_the_code_reads_them():
    from benchmarks import reference

    assert reference.REF_FILE.is_file() and reference.STATE_FILE.is_file()
    assert (B / "data" / "accuracy_ladder_calibration.npz").is_file()


def test_suite_plan_passes_each_entry_its_own_options(tmp_path):
    from benchmarks.__main__ import QUICK_OUT, SUITE, plan

    quick = plan(True, tmp_path)
    assert [n for n, _ in quick] == list(SUITE)
    for name, argv in quick:
        assert argv == ["--quick", "--json", str(tmp_path / QUICK_OUT[name])]
    full = plan(False, tmp_path, only=["fair"])
    assert [a[a.index("--problem") + 1] for _, a in full] == ["small", "heldout"]
    assert [a[-1] for _, a in full] == [
        str(tmp_path / "fair_contract_small.json"),
        str(tmp_path / "fair_contract_heldout.json"),
    ]


@pytest.mark.parametrize("entry", ["fair", "memory", "batching", "accuracy"])
def test_each_entry_takes_the_shared_options(entry, capsys):
    """--help of each entry lists the shared parser's --quick and --json (one parser, benchmarks/cli.py)."""
    mod = importlib.import_module(f"benchmarks.{entry}")
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--json PATH" in out


@pytest.mark.slow  # ~4 min on 2 loaded cores (229 s measured)
def test_quick_suite_end_to_end(tmp_path):
    import json

    from benchmarks.__main__ import QUICK_OUT, main

    res = main(["--quick", "--out", str(tmp_path)])
    assert set(res["results"]) == set(QUICK_OUT)
    for name, file in QUICK_OUT.items():
        assert (tmp_path / file).is_file(), name
    mem = json.loads((tmp_path / "memory_quick.json").read_text())
    assert mem["problem"] == "tiny" and mem["n_runs"] == 100 and mem["peak_rss_mb"] >= mem["rss_before_mb"] > 0
    bat = json.loads((tmp_path / "batching_quick.json").read_text())
    assert bat["speedup_cost_aware_vs_full_vmap"] > 0
    acc = json.loads((tmp_path / "accuracy_quick.json").read_text())
    assert acc["set"] == "quick" and acc["summary"]["0.01"]["cases"] == 2
    (fair,) = res["results"]["fair"]
    assert "| tiny | 0.01 | 0.01 |" in fair["table"]
