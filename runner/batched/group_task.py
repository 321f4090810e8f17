"""The tasks of a group's jobs side by side, as one loop :class:`~runner.loop.Task`.

Each job keeps its own task (its data order, Poisson generator, readout, input rate); a group
batch is the jobs' batches concatenated along the sample axis (replica-major, as the stacked
network folds its state), and each batch's record is split back so that every job's task
observes exactly what it would have observed alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from runner.batched.watch import tag
from runner.loop import Batch, Record, Task


class GroupTask:
    """One loop task over the jobs' ``tasks`` (same input, phases and batch shapes).

    Args:
        tasks: the jobs' own tasks, in replica order.
        sync: called before the tasks' ``end_phase`` (copies the stacked network's parameters
            into the jobs' own networks, which some tasks read, e.g. the pattern task's arrivals).
        failed: replicas whose jobs have failed (their tasks no longer observe or report).
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        sync: Callable[[], None] = lambda: None,
        failed: dict[int, str] | None = None,
    ) -> None:
        first = tasks[0]
        self.tasks = list(tasks)
        self.sync = sync
        self.failed = failed if failed is not None else {}
        self.input = first.input
        self.watch = tuple(first.watch)
        self.record_raster = bool(first.record_raster)
        self.record_latency = bool(getattr(first, "record_latency", False))
        for name in ("eval_phases", "monitor_phases"):  # only where the jobs' tasks have them
            if hasattr(first, name):
                setattr(self, name, tuple(getattr(first, name)))
        self._parts: dict[str, list[Batch]] = {}

    def n_batches(self, phase: str) -> int:
        return self.tasks[0].n_batches(phase)

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        streams = [task.batches(phase, epoch, start) for task in self.tasks]
        while True:
            parts = [next(stream, None) for stream in streams]
            if all(p is None for p in parts):
                return
            if any(p is None for p in parts):
                raise ValueError(f"the jobs of a group yield different numbers of {phase} batches")
            batch_parts = [p for p in parts if p is not None]
            self._parts[phase] = batch_parts
            yield concat(batch_parts)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        parts = self._parts[phase]
        for r, (part, rec) in enumerate(zip(parts, split_record(record, len(parts)), strict=True)):
            if r not in self.failed:
                self.tasks[r].observe(phase, part, rec)

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        self.sync()
        merged: dict[str, float] = {}
        for r, task in enumerate(self.tasks):
            if r not in self.failed:
                merged.update({tag(r, k): v for k, v in task.end_phase(phase, epoch).items()})
        return merged


def concat(parts: Sequence[Batch]) -> Batch:
    """The jobs' batches as one: spikes and drives ``[T, R*B, N]``, labels ``[R*B]``."""
    shapes = {tuple(p.spikes.shape) for p in parts}
    if len(shapes) > 1:
        raise ValueError(f"the jobs of a group make batches of different shapes: {sorted(shapes)}")
    labels = [p.labels for p in parts]
    return Batch(
        spikes=torch.cat([p.spikes for p in parts], dim=1),
        labels=None if any(x is None for x in labels) else torch.cat(labels),  # type: ignore[arg-type]
        drive={k: torch.cat([p.drive[k] for p in parts], dim=1) for k in parts[0].drive},
    )


def _chunks(values: dict[str, Tensor], count: int, dim: int) -> list[dict[str, Tensor]]:
    out: list[dict[str, Tensor]] = [{} for _ in range(count)]
    for key, tensor in values.items():
        for r, piece in enumerate(tensor.chunk(count, dim=dim)):
            out[r][key] = piece
    return out


def split_record(record: Record, count: int) -> list[Record]:
    """A group record -> one per replica (counts and latencies ``[B, N]``, rasters
    ``[T, B, N]``)."""
    counts = _chunks(record.counts, count, 0)
    raster = _chunks(record.raster, count, 1)
    latency = _chunks(record.latency, count, 0)
    return [Record(counts[r], raster[r], latency[r]) for r in range(count)]
