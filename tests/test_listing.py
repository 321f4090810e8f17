"""``stdp-run list`` describes what it lists (issue 13, item 11): every registry entry, bounds
included, and every shipped experiment and sweep get a one-line description."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config.compose import group_options
from runner.config.listing import REGISTRY_CHOICES, header_sentence, registry_rows

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("what", REGISTRY_CHOICES)
def test_every_registry_entry_has_a_description(what: str) -> None:
    rows = registry_rows(what)
    assert rows
    undescribed = [name for name, _, _, doc in rows if not doc.strip()]
    assert not undescribed, f"{what} without a description: {undescribed}"


def test_list_bounds_shows_the_rule(cli) -> None:  # type: ignore[no-untyped-def]
    out = " ".join(cli("list", "bounds").stdout.split())
    assert "Soft bound, steps shrink near the limit" in out
    assert "Hard bound" in out


@pytest.mark.parametrize("group", ["experiment", "sweep"])
def test_every_shipped_option_has_a_one_line_description(cli, group: str) -> None:  # type: ignore[no-untyped-def]
    lines = cli("list", f"{group}s").stdout.splitlines()
    options = group_options(group)
    assert [line.split()[0] for line in lines] == options
    for option, line in zip(options, lines, strict=True):
        description = line[len(option) :].strip()
        assert len(description) > 20, line
        expected = header_sentence((CONF / group / f"{option}.yaml").read_text())
        assert description == expected


def test_list_experiments_reads_the_header_comment(cli) -> None:  # type: ignore[no-untyped-def]
    lines = cli("list", "experiments").stdout.splitlines()
    kernel_stdp = next(line for line in lines if line.startswith("kernel_stdp "))
    assert kernel_stdp.split(maxsplit=1)[1] == (
        "Pattern detection with weight learning alone (Masquelier, Guyonneau & Thorpe 2008 style)."
    )


def test_header_sentence() -> None:
    text = (
        "# @package _global_\n"
        "# A first sentence that wraps\n"
        "# onto a second line. Then more.\n"
        "#   stdp-run experiment=x\n"
        "defaults: []\n"
    )
    assert header_sentence(text) == "A first sentence that wraps onto a second line."
    assert header_sentence("# Runs on a cluster:\n#   stdp-run -m x\n") == "Runs on a cluster"
    assert header_sentence("# 2 seeds x 2 reductions = 4 jobs\n\nname: x\n") == (
        "2 seeds x 2 reductions = 4 jobs"
    )
    assert header_sentence("seed: 0\n") == ""
