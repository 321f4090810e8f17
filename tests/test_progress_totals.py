"""Every task kind reports its progress total (issue 13, item 8): the pattern and spike-train
experiments showed ``batch 17/0 (1700%)`` because only image tasks gave one."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_resume_figures import Lines  # tests/ is on sys.path (rootdir conftest)

from runner.build import build_experiment
from runner.progress import Progress


@pytest.fixture
def progress_lines() -> Iterator[list[str]]:
    """The messages of the ``runner.progress`` logger during the test."""
    lines = Lines()
    logger = logging.getLogger("runner.progress")
    logger.addHandler(lines)
    try:
        yield lines.messages
    finally:
        logger.removeHandler(lines)


# one experiment per task kind, with a few training batches each
KINDS = {
    "image": ("experiment=default", "run.n_train=7", "run.batch_size=2"),
    "pattern": ("experiment=delay_adjusted", "run.n_train=6", "run.batch_size=1"),
    "spike_trains": (
        "experiment=stdp_window",
        "stimulus.params.n_pairings=3",
        "stimulus.params.frequency_hz=10",
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_task_kind_counts_its_batches(compose_cfg, kind: str) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(*KINDS[kind], "device=cpu", "run.steps_per_sample=20")
    task = build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32).task
    total = task.n_batches("train")
    assert total > 0
    assert sum(1 for _ in task.batches("train", 0)) == total
    assert sum(1 for _ in task.batches("train", 0, start=total - 1)) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_progress_lines_show_the_true_total(run_cli, progress_lines, kind: str) -> None:  # type: ignore[no-untyped-def]
    result, _ = run_cli(*KINDS[kind], "run.progress=plain")
    assert result.exit_code == 0, result.output
    shown = [
        tuple(map(int, m.groups()))
        for m in (re.search(r"batch (\d+)/(\d+) \((\d+)%\)", s) for s in progress_lines)
        if m
    ]
    assert shown, progress_lines
    batch, total, pct = shown[-1]
    assert total > 0 and batch == total and pct == 100
    assert all(b <= t and p <= 100 for b, t, p in shown)


def test_progress_without_a_total_shows_the_batch_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="runner.progress")
    with Progress("plain", epochs=1, batches=0, steps_per_batch=10, plain_every=1) as bar:
        for _ in range(3):
            bar.advance()
    lines = [r.getMessage() for r in caplog.records if r.name == "runner.progress"]
    assert len(lines) == 3 and lines[-1].startswith("epoch 1/1 batch 3 ")
    assert not any("/0" in line or "%" in line for line in lines)


def test_run_uses_the_tasks_total(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compose_cfg
) -> None:  # type: ignore[no-untyped-def]
    """The run hands the task's ``n_batches("train")`` to the progress display."""
    from runner import app

    seen: list[int] = []
    real = app.Progress

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["batches"])
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "Progress", spy)
    app.run_experiment(compose_cfg(*KINDS["pattern"], "debug=default"), tmp_path / "run")
    assert seen == [6]
