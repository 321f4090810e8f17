"""The simulation loop: epochs x batches x steps on the device.

Within a step the order is fixed (:class:`runner.core.network.Network`): stimulus -> connections
-> neurons -> spike ages -> trainers; then the accumulated updates are applied every
``update_every`` training steps (counted across samples), and the weight hooks run after each
training batch. Per-sample state is reset before every batch. Spike counts are accumulated on the
device; metrics are read back to the host only every ``log_every`` steps and at batch ends.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from runner.activity import ActivityWatch
from runner.compile_policy import MAX_CHUNKED_SYNAPSES, MAX_STEPS_PER_CALL
from runner.core.dense import DenseConnection
from runner.core.network import Network

log = logging.getLogger("runner.loop")


def inductor_cache_dir() -> str:
    """Where torch.compile keeps the compiled step: ``$TORCHINDUCTOR_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/stdp-run/torchinductor`` (``~/.cache/...``), which survives reboots
    (torch's own default is under /tmp). Sets the variable, so torch uses the same folder."""
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "stdp-run", "torchinductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def synchronize(network: Network) -> None:
    """Wait for the network's device (timings of asynchronous CUDA work need it)."""
    param = next(network.parameters(), None)
    if param is not None and param.device.type == "cuda":
        torch.cuda.synchronize(param.device)


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


StepFn = Callable[[dict[str, Tensor], bool], None]


class CompiledStep:
    """A compiled step (``StepFn``) that can also run ``steps_per_call`` steps in one call.

    A compiled call costs ~80 us of fixed overhead (guards, wrappers) on the CPU, as much as the
    arithmetic of a 784 x 100 step, hence the chunks for small steps.
    :meth:`run_chunk` unrolls ``k`` steps (with the spike counting of :func:`run_batch`) into one
    graph, so the fixed cost of a compiled call is paid once per ``k`` steps. Stale trainer
    caches are rebuilt eagerly before each call, so the graphs never branch on them.
    """

    def __init__(self, network: Network, steps_per_call: int) -> None:
        self.network = network
        self.steps_per_call = steps_per_call
        #: seconds spent in calls that compiled a graph (the first call of each specialisation)
        self.compile_s = 0.0
        self._seen: set[tuple[Any, ...]] = set()
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
        self._timed(("one", apply), self._step, self._float(drive), apply)

    def run_chunk(
        self,
        drive: dict[str, Tensor],
        apply: tuple[bool, ...],
        counts: dict[str, Tensor],
        raster: dict[str, Tensor],
    ) -> None:
        """Run ``len(apply)`` steps; ``drive`` and ``raster`` hold ``[k, B, N]`` slices."""
        self.network.refresh_caches()
        self._timed(("many", apply), self._chunk, self._float(drive), apply, counts, raster)

    def _timed(self, key: tuple[Any, ...], fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn``; the first call of each specialisation compiles it and counts as compile
        time (its few simulated steps are negligible next to the compilation)."""
        key = (*key, self.network.batch_size, self.network.training)
        if key in self._seen:
            fn(*args)
            return
        if not self._seen:
            log.info("compiling the step (once per process; cached in %s for the next run)",
                     inductor_cache_dir())  # fmt: skip
        start = time.perf_counter()
        fn(*args)
        synchronize(self.network)
        self.compile_s += time.perf_counter() - start
        self._seen.add(key)


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
    ``steps_per_call`` steps per compiled call (default: ``MAX_STEPS_PER_CALL`` for small
    networks, 1 otherwise; unrolling k steps makes the first compilation about k times longer;
    :func:`runner.compile_policy.steps_per_call` weighs the two for a run).
    """

    def step(drive: dict[str, Tensor], apply: bool) -> None:
        network.step(drive)
        if apply:
            network.apply_updates()

    if not compile:
        return step
    inductor_cache_dir()  # before the first compilation reads it
    # Graphs of earlier networks in this process (multirun jobs with the basic launcher) guard on
    # their own objects and count towards dynamo's recompile limit of the same code: drop them.
    torch._dynamo.reset()
    if steps_per_call is None:
        small = trained_synapses(network) <= MAX_CHUNKED_SYNAPSES
        steps_per_call = MAX_STEPS_PER_CALL if small else 1
    return CompiledStep(network, max(int(steps_per_call), 1))


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

    def check(self, step: int, extra: Sequence[Tensor] = ()) -> list[float]:
        """Raise :class:`NonFiniteError` naming the first non-finite tensor.

        ``extra`` device scalars (e.g. :meth:`runner.activity.ActivityWatch.flags`) travel in
        the same transfer; their values are returned.
        """
        if not self.watched and not extra:
            return []
        finite = [t.isfinite().all().float() for _, t in self._current()]
        values = torch.stack([*finite, *(x.float() for x in extra)]).tolist()
        flags, rest = values[: len(finite)], values[len(finite) :]
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
        return rest

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
    # steps before the first spike (learning-free phases of tasks that read latencies)
    latency = (
        {p: torch.zeros_like(c) for p, c in counts.items()}
        if not train and getattr(task, "record_latency", False)
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
                if latency:
                    latency[p].add_(counts[p] == 0)
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
    return Record(counts, raster, latency)


def samples_per_replica(network: Network, batch: Batch) -> int:
    """Samples ``batch`` shows each replica (a stacked network's batch holds every replica's)."""
    return batch.spikes.shape[1] // network.replicas


class TrainClock:
    """Training simulation time, in segments between the learning-free phases: wall time
    (after the device finished) minus the compilation inside the segment."""

    def __init__(self, network: Network, step: StepFn) -> None:
        self.network, self.step = network, step
        self.compiled = getattr(step, "compile_s", 0.0)
        self.start = time.perf_counter()
        self.segment_compiled = 0.0

    def restart(self) -> None:
        self.start = time.perf_counter()
        self.segment_compiled = 0.0

    def note_compile(self, state: LoopState) -> None:
        """Move the compilation done since the last call into ``state.compile_s`` (so that the
        progress line excludes it while the epoch runs)."""
        total = getattr(self.step, "compile_s", 0.0)
        state.compile_s += total - self.compiled
        self.segment_compiled += total - self.compiled
        self.compiled = total

    def stop(self, state: LoopState) -> None:
        """Add the segment since the last (re)start to ``state.train_s`` and ``compile_s``."""
        synchronize(self.network)
        self.note_compile(state)
        state.train_s += time.perf_counter() - self.start - self.segment_compiled


def run_phases(
    network: Network,
    task: Task,
    phases: tuple[str, ...],
    plan: LoopPlan,
    state: LoopState,
    epoch: int,
    callbacks: Callbacks,
) -> dict[str, float]:
    """Run learning-free phases (labelling, validation, test) eagerly; return their metrics.

    Without learning a step is a few batched matrix products: eager mode at the task's
    (usually large) evaluation batch costs no compilation and wastes little per step.
    """
    was_training = network.training
    network.eval()
    step = make_step(network)
    metrics: dict[str, float] = {}
    start = time.perf_counter()
    for phase in phases:
        for batch in task.batches(phase, epoch):
            record = run_batch(
                network, task, batch, plan, state, train=False, probe=None,
                callbacks=callbacks, step=step,
            )  # fmt: skip
            task.observe(phase, batch, record)
            state.eval_samples += samples_per_replica(network, batch)
        metrics.update(task.end_phase(phase, epoch))
    synchronize(network)
    state.eval_s += time.perf_counter() - start
    network.train(was_training)
    return metrics


def run_loop(
    network: Network,
    task: Task,
    plan: LoopPlan,
    *,
    callbacks: Callbacks | None = None,
    state: LoopState | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    probe: MetricProbe | None = None,
    guard: FiniteGuard | None = None,
) -> LoopState:
    """Train for ``plan.epochs`` epochs (evaluating after each), starting from ``state``.

    ``state`` accumulates honest timings: ``train_s`` is the simulation time of the training
    batches without the compilation (``compile_s``), ``eval_s`` that of the learning-free
    phases (labelling, validation, test and the monitor phases every ``plan.eval_every``).
    ``probe`` and ``guard`` replace the default metrics and non-finite checks (the batched
    launcher's per-replica ones, :mod:`runner.batched.watch`).
    """
    callbacks = callbacks or Callbacks()
    state = state or LoopState()
    probe = probe or MetricProbe(network)
    guard = guard or FiniteGuard(network)
    activity = ActivityWatch(network, tuple(task.watch))
    step = make_step(network, compile=plan.compile, steps_per_call=plan.steps_per_call)
    clock = TrainClock(network, step)
    monitor_phases: tuple[str, ...] = tuple(getattr(task, "monitor_phases", ()))
    if plan.eval_every > 0 and monitor_phases and state.next_monitor <= state.samples:
        state.next_monitor = state.samples + plan.eval_every
    with torch.no_grad():
        while state.epoch < plan.epochs:
            network.train()
            callbacks.on_train_start(state)
            clock.restart()
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
                # the activity flags travel with the guard's transfer: no extra host sync
                values = guard.check(state.steps, activity.flags(record.counts))
                task.observe("train", batch, record)
                state.batch = index + 1
                activity.report(
                    values, steps=batch.spikes.shape[0], epoch=state.epoch, batch=state.batch
                )
                state.samples += samples_per_replica(network, batch)
                if monitor_phases and plan.eval_every > 0 and state.samples >= state.next_monitor:
                    clock.stop(state)
                    metrics = run_phases(
                        network, task, monitor_phases, plan, state, state.epoch, callbacks
                    )
                    callbacks.on_monitor(state, metrics)
                    state.next_monitor = state.samples + plan.eval_every
                    clock.restart()
                clock.note_compile(state)
                callbacks.on_batch_end(state, "train", None)
                if should_stop():
                    clock.stop(state)
                    return state
            clock.stop(state)
            metrics = task.end_phase("train", state.epoch)
            if plan.eval_each_epoch:
                phases = tuple(getattr(task, "eval_phases", ("eval",)))
                metrics.update(
                    run_phases(network, task, phases, plan, state, state.epoch, callbacks)
                )
            metrics.update(state.throughput())
            state.metrics = {**state.metrics, **metrics}
            callbacks.on_epoch_end(state, metrics)
            state.epoch += 1
            state.batch = 0
    return state
