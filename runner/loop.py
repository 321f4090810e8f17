"""The simulation loop: epochs x batches x steps on the device.

Within a step the order is fixed (:class:`runner.core.network.Network`): stimulus -> connections
-> neurons -> spike ages -> trainers; then the accumulated updates are applied every
``update_every`` training steps (counted across samples), and the weight hooks run after each
training batch. Per-sample state is reset before every batch. Spike counts are accumulated on the
device; metrics are read back to the host only every ``log_every`` steps and at batch ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from runner.activity import ActivityWatch
from runner.compile_policy import MAX_CHUNKED_SYNAPSES, MAX_STEPS_PER_CALL
from runner.compiled_step import (
    CompiledStep,
    TrainClock,
    inductor_cache_dir,
    synchronize,
    trained_synapses,
)
from runner.core.network import Network
from runner.guards import FiniteGuard, MetricProbe, NonFiniteError
from runner.loop_batch import eager_step, run_batch
from runner.loop_types import (
    Batch,
    Callbacks,
    LoopPlan,
    LoopState,
    Record,
    StepFn,
    Task,
)

#: names that moved to runner.loop_types, runner.loop_batch, runner.compiled_step and
#: runner.guards stay importable from here
__all__ = [
    "Batch", "Callbacks", "CompiledStep", "FiniteGuard", "LoopPlan", "LoopState", "MetricProbe",
    "NonFiniteError", "Record", "StepFn", "Task", "TrainClock", "eager_step", "inductor_cache_dir",
    "make_step", "run_batch", "run_loop", "run_phases", "synchronize", "trained_synapses",
]  # fmt: skip

log = logging.getLogger("runner.loop")


def make_step(
    network: Network,
    *,
    compile: bool = False,
    steps_per_call: int | None = None,
    key: str | None = None,
) -> StepFn:
    """One network step plus (when ``apply``) the application of the accumulated updates.

    With ``compile`` the step is traced once into a single graph (``torch.compile``, inductor),
    which fuses the per-synapse learning arithmetic into a few loops, and :func:`run_batch` runs
    ``steps_per_call`` steps per compiled call (default: ``MAX_STEPS_PER_CALL`` for small
    networks, 1 otherwise; unrolling k steps makes the first compilation about k times longer;
    :func:`runner.compile_policy.steps_per_call` weighs the two for a run). ``key`` names the
    step for ``run.compile=auto`` (:func:`runner.compiled_step.step_cached`).
    """

    if not compile:
        return eager_step(network)
    inductor_cache_dir()  # before the first compilation reads it
    # Graphs of earlier networks in this process (multirun jobs with the basic launcher) guard on
    # their own objects and count towards dynamo's recompile limit of the same code: drop them.
    torch._dynamo.reset()
    if steps_per_call is None:
        small = trained_synapses(network) <= MAX_CHUNKED_SYNAPSES
        steps_per_call = MAX_STEPS_PER_CALL if small else 1
    return CompiledStep(network, max(int(steps_per_call), 1), key=key)


def samples_per_replica(network: Network, batch: Batch) -> int:
    """Samples ``batch`` shows each replica (a stacked network's batch holds every replica's)."""
    return batch.spikes.shape[1] // network.replicas


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
    step = make_step(
        network, compile=plan.compile, steps_per_call=plan.steps_per_call, key=plan.step_key
    )
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
