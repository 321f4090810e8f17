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

#: Compiled steps run this many steps per call when the per-step work is small (at most
#: ``CHUNK_MAX_SYNAPSES`` trained synapse-samples): a compiled call costs ~80 us of fixed
#: overhead (guards, wrappers) on the CPU, as much as the arithmetic of a 784 x 100 step.
CHUNK_STEPS = 10
CHUNK_MAX_SYNAPSES = 1_000_000


class CompiledStep:
    """A compiled step (``StepFn``) that can also run ``steps_per_call`` steps in one call.

    :meth:`run_chunk` unrolls ``k`` steps (with the spike counting of :func:`run_batch`) into one
    graph, so the fixed cost of a compiled call is paid once per ``k`` steps. Stale trainer
    caches are rebuilt eagerly before each call, so the graphs never branch on them.
    """

    def __init__(self, network: Network, steps_per_call: int) -> None:
        self.network = network
        self.steps_per_call = steps_per_call
        # Inductor recomputes a cheap value inside every loop that reads it unless it has more
        # than ``realize_reads_threshold`` readers; the ages and spikes of a step are read by
        # per-synapse loops, where recomputing them (mask loads) costs more than storing them.
        options: dict[str, Any] = {"realize_reads_threshold": 1}
        self._step = torch.compile(self._one, fullgraph=True, dynamic=False, options=options)
        self._chunk = torch.compile(self._many, fullgraph=True, dynamic=False, options=options)

    def _one(self, drive: dict[str, Tensor], apply: bool) -> None:
        self.network.step(drive)
        if apply:
            self.network.apply_updates()

    def _many(
        self,
        drive: dict[str, Tensor],
        apply: tuple[bool, ...],
        counts: dict[str, Tensor],
        raster: dict[str, Tensor],
    ) -> None:
        for j, flag in enumerate(apply):
            self._one({name: d[j] for name, d in drive.items()}, flag)
            for p, count in counts.items():
                spk = self.network.spikes(p)
                count.add_(spk)
                if p in raster:
                    raster[p][j].copy_(spk)

    def _float(self, drive: dict[str, Tensor]) -> dict[str, Tensor]:
        # Imposed spikes as 0/1 floats (populations accept them): compiled loops that re-read
        # the spikes inside per-synapse loops load floats much faster than bools.
        dtype = self.network._float_dtype()
        return {name: d.to(dtype) for name, d in drive.items()}

    def __call__(self, drive: dict[str, Tensor], apply: bool) -> None:
        self.network.refresh_caches()
        self._step(self._float(drive), apply)

    def run_chunk(
        self,
        drive: dict[str, Tensor],
        apply: tuple[bool, ...],
        counts: dict[str, Tensor],
        raster: dict[str, Tensor],
    ) -> None:
        """Run ``len(apply)`` steps; ``drive`` and ``raster`` hold ``[k, B, N]`` slices."""
        self.network.refresh_caches()
        self._chunk(self._float(drive), apply, counts, raster)


def trained_synapses(network: Network) -> int:
    """Batch size x the number of synapses of the trained dense connections."""
    total = 0
    for conn in network.connections.values():
        if isinstance(conn, DenseConnection) and len(conn.updaters) > 0:
            total += conn.batch_size * conn.n_in * conn.n_out
    return total


def make_step(
    network: Network, *, compile: bool = False, steps_per_call: int | None = None
) -> StepFn:
    """One network step plus (when ``apply``) the application of the accumulated updates.

    With ``compile`` the step is traced once into a single graph (``torch.compile``, inductor),
    which fuses the per-synapse learning arithmetic into a few loops, and :func:`run_batch` runs
    ``steps_per_call`` steps per compiled call (default: ``CHUNK_STEPS`` for small networks, 1
    otherwise; unrolling k steps makes the first compilation about k times longer).
    """

    def step(drive: dict[str, Tensor], apply: bool) -> None:
        network.step(drive)
        if apply:
            network.apply_updates()

    if not compile:
        return step
    if steps_per_call is None:
        small = trained_synapses(network) <= CHUNK_MAX_SYNAPSES
        steps_per_call = CHUNK_STEPS if small else 1
    return CompiledStep(network, max(int(steps_per_call), 1))


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
            for param in ("weight", "delay"):
                tensor = getattr(conn, param, None)
                if isinstance(tensor, Tensor):
                    self.watched.append((f"network.connections.{name}.{param}", tensor))
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
            if ok:
                continue
            if not name.endswith(".voltage"):
                raise NonFiniteError(
                    f"{name} became non-finite (NaN or inf) by step {step}; likely cause: a "
                    "learning rate that is too large or missing bounds/clamps on it"
                )
            raise NonFiniteError(
                f"{name} became non-finite (NaN or inf) by step {step}; {self._largest_weight()}"
            )

    def _largest_weight(self) -> str:
        """Which weights drive the blow-up: the connection with the largest |w| (host side)."""
        sizes = [
            (float(t.detach().abs().max()), name)
            for name, t in self.watched
            if name.endswith(".weight") and t.numel() > 0
        ]
        if not sizes:
            return "likely cause: input currents that are too large"
        size, name = max(sizes)
        return (
            f"the largest weight is |{name}| = {size:.3g}; likely cause: a learning rate "
            "that is too large or missing weight bounds, or a connection scale that is "
            "too large"
        )

    def _current(self) -> list[tuple[str, Tensor]]:
        # buffers can be reallocated (set_batch_size), so look voltages up again
        out = []
        for name, tensor in self.watched:
            if name.endswith(".voltage"):
                voltage = self.network.populations[name.split(".")[2]].voltage
                assert isinstance(voltage, Tensor)
                tensor = voltage
            out.append((name, tensor))
        return out


