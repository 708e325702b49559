"""The documentation's promises, checked without running an engine (except the README example, slow-marked):
every relative link and #anchor in the markdown resolves (GitHub's heading slugs), the README stays short and
its test command is the one .ci/run runs, the generated pages are what the code generates now, and the
README's measured times are the ones in benchmarks/results/times.json."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def markdown_files() -> list[Path]:
    files = [
        README,
        ROOT / "EXPERIMENTS.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "benchmarks").rglob("*.md")),
    ]
    return [f for f in files if f.exists()]


def prose(text: str, spans: bool = True) -> str:
    """The text outside fenced code blocks, with inline code spans blanked if `spans` (links there are not links)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            if fence is None:
                fence = m.group(1)[:3]
            elif m.group(1).startswith(fence):
                fence = None
            out.append("")
            continue
        out.append("" if fence else re.sub(r"`+[^`]*`+", "``", line) if spans else line)
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps Unicode letters and digits, and _
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(), spans=False).split("\n"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def broken_links(path: Path) -> list[str]:
    bad = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor}")
    return bad


def test_slugs_follow_github():
    """Independent reference: anchors GitHub gives these headings (as rendered on github.com)."""
    assert slug("`flow.accuracy`: the contract") == "flowaccuracy-the-contract"
    assert slug("Set-up: two commands") == "set-up-two-commands"
    assert slug("Fingerprints (both wings)") == "fingerprints-both-wings"
    assert slug("Deep nets (issue 6)") == "deep-nets-issue-6"
    assert slug("What the observables cost") == "what-the-observables-cost"


def test_the_checker_finds_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Top\n\n## Part two\n\n[ok](#part-two) [ok](b.md#b) [bad](#nope) [bad](c.md)\n"
        "`[not a link](x.md)`\n\n```\n[not a link](y.md)\n```\n"
    )
    (tmp_path / "b.md").write_text("# B\n")
    assert broken_links(tmp_path / "a.md") == ["#nope: no heading with anchor #nope", "c.md: no such file"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path):
    assert broken_links(path) == []


def test_readme_is_short_and_its_test_command_is_what_ci_runs():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    command = "pip install -e '.[test]' && python -m pytest -q"
    assert command in text
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
    assert not re.search(r"\bissues? \d+", text, re.IGNORECASE), "no issue numbers in the README"


def test_generated_pages_are_current():
    """docs/cli.md and docs/api.md are what `python -m gflow._docgen` writes from the code now."""
    proc = subprocess.run([sys.executable, "-m", "gflow._docgen", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # and the check can fail: a field's help that is not on the page
    from gflow import _docgen
    from gflow.twolayer.config import FlowConfig

    page = (ROOT / "docs" / "cli.md").read_text()
    for f in FlowConfig.__dataclass_fields__.values():
        assert f.metadata["help"].replace("|", "\\|").replace("\n", " ") in page
    assert _docgen.api_page().count("### `gflow.") >= 20


def _seconds(cell: str):
    return None if cell.strip() == "—" else float(re.match(r"\s*([\d.]+) s", cell).group(1))


def check_times_table(block: str, data: dict) -> None:
    """Each row of a times table, parsed back, equals its entry in `data`, and every entry has its row."""
    rows = [r for r in block.split("\n") if r.startswith("| ") and not r.startswith("| command")]
    names = {"default sweep": "sweep", "tests": "tests"}
    seen = set()
    for row in rows:
        what, machine, wall, cpu, mem, load, date = [c.strip() for c in row.strip("|").split("|")]
        nproc, condition = re.match(r"(\d+) cores, (idle|loaded)", machine).groups()
        entry = data[names[what]][condition]
        seen.add((names[what], condition))
        assert int(nproc) == entry["machine"]["nproc"]
        assert _seconds(wall) == entry["wall_s"]
        assert _seconds(cpu) == entry["cpu_s"]
        assert (None if mem == "—" else float(mem.split()[0])) == entry["peak_rss_gib"]
        assert (None if load == "—" else float(load)) == entry["load_avg_1min_at_start"]
        assert date.rstrip(" †") == entry["date"]
        assert date.endswith("†") == ("source" in entry)
    assert seen == {(w, c) for w, conds in data.items() for c in conds}


def test_readme_times_are_the_measured_ones():
    data = json.loads((ROOT / "benchmarks" / "results" / "times.json").read_text())
    assert {"sweep", "tests"} <= set(data)
    check_times_table(README.read_text().split("<!-- times:begin")[1].split("<!-- times:end -->")[0], data)


def test_a_new_measurement_replaces_its_slot_and_the_table_says_so(tmp_path):
    """benchmarks.times files a measurement under (command, condition), keeps the others, and renders it; a
    figure edited in the table is caught."""
    from benchmarks import times

    machine = {"nproc": 2, "memory_gib": 23.5}
    entry = dict(
        command="c",
        date="2026-01-01 00:00 UTC",
        wall_s=130.4,
        cpu_s=20.0,
        peak_rss_gib=0.5,
        load_avg_1min_at_start=3.2,
        returncode=0,
        machine=machine,
    )
    path = tmp_path / "t.json"
    times.record(dict(entry, condition="loaded"), "sweep", path)
    times.record(dict(entry, condition="idle", load_avg_1min_at_start=0.1), "sweep", path)
    data = times.record(dict(entry, condition="loaded", wall_s=99.0), "sweep", path)
    assert data["sweep"]["loaded"]["wall_s"] == 99.0 and data["sweep"]["idle"]["wall_s"] == 130.4
    table = times.table(data)
    check_times_table(table, data)
    with pytest.raises(AssertionError):
        check_times_table(table.replace("99.0 s", "98.0 s"), data)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's Python block, executed as written (6 small runs and one single run)."""
    block = re.search(r"## In Python\n+```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    ds = namespace["ds"]
    assert ds.final_test_err.shape[:2] == (3, 2)
    assert (tmp_path / "runs" / "example" / "results.nc").exists()
