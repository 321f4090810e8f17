"""The loop's callbacks for a group of jobs: one progress display, each job's own records."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence

from runner.app import RunCallbacks
from runner.batched.watch import split
from runner.loop import Callbacks, LoopState
from runner.progress import Progress


class GroupCallbacks(Callbacks):
    """The loop's callbacks for a group: one progress display, and each job's own
    :class:`~runner.app.RunCallbacks` fed with its replica's metrics (metrics rows, epoch lines,
    checkpoints of its own network after the stacked parameters are copied back)."""

    def __init__(
        self,
        jobs: Sequence[RunCallbacks],
        progress: Progress,
        failed: dict[int, str],
        sync: Callable[[], None],
    ) -> None:
        self.jobs, self.progress, self.failed, self.sync = list(jobs), progress, failed, sync
        self.last: dict[str, float] = {}

    def _each(
        self, state: LoopState, metrics: dict[str, float] | None = None
    ) -> Iterator[tuple[RunCallbacks, LoopState, dict[str, float]]]:
        parts = split(metrics or {}, len(self.jobs))
        for r, job in enumerate(self.jobs):
            if r not in self.failed:
                yield job, job_state(state, r, len(self.jobs)), parts[r]

    def on_metrics(self, state: LoopState, metrics: dict[str, float]) -> None:
        for job, view, part in self._each(state, metrics):
            job.on_metrics(view, part)
        self.last = _mean(split(metrics, len(self.jobs)), self.failed)

    def on_monitor(self, state: LoopState, metrics: dict[str, float]) -> None:
        for job, view, part in self._each(state, metrics):
            job.on_monitor(view, part)

    def on_train_start(self, state: LoopState) -> None:
        self.progress.follow(state)

    def on_batch_end(self, state: LoopState, phase: str, n_batches: int | None) -> None:
        if phase != "train":
            return
        self.progress.advance_loop(state, self.last)
        if any(j.checkpoint_every > 0 and state.batch % j.checkpoint_every == 0 for j in self.jobs):
            self.sync()  # the jobs' checkpoints read their own networks
            for job, view, _ in self._each(state):
                job.on_batch_end(view, phase, n_batches)

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        if any(j.runtime.recorder.tracker.wants_parameters for j in self.jobs):
            self.sync()
        for job, view, part in self._each(state, metrics):
            job.on_epoch_end(view, part)


def _mean(parts: Sequence[dict[str, float]], failed: dict[int, str]) -> dict[str, float]:
    """The replicas' metrics averaged over the running ones (for the progress line)."""
    alive = [p for r, p in enumerate(parts) if r not in failed and p]
    if not alive:
        return {}
    return {k: sum(p.get(k, math.nan) for p in alive) / len(alive) for k in alive[0]}


def job_state(state: LoopState, replica: int, count: int) -> LoopState:
    """The loop position as job ``replica`` sees it: the group's, with its own metrics."""
    return dataclasses.replace(state, metrics=split(state.metrics, count)[replica])
