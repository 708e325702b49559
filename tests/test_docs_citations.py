"""No file in the repository cites a document outside it: the design notes the project started from are not
part of the repository, so a reference to them is a dead end for a reader (the theory is in docs/theory.md)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("DESIGN.md",)  # documents that are not in the repository


def test_no_tracked_file_cites_a_document_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    me = str(Path(__file__).relative_to(ROOT))
    citing = set()
    for name in files:
        path = ROOT / name
        if (
            name == me
            or not path.is_file()
            or path.suffix not in (".py", ".md", ".toml", ".txt", ".cfg", ".yaml", ".yml", "")
        ):
            continue
        text = path.read_text(errors="ignore")
        if any(doc in text for doc in OUTSIDE):
            citing.add(name)
    assert citing == set(), sorted(citing)
    assert not any((ROOT / doc).exists() for doc in OUTSIDE)  # it really is outside