class MetricProbe:
    """Device-side metrics of a network, read to the host in one transfer."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.trained = {
            name: conn
            for name, conn in network.connections.items()
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
            for stat, val in (
                ("mean", t.mean()),
                ("std", t.std(unbiased=False)),
                ("min", t.min()),
                ("max", t.max()),
                ("update", (t - self._last[key].float()).abs().mean()),
            ):
                names.append(f"{key}.{stat}")
                values.append(val)
        self._last = now
        if not values:
            return {}
        return dict(zip(names, torch.stack(values).tolist(), strict=True))


def run_batch(
    network: Network,
    task: Task,
    batch: Batch,
    plan: LoopPlan,
    state: LoopState,
    *,
    train: bool,
    probe: MetricProbe | None,
    callbacks: Callbacks,
    step: StepFn | None = None,
    guard: FiniteGuard | None = None,
) -> Record:
    """Run one batch through the network from rest; returns its spike record."""
    steps, size = batch.spikes.shape[0], batch.spikes.shape[1]
    if size != network.batch_size:
        network.set_batch_size(size)
    step = step or make_step(network)
    network.plan_batch(steps, compiled=isinstance(step, CompiledStep) and train)
    network.reset_state()
    counts = {p: torch.zeros_like(network.spikes(p), dtype=torch.int32) for p in task.watch}
    raster = (
        {
            p: torch.zeros(
                (steps, *network.spikes(p).shape), dtype=torch.bool, device=batch.spikes.device
            )
            for p in task.watch
        }
        if task.record_raster
        else {}
    )
    window = {p: torch.zeros_like(c) for p, c in counts.items()}
    since_log = 0
    # several steps per compiled call in training (eval keeps one graph of one step)
    chunk = step.steps_per_call if isinstance(step, CompiledStep) and train else 1
    t = 0
    while t < steps:
        # k steps in one compiled call when they fit before the batch end and the next log
        k = chunk if t + chunk <= steps else 1
        if k > 1 and plan.log_every > 0 and state.steps % plan.log_every + k > plan.log_every:
            k = 1
        apply = []
        for _ in range(k):
            if train:
                state.train_steps += 1
            apply.append(train and state.train_steps % plan.update_every == 0)
        if k > 1:
            assert isinstance(step, CompiledStep)
            drive = {task.input: batch.spikes[t : t + k]}
            drive.update({name: spikes[t : t + k] for name, spikes in batch.drive.items()})
            step.run_chunk(
                drive, tuple(apply), counts, {p: r[t : t + k] for p, r in raster.items()}
            )
        else:
            drive = {task.input: batch.spikes[t]}
            for name, spikes in batch.drive.items():
                drive[name] = spikes[t]
            step(drive, apply[0])
            for p in task.watch:
                spk = network.spikes(p)
                counts[p].add_(spk)
                if raster:
                    raster[p][t].copy_(spk)
        t += k
        state.steps += k
        since_log += k
        if guard is not None and plan.log_every > 0 and state.steps % plan.log_every == 0:
            guard.check(state.steps)
        if probe is not None and plan.log_every > 0 and state.steps % plan.log_every == 0:
            window_counts = {p: counts[p] - window[p] for p in counts}
            callbacks.on_metrics(state, probe.read(window_counts, since_log))
            window = {p: c.clone() for p, c in counts.items()}
            since_log = 0
    return Record(counts, raster)


def run_loop(
    network: Network,
    task: Task,
    plan: LoopPlan,
    *,
    callbacks: Callbacks | None = None,
    state: LoopState | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> LoopState:
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
            for index, batch in enumerate(
                task.batches("train", state.epoch, state.batch), start=state.batch
            ):
                record = run_batch(
                    network,
                    task,
                    batch,
                    plan,
                    state,
                    train=True,
                    probe=probe,
                    callbacks=callbacks,
                    step=step,
                    guard=guard,
                )
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
                    record = run_batch(
                        network,
                        task,
                        batch,
                        plan,
                        state,
                        train=False,
                        probe=None,
                        callbacks=callbacks,
                        step=step,
                    )
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
