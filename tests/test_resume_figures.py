"""A resumed run reports true figures (issue 13, item 7): total wall time, throughput over the
simulated steps of both processes, the overrides it was started with, and progress that
continues from the batch where it stopped."""

from __future__ import annotations

import json
import logging
import re
import signal
from pathlib import Path

import pytest
import torch

from runner import app as app_module
from runner.checkpoint import latest_checkpoint

#: 20 training batches of one sample (20 steps each); the plain progress logs every 2nd batch
RUN = ("debug=default", "run.n_train=20", "run.batch_size=1", "run.log_every=10")
STOP_AFTER = 11  # training batches before the simulated Ctrl-C
PRIOR_WALL_S, PRIOR_TRAIN_S = 1000.0, 500.0  # planted in the checkpoint: the "first process"


class Lines(logging.Handler):
    """Collects the messages of one logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Make the run's stop request fire after ``batches`` training batches (as SIGINT does)."""
    seen = [0]

    def requested(self: app_module.StopRequest) -> bool:
        seen[0] += 1
        if seen[0] >= batches:
            self.signum = signal.SIGINT
        return self.signum is not None

    monkeypatch.setattr(app_module.StopRequest, "requested", requested)


def test_resume_keeps_wall_time_throughput_overrides_and_progress(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, STOP_AFTER)
        first = cli(*RUN, f"hydra.run.dir={run_dir}")
    assert first.exit_code == 128 + signal.SIGINT, first.output
    assert not (run_dir / "summary.json").exists()

    # Plant large, known figures for the first process, so that the resumed totals must include
    # them whatever the speed of this machine.
    path = latest_checkpoint(run_dir)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    loop = payload["loop"]
    assert (loop["epoch"], loop["batch"], loop["train_steps"]) == (0, STOP_AFTER, STOP_AFTER * 20)
    loop["wall_s"], loop["train_s"] = PRIOR_WALL_S, PRIOR_TRAIN_S
    torch.save(payload, path)

    # another Hydra command in this process leaves its job config behind (``--cfg job`` does):
    # it is not the resumed run's
    other = cli("seed=5", f"hydra.run.dir={tmp_path / 'other'}", "--cfg", "job")
    assert other.exit_code == 0, other.output

    lines = Lines()
    progress_log = logging.getLogger("runner.progress")
    progress_log.addHandler(lines)
    try:
        resumed = cli("resume", run_dir)
    finally:
        progress_log.removeHandler(lines)
    assert resumed.exit_code == 0, resumed.output

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["overrides"] == list(RUN)
    assert summary["resumed_from"] == path.name
    # the whole run: the first process's wall time plus the resumed one's
    assert PRIOR_WALL_S < summary["wall_s"] < PRIOR_WALL_S + 600
    timing, metrics = summary["timing"], summary["metrics"]
    assert timing["train_steps"] == 20 * 20 and timing["train_samples"] == 20
    assert PRIOR_TRAIN_S < timing["train_s"] < PRIOR_TRAIN_S + 600
    assert metrics["train_steps_per_s"] == pytest.approx(400 / timing["train_s"], rel=1e-3)
    assert metrics["train_steps_per_s"] < 400 / PRIOR_TRAIN_S  # not over the resumed part only
    assert metrics["train_samples_per_s"] == pytest.approx(20 / timing["train_s"], rel=1e-3)
    assert "steps_per_second" not in metrics

    # progress continues at batch 12 of 20 (logged every 2nd batch), not at batch 1
    batches = [
        tuple(map(int, m.groups()))
        for m in (re.search(r"batch (\d+)/(\d+)", s) for s in lines.messages)
        if m
    ]
    assert batches == [(12, 20), (14, 20), (16, 20), (18, 20), (20, 20)]


def test_progress_after_a_resume_counts_only_the_new_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rate of the progress line after resuming at batch 30 counts the steps simulated since
    the resume, over the time since then (not the checkpoint's 30 batches in no time)."""
    from runner import progress as progress_module

    now = [50.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    bar = progress_module.Progress("off", epochs=1, batches=60, steps_per_batch=100)
    with bar:
        bar.start_epoch(0, batch=30)
        now[0] += 5.0  # building the network and the step
        bar.restart_clock()
        now[0] += 2.0
        bar.advance(steps=100)
        assert (bar.batch, bar.steps) == (31, 100)
        assert bar.steps_per_second == pytest.approx(100 / 2.0)
