"""Facts the docs state about the repository stay true (issue 13, item 11)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen"]  # fmt: skip


def test_experiments_md_counts_the_shipped_experiments() -> None:
    text = (ROOT / "docs" / "EXPERIMENTS.md").read_text()
    match = re.search(r"\b(\w+) experiments ship in `conf/experiment/`", text)
    assert match, "EXPERIMENTS.md no longer says how many experiments ship"
    shipped = len(list((ROOT / "conf" / "experiment").glob("*.yaml")))
    assert NUMBERS.index(match.group(1).lower()) == shipped


def test_semantics_notes_are_cited_where_they_are() -> None:
    """SEMANTICS.md is not in this repository: every citation says where it is."""
    assert not (ROOT / "SEMANTICS.md").exists() and not (ROOT / "docs" / "SEMANTICS.md").exists()
    for doc in ("README.md", "docs/EXPERIMENTS.md", "docs/CLI.md", "docs/PERFORMANCE.md"):
        for paragraph in (ROOT / doc).read_text().split("\n\n"):
            if "SEMANTICS" in paragraph:
                assert "shared/reference" in paragraph, f"{doc}: {paragraph[:200]}"
