"""The simulation loop: epochs x batches x steps on the device.

Within a step the order is fixed (:class:`runner.core.network.Network`): stimulus -> connections
-> neurons -> spike ages -> trainers; then the accumulated updates are applied every
``update_every`` training steps (counted across samples), and the weight hooks run after each
training batch. Per-sample state is reset before every batch. Spike counts are accumulated on the
device; metrics are read back to the host only every ``log_every`` steps and at batch ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from runner.core.dense import DenseConnection
from runner.core.network import Network


@dataclass
class Batch:
    """One batch of input: spikes ``[T, B, N]`` (bool, on the device) and optional labels."""

    spikes: Tensor
    labels: Tensor | None = None
    drive: dict[str, Tensor] = field(default_factory=dict)  # other imposed populations [T, B, N]


@dataclass
class Record:
    """What the loop hands a task after a batch: spike counts ``[B, N]`` and optional rasters."""

    counts: dict[str, Tensor]
    raster: dict[str, Tensor]


class Task(Protocol):
    """Makes the input batches of an experiment and turns the network's output into metrics."""

    input: str
    watch: tuple[str, ...]
    record_raster: bool

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


StepFn = Callable[[dict[str, Tensor], bool], None]


def make_step(network: Network, *, compile: bool = False) -> StepFn:
    """One network step plus (when ``apply``) the application of the accumulated updates.

    With ``compile`` the step is traced once into a single graph (``torch.compile``, inductor),
    which fuses the per-synapse learning arithmetic into a few loops.
    """

    def step(drive: dict[str, Tensor], apply: bool) -> None:
        network.step(drive)
        if apply:
            network.apply_updates()

    if not compile:
        return step
    return torch.compile(step, fullgraph=True, dynamic=False)  # type: ignore[return-value]


@dataclass
class LoopState:
    """Where the loop is: enough to log progress and, with the tensors, to resume."""

    epoch: int = 0
    batch: int = 0
    train_steps: int = 0
    steps: int = 0
    samples: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


