"""One batch of the simulation loop (:mod:`runner.loop`): from rest, step by step (or several
steps per compiled call), counting spikes on the device and reading metrics every
``log_every`` steps."""

from __future__ import annotations

import torch
from torch import Tensor

from runner.compiled_step import CompiledStep
from runner.core.network import Network
from runner.guards import FiniteGuard, MetricProbe
from runner.loop_types import Batch, Callbacks, LoopPlan, LoopState, Record, StepFn, Task


def eager_step(network: Network) -> StepFn:
    """One network step plus (when ``apply``) the application of the accumulated updates."""

    def step(drive: dict[str, Tensor], apply: bool) -> None:
        network.step(drive)
        if apply:
            network.apply_updates()

    return step


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
    step = step or eager_step(network)
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
