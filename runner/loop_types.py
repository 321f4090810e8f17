"""What the loop and its users exchange: input batches and records, the task protocol, the
plan, the loop state (also what a checkpoint restores) and the callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor


@dataclass
class Batch:
    """One batch of input: spikes ``[T, B, N]`` (bool, on the device) and optional labels."""

    spikes: Tensor
    labels: Tensor | None = None
    drive: dict[str, Tensor] = field(default_factory=dict)  # other imposed populations [T, B, N]


@dataclass
class Record:
    """What the loop hands a task after a batch: spike counts ``[B, N]``, optional rasters, and
    in learning-free phases (for tasks with ``record_latency``) the first-spike latencies
    ``[B, N]``: the number of steps before each neuron's first spike (the batch length if it
    never fired)."""

    counts: dict[str, Tensor]
    raster: dict[str, Tensor]
    latency: dict[str, Tensor] = field(default_factory=dict)


class Task(Protocol):
    """Makes the input batches of an experiment and turns the network's output into metrics.

    Phases: ``train`` (learning on), then after each epoch the learning-free phases the task
    lists in ``eval_phases`` (default ``("eval",)``, e.g. a labelling pass, validation, test),
    and every ``eval_every`` training samples those in ``monitor_phases`` (if any).
    ``n_batches(phase)`` is the number of batches ``batches(phase, epoch)`` yields in an epoch
    (the total of the progress line).
    """

    input: str
    watch: tuple[str, ...]
    record_raster: bool

    def n_batches(self, phase: str) -> int: ...
    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]: ...
    def observe(self, phase: str, batch: Batch, record: Record) -> None: ...
    def end_phase(self, phase: str, epoch: int) -> dict[str, float]: ...


@dataclass(frozen=True)
class LoopPlan:
    epochs: int = 1
    update_every: int = 1
    log_every: int = 50
    eval_each_epoch: bool = True
    compile: bool = False
    eval_every: int = 0  # training samples between the task's monitor phases (0 = never)
    steps_per_call: int | None = None  # steps per compiled call (None: make_step's default)
    step_key: str | None = None  # what the compiled step depends on (runner.build.step_key)


StepFn = Callable[[dict[str, Tensor], bool], None]


@dataclass
class LoopState:
    """Where the loop is: enough to log progress and, with the tensors, to resume."""

    epoch: int = 0
    batch: int = 0
    train_steps: int = 0
    steps: int = 0
    samples: int = 0  # training samples seen (all epochs)
    metrics: dict[str, float] = field(default_factory=dict)
    # honest throughput: simulation seconds of training (compilation excluded) and of the
    # learning-free phases, with what they simulated; kept across checkpoints and resumes
    train_s: float = 0.0
    eval_s: float = 0.0
    eval_samples: int = 0
    compile_s: float = 0.0
    wall_s: float = 0.0  # the whole run so far (set by the caller, e.g. before a checkpoint)
    next_monitor: int = 0  # training samples at which the next monitor evaluation runs

    def throughput(self) -> dict[str, float]:
        """``train_steps_per_s``, ``train_samples_per_s``, ``eval_samples_per_s``, ``compile_s``."""
        out = {"compile_s": self.compile_s}
        if self.train_s > 0:
            out["train_steps_per_s"] = self.train_steps / self.train_s
            out["train_samples_per_s"] = self.samples / self.train_s
        if self.eval_s > 0 and self.eval_samples > 0:
            out["eval_samples_per_s"] = self.eval_samples / self.eval_s
        return out


class Callbacks:
    """Hooks the loop calls on the host (logging, progress, checkpoints). All optional."""

    def on_metrics(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called every ``log_every`` steps and after each batch with fresh metrics."""

    def on_train_start(self, state: LoopState) -> None:
        """Called when the training batches of an epoch begin (the step is built by then)."""

    def on_batch_end(self, state: LoopState, phase: str, n_batches: int | None) -> None:
        """Called after every batch (after the weight hooks)."""

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called after each epoch with the task's metrics."""

    def on_monitor(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called every ``eval_every`` training samples with the task's monitor metrics."""