class Callbacks:
    """Hooks the loop calls on the host (logging, progress, checkpoints). All optional."""

    def on_metrics(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called every ``log_every`` steps and after each batch with fresh metrics."""

    def on_batch_end(self, state: LoopState, phase: str, n_batches: int | None) -> None:
        """Called after every batch (after the weight hooks)."""

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called after each epoch with the task's metrics."""


class NonFiniteError(RuntimeError):
    """A weight, delay or membrane value became NaN or infinite; the message is one line."""


class FiniteGuard:
    """Checks that parameters and membrane voltages are finite, on the device.

    The flags of all watched tensors are combined on the device and read in one transfer, which
    the loop does only every ``log_every`` steps and at batch ends (never every step).
    """

    def __init__(self, network: Network) -> None:
        self.watched: list[tuple[str, Tensor]] = []
        for name, conn in network.connections.items():
            self.watched.append((f"network.connections.{name}.weight", conn.weight))
            if getattr(conn, "delay", None) is not None:
                self.watched.append((f"network.connections.{name}.delay", conn.delay))
        for name, pop in network.populations.items():
            voltage = getattr(pop, "voltage", None)
            if isinstance(voltage, Tensor):
                self.watched.append((f"network.populations.{name}.voltage", voltage))
        self.network = network

    def check(self, step: int) -> None:
        """Raise :class:`NonFiniteError` naming the first non-finite tensor."""
        if not self.watched:
            return
        flags = torch.stack([t.isfinite().all() for _, t in self._current()]).tolist()
        for (name, _), ok in zip(self.watched, flags, strict=True):
            if not ok:
                kind = name.rsplit(".", 1)[1]
                cause = ("a learning rate that is too large or missing weight bounds/clamps"
                         if kind in ("weight", "delay")
                         else "input currents that are too large (connection scale or weights)")
                raise NonFiniteError(f"{name} became non-finite (NaN or inf) by step {step}; "
                                     f"likely cause: {cause}")

    def _current(self) -> list[tuple[str, Tensor]]:
        # buffers can be reallocated (set_batch_size), so look voltages up again
        out = []
        for name, tensor in self.watched:
            if name.endswith(".voltage"):
                pop = self.network.populations[name.split(".")[2]]
                tensor = pop.voltage
            out.append((name, tensor))
        return out


class MetricProbe:
    """Device-side metrics of a network, read to the host in one transfer."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.trained = {
            name: conn for name, conn in network.connections.items()
            if isinstance(conn, DenseConnection) and len(conn.updaters) > 0
        }
        self._last = self._snapshot()

    def _snapshot(self) -> dict[str, Tensor]:
        snap: dict[str, Tensor] = {}
        for name, conn in self.trained.items():
            snap[f"{name}.weight"] = conn.weight.detach().clone()
            if conn.delay is not None and "delay" in conn.updaters:
                snap[f"{name}.delay"] = conn.delay.detach().clone()
        return snap

    def read(self, counts: dict[str, Tensor], steps: int) -> dict[str, float]:
        """Rates (Hz) from spike counts over ``steps``, parameter statistics, update sizes."""
        names: list[str] = []
        values: list[Tensor] = []
        seconds = max(steps, 1) * self.network.dt / 1000.0
        for pop, count in counts.items():
            names.append(f"rate.{pop}")
            values.append(count.float().mean() / seconds)
        now = self._snapshot()
        for key, tensor in now.items():
            t = tensor.float()
            for stat, val in (("mean", t.mean()), ("std", t.std(unbiased=False)),
                              ("min", t.min()), ("max", t.max()),
                              ("update", (t - self._last[key].float()).abs().mean())):
                names.append(f"{key}.{stat}")
                values.append(val)
        self._last = now
        if not values:
            return {}
        return dict(zip(names, torch.stack(values).tolist(), strict=True))


def run_batch(network: Network, task: Task, batch: Batch, plan: LoopPlan, state: LoopState,
              *, train: bool, probe: MetricProbe | None, callbacks: Callbacks,
              step: StepFn | None = None, guard: FiniteGuard | None = None) -> Record:
    """Run one batch through the network from rest; returns its spike record."""
    steps, size = batch.spikes.shape[0], batch.spikes.shape[1]
    if size != network.batch_size:
        network.set_batch_size(size)
    network.reset_state()
    counts = {p: torch.zeros_like(network.spikes(p), dtype=torch.int32) for p in task.watch}
    raster = ({p: torch.zeros((steps, *network.spikes(p).shape), dtype=torch.bool,
                              device=batch.spikes.device) for p in task.watch}
              if task.record_raster else {})
    window = {p: torch.zeros_like(c) for p, c in counts.items()}
    since_log = 0
    step = step or make_step(network)
    for t in range(steps):
        drive = {task.input: batch.spikes[t]}
        for name, spikes in batch.drive.items():
            drive[name] = spikes[t]
        apply = False
        if train:
            state.train_steps += 1
            apply = state.train_steps % plan.update_every == 0
        step(drive, apply)
        for p in task.watch:
            spk = network.spikes(p)
            counts[p].add_(spk)
            if raster:
                raster[p][t].copy_(spk)
        state.steps += 1
        since_log += 1
        if guard is not None and plan.log_every > 0 and state.steps % plan.log_every == 0:
            guard.check(state.steps)
        if probe is not None and plan.log_every > 0 and state.steps % plan.log_every == 0:
            window_counts = {p: counts[p] - window[p] for p in counts}
            callbacks.on_metrics(state, probe.read(window_counts, since_log))
            window = {p: c.clone() for p, c in counts.items()}
            since_log = 0
    return Record(counts, raster)


def run_loop(network: Network, task: Task, plan: LoopPlan, *, callbacks: Callbacks | None = None,
             state: LoopState | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> LoopState:
    """Train for ``plan.epochs`` epochs (evaluating after each), starting from ``state``."""
    callbacks = callbacks or Callbacks()
    state = state or LoopState()
    probe = MetricProbe(network)
    guard = FiniteGuard(network)
    step = make_step(network, compile=plan.compile)
    start = time.perf_counter()
    with torch.no_grad():
        while state.epoch < plan.epochs:
            network.train()
            for index, batch in enumerate(task.batches("train", state.epoch, state.batch),
                                          start=state.batch):
                record = run_batch(network, task, batch, plan, state, train=True, probe=probe,
                                   callbacks=callbacks, step=step, guard=guard)
                network.after_batch()
                guard.check(state.steps)
                task.observe("train", batch, record)
                state.batch = index + 1
                state.samples += batch.spikes.shape[1]
                callbacks.on_batch_end(state, "train", None)
                if should_stop():
                    return state
            metrics = task.end_phase("train", state.epoch)
            if plan.eval_each_epoch:
                network.eval()
                for batch in task.batches("eval", state.epoch):
                    record = run_batch(network, task, batch, plan, state, train=False,
                                       probe=None, callbacks=callbacks, step=step)
                    task.observe("eval", batch, record)
                metrics.update(task.end_phase("eval", state.epoch))
                network.train()
            elapsed = time.perf_counter() - start
            metrics["steps_per_second"] = state.steps / elapsed if elapsed > 0 else 0.0
            state.metrics = {**state.metrics, **metrics}
            callbacks.on_epoch_end(state, metrics)
            state.epoch += 1
            state.batch = 0
    return state
