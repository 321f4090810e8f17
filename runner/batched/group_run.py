"""Run one group of jobs as one simulation and write every job's run folder.

Each job is set up and built exactly as a single run (:func:`runner.app.setup_runtime`,
:func:`runner.build.build_experiment`: its own seed, data order, generators, readout), the jobs'
networks are stacked into one (:mod:`runner.core.replicas`), the loop runs once, the stacked
parameters are copied back into the jobs' own networks, and each job's folder is written by the
code a single run uses (:func:`runner.app.record_outputs`, :func:`runner.app.finish_run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.app import (
    RunCallbacks,
    Runtime,
    StopRequest,
    finish_run,
    learned_delays,
    record_outputs,
    setup_runtime,
)
from runner.batched.callbacks import GroupCallbacks, job_state
from runner.batched.group_task import GroupTask
from runner.batched.watch import ReplicaGuard, ReplicaProbe
from runner.checkpoint import save_checkpoint
from runner.config.errors import Interrupted, describe_error, is_user_error
from runner.config.validate import validate_config
from runner.core.replicas import ReplicaMismatch, stack_networks, write_back
from runner.loop import LoopState, NonFiniteError
from runner.progress import Progress

log = logging.getLogger("runner.batched")


@dataclass
class Member:
    """One job of a group: its config, folder and how to make it current, then its outcome."""

    cfg: DictConfig  # the job's config without the hydra node
    run_dir: Path
    active: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    runtime: Runtime | None = None
    experiment: Any = None  # runner.build.Experiment once built
    start_delays: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] | None = None
    error: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        """Mark the job failed: its log line and FAILED marker, as a single run writes them."""
        from runner.record import write_failed

        self.error = exc
        user = is_user_error(exc)
        if isinstance(exc, Interrupted):
            message = exc.message
        elif isinstance(exc, NonFiniteError):
            message = str(exc)
        else:
            message = describe_error(exc) if user else f"{type(exc).__name__}: {exc}"
        with self.active():
            log.error("run failed: %s", message)
            with contextlib.suppress(OSError):
                write_failed(self.run_dir, message)


def build_member(member: Member, device: Any = None) -> None:
    """Set up and build the job as a single run would (on ``device`` when given)."""
    import torch

    from runner.build import build_experiment

    with member.active():
        config = validate_config(member.cfg)
        runtime = setup_runtime(config, member.run_dir)
        if device is not None and runtime.device != device:  # one device for the whole group
            runtime.device = device
            runtime.generator = torch.Generator(device=device).manual_seed(config.seed)
        member.runtime = runtime
        member.experiment = build_experiment(member.cfg, device=runtime.device, dtype=runtime.dtype)
        member.start_delays = learned_delays(member.experiment.network)


def run_group(
    members: Sequence[Member],
    *,
    label: str,
    together: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> None:
    """Run ``members`` as one simulation; each ends with ``metrics`` or ``error`` set and its
    folder written (summary.json, or FAILED with the one-line error). ``together`` is entered
    while the group simulates (the launcher routes the log lines to every job's log)."""
    device = None
    for member in members:
        if member.experiment is not None:  # built already (a group run one job at a time)
            continue
        try:
            build_member(member, device)
            device = device or member.runtime.device  # type: ignore[union-attr]
        except Exception as exc:
            member.fail(exc)
    built = [m for m in members if m.error is None]
    if not built:
        return
    try:  # a group of one runs its own network: exactly the single-run path
        nets = [m.experiment.network for m in built]
        stacked = nets[0] if len(nets) == 1 else stack_networks(nets)
    except ReplicaMismatch as exc:
        with together():  # one line, in every job's log
            log.warning("%s: its %d jobs run one at a time: %s", label, len(built), exc)
        for i, member in enumerate(built):
            run_group([member], label=f"{label}, job {i + 1}/{len(built)}", together=member.active)
        return
    try:
        with together():
            _simulate(stacked, built, label=label)
    except Exception as exc:
        for member in built:
            if member.error is None and member.metrics is None:
                member.fail(exc)


def _simulate(stacked: Any, members: Sequence[Member], *, label: str) -> None:
    from runner.build import chunk_steps, compile_choice, step_key
    from runner.loop import run_loop
    from runner.spec_config import experiment_spec

    first = members[0]
    assert first.runtime is not None
    config, count = first.runtime.config, len(members)
    networks = [m.experiment.network for m in members]

    def sync() -> None:
        if stacked is not networks[0]:
            write_back(stacked, networks)

    guard = ReplicaGuard(stacked)
    task = GroupTask([m.experiment.task for m in members], sync=sync, failed=guard.failed)
    plan = first.experiment.plan
    if count > 1:  # compile where it pays for the whole group
        spec = experiment_spec(config)
        steps = chunk_steps(spec.plan, stacked, task)
        specs = [experiment_spec(m.runtime.config) for m in members if m.runtime is not None]
        key = step_key(
            specs, steps_per_call=steps, dtype=first.runtime.dtype, device=first.runtime.device
        )
        choice = compile_choice(spec, stacked, task, key)
        alone = plan.compile
        plan = dataclasses.replace(
            plan,
            compile=choice.compile,
            steps_per_call=steps if choice.compile else None,
            step_key=key if choice.compile else None,
        )
        log.info("%s: %s", label, choice.reason)
        note = mode_mismatch(alone=alone, together=choice.compile)
        if note:
            log.info("%s: %s", label, note)
    progress = Progress(
        config.run.progress.value,
        epochs=config.run.epochs,
        batches=task.n_batches("train"),
        steps_per_batch=config.run.steps_per_sample,
        metric_keys=config.logger.metrics,
        label=label,
    )
    quiet = Progress("off", epochs=1, batches=0, steps_per_batch=1)
    jobs = [
        RunCallbacks(
            m.runtime,
            m.experiment.network,
            m.experiment.task,
            quiet,
            checkpoint_every=m.runtime.config.run.checkpoint_every,
        )  # fmt: skip
        for m in members
        if m.runtime is not None
    ]
    callbacks = GroupCallbacks(jobs, progress, guard.failed, sync)
    log.info("%s: %d replica(s) in one simulation", label, count)
    with progress, StopRequest() as stop:
        progress.start_epoch(0)
        state = run_loop(
            stacked, task, plan, callbacks=callbacks, probe=ReplicaProbe(stacked), guard=guard,
            should_stop=lambda: stop.requested() or len(guard.failed) == count,
        )  # fmt: skip
    sync()
    for r, member in enumerate(members):
        if r in guard.failed:
            member.fail(NonFiniteError(guard.failed[r]))
        elif stop.signum is not None:
            _interrupted(member, job_state(state, r, count), stop.signum)
        else:
            _record(member, job_state(state, r, count))


def mode_mismatch(*, alone: bool, together: bool) -> str | None:
    """The line logged when ``run.compile=auto`` compiles a group but would run each job alone
    eagerly (or the reverse): compiled and eager steps round differently, so the jobs then
    equal their separate runs to rounding only, not bit for bit."""
    if alone == together:
        return None
    mode, other = ("compiled", "eager") if together else ("eager", "compiled")
    return (
        f"the group runs {mode} where each job alone would run {other}: weights agree with "
        f"separate runs to rounding, not bit for bit (run.compile=true or false makes them equal)"
    )


def _interrupted(member: Member, state: LoopState, signum: int) -> None:
    """Save the job's checkpoint (it resumes alone: ``stdp-run resume RUN_DIR``) and fail it."""
    assert member.runtime is not None
    state.wall_s = member.runtime.wall_s()
    path = save_checkpoint(member.run_dir, member.experiment.network, member.experiment.task, state)
    member.fail(
        Interrupted(
            f"interrupted by {signal.Signals(signum).name} at epoch {state.epoch + 1}, batch "
            f"{state.batch}; checkpoint {path.name} saved; continue with: stdp-run resume "
            f"{member.run_dir}",
            code=128 + signum,
        )
    )


def _record(member: Member, state: LoopState) -> None:
    """Write the job's folder as a single run does (weights, plots, summary.json last)."""
    from runner.app import _task_overrides

    runtime = member.runtime
    assert runtime is not None
    try:
        with member.active():
            metrics = record_outputs(
                runtime, member.experiment.network, member.experiment.task, state,
                member.start_delays,
            )  # fmt: skip
            finish_run(runtime, metrics, {"overrides": _task_overrides()})
        member.metrics = metrics
    except Exception as exc:
        runtime.recorder.close()
        member.fail(exc)
