"""The batched launcher's work: group a sweep's jobs, run each group, return each job's result.

Called by the Hydra plugin ``hydra_plugins.stdp_run_batched`` (``hydra/launcher=batched``),
which stays import-light because Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from runner.batched.group_run import Member, run_group
from runner.batched.grouping import (
    CPU_GROUP_MB,
    Group,
    balanced,
    cache_capacity,
    group_jobs,
    memory_capacity,
    replica_bytes,
    step_bytes,
)
from runner.batched.jobs import HydraJob, close_job, load_jobs, open_job, shared_logs
from runner.callbacks import StopRequest

log = logging.getLogger("runner.batched")


def free_memory(device: str) -> int | None:
    """Bytes free for new tensors on ``device`` (``cuda``: the GPU; else the host's available
    memory), or None when unknown."""
    try:
        if device.startswith("cuda") or device == "auto":
            import torch

            if torch.cuda.is_available():
                index = int(device.split(":", 1)[1]) if ":" in device else None
                return int(torch.cuda.mem_get_info(index)[0])
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, RuntimeError):
        return None
    return None


def capacity(
    configs: Sequence[dict[str, Any]],
    max_replicas: int,
    fraction: float,
    cpu_group_mb: float = CPU_GROUP_MB,
) -> int:
    """Replicas per group: ``max_replicas``, fewer where the memory estimate says so, and on the
    CPU fewer where a larger stack would outgrow the caches (``cpu_group_mb``); groups of a
    capped sweep are made even."""
    if not configs:
        return max_replicas
    device = str((configs[0].get("device") or {}).get("name", "cpu"))
    fit = max_replicas
    free = free_memory(device)
    if free is not None:
        per_replica = max(replica_bytes(c) for c in configs)
        by_memory = memory_capacity(per_replica, free, fraction)
        if by_memory < fit:
            log.info(
                "batched launcher: at most %d replicas per group (%.0f MB each, %.0f%% of %.0f MB "
                "free)", by_memory, per_replica / 1e6, 100 * fraction, free / 1e6,
            )  # fmt: skip
            fit = by_memory
    if _on_cpu(device):
        per_step = max(step_bytes(c, _weight_elements) for c in configs)
        by_cache = cache_capacity(per_step, cpu_group_mb)
        if by_cache < fit:
            log.info(
                "batched launcher: at most %d replicas per group on the CPU (%.2f MB of weights "
                "and updates each, read and written every step; more would outgrow the caches: "
                "hydra.launcher.cpu_group_mb=%g, 0 for no cap)",
                by_cache, per_step / 2**20, cpu_group_mb,
            )  # fmt: skip
            fit = by_cache
    return balanced(fit, len(configs)) if fit < max_replicas else fit


def _on_cpu(device: str) -> bool:
    """Whether jobs on ``device`` (``cpu``, ``cuda[:i]``, ``auto``) run on the CPU."""
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device.startswith("cpu")


def _weight_elements(kind: str, n_in: int, n_out: int) -> int:
    """Weights of a connection of registered ``kind`` (the dense count for an unknown kind)."""
    from runner.registry import CONNECTIONS, RegistryError

    try:
        shape = CONNECTIONS.traits(kind).weight_shape(n_in, n_out)
    except (RegistryError, AttributeError):
        shape = (n_out, n_in)
    return math.prod(shape)


def _plain(job: HydraJob) -> dict[str, Any]:
    with job.active(log_file=False):
        node = OmegaConf.to_container(job.task_cfg, resolve=True, enum_to_str=True)
    assert isinstance(node, dict)
    return {str(k): v for k, v in node.items()}


@contextlib.contextmanager
def _together(jobs: Sequence[HydraJob]) -> Iterator[None]:
    """While a group simulates: the first job's Hydra config, every job's log file."""
    with jobs[0].active(), shared_logs(jobs):
        yield


def outcome(job: HydraJob, member: Member) -> Any:
    """What the job returns to Hydra, as :func:`runner.app.task` would: its objective, the
    worst value for a failed trial of a search, or the exception it failed with."""
    from runner.app import searching
    from runner.loop import NonFiniteError
    from runner.objective import ObjectiveError, objective_of, objective_value, worst_trial

    with job.active(log_file=False):
        search, objective = searching(), objective_of(job.task_cfg)
        if member.error is not None:
            trial = isinstance(member.error, NonFiniteError) or (
                isinstance(member.error, Exception) and not isinstance(member.error, ObjectiveError)
            )
            if search and objective is not None and trial:
                return worst_trial(objective)
            return member.error
        if objective is None or member.metrics is None:
            return math.nan
        try:
            value = objective_value(member.metrics, objective, required=search)
        except ObjectiveError as exc:
            return exc
        if search:
            log.info("objective %s = %.6g", objective.metric, value)
        return value


def launch(
    *,
    context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    max_replicas: int,
    memory_fraction: float,
    cpu_group_mb: float = CPU_GROUP_MB,
    n_jobs: int = 1,
) -> list[JobReturn]:
    """Run the jobs in groups (one simulation each, ``n_jobs`` groups at a time in worker
    processes); one :class:`JobReturn` per job that ran, in order (after an interruption the
    jobs of groups not started have none, as when a single run stops a basic sweep)."""
    if max_replicas < 1:
        raise ValueError(f"hydra.launcher.max_replicas: must be at least 1, got {max_replicas}")
    if n_jobs < 1:
        raise ValueError(f"hydra.launcher.n_jobs: must be at least 1, got {n_jobs}")
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs = load_jobs(context, config, job_overrides, initial_job_idx)
    plain = [_plain(job) for job in jobs]
    # groups side by side share the memory
    fit = capacity(plain, max_replicas, memory_fraction / n_jobs, cpu_group_mb)
    groups = group_jobs(plain, fit)
    workers = min(n_jobs, len(groups))
    log.info(
        "Launching %d jobs as %d group(s) (batched launcher%s)",
        len(jobs), len(groups), f", {workers} at a time" if workers > 1 else "",
    )  # fmt: skip
    labelled = [
        (_label(number, len(groups), group), group, [jobs[i] for i in group.jobs])
        for number, group in enumerate(groups, start=1)
    ]
    if workers > 1:
        done = side_by_side(workers, labelled, context, task_function, config)
    else:
        done = []
        for label, group, members in labelled:
            done.append(run_jobs_together(context, task_function, config, label, group, members))
            if _interrupted(done[-1]):
                break  # as a single run: a stopped job ends the sweep (the others never start)
    returns = dict(pair for group_returns in done for pair in group_returns)
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[i] for i in sorted(returns)]


def _interrupted(returns: Sequence[tuple[int, JobReturn]]) -> bool:
    """Whether a job of the group was stopped by SIGINT/SIGTERM (its checkpoint saved)."""
    from runner.config.errors import Interrupted

    return any(isinstance(ret._return_value, Interrupted) for _, ret in returns)


def side_by_side(
    workers: int,
    labelled: Sequence[tuple[str, Group, list[HydraJob]]],
    context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
) -> list[list[tuple[int, JobReturn]]]:
    """The groups, ``workers`` at a time, each in a worker process (spawned: a fresh
    interpreter, no forked torch state). SIGINT or SIGTERM reaches the running groups (each
    checkpoints its jobs after the batch, as a group run alone does) and starts no new one.
    Returns each finished group's ``(index, return)`` pairs."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    queue = list(labelled)
    done: list[list[tuple[int, JobReturn]]] = []
    function = task_function if _picklable(task_function) else None
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_own_process_group)
    with pool, _ForwardStop() as stop:
        running: set[Future[list[tuple[int, JobReturn]]]] = set()
        while queue or running:
            while queue and len(running) < workers and not stop.signum:
                label, group, members = queue.pop(0)
                task = (context, function, config, label, group, members)
                running.add(pool.submit(_group_in_worker, *task))
            if not running:
                break
            finished, running = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                done.append(future.result())
                if _interrupted(done[-1]):
                    stop.signum = stop.signum or signal.SIGINT  # no new group starts
    return done


def _picklable(obj: Any) -> bool:
    """Whether ``obj`` pickles: Hydra's ``@hydra.main`` wrapper does not, and in a worker it is
    only handed to the callbacks' ``on_job_start`` (the task itself is the group run)."""
    import pickle

    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _own_process_group() -> None:
    """A worker leaves the terminal's process group: Ctrl-C reaches the launcher alone, which
    passes it on once (a second SIGINT to a group run stops it without its checkpoint)."""
    os.setpgrp()


class _ForwardStop(StopRequest):
    """While groups run in workers: SIGINT/SIGTERM are passed on to the workers (which stop
    after their batch and checkpoint; a second one stops them at once) instead of ending the
    launcher."""

    def _handle(self, signum: int, frame: Any) -> None:
        import multiprocessing

        first = self.signum is None
        self.signum = signum
        for child in multiprocessing.active_children():
            if child.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(child.pid, signum)
        if first:
            log.warning(
                "%s received: the running groups stop after their batch and save checkpoints; "
                "no new group starts", signal.Signals(signum).name,
            )  # fmt: skip


def _label(number: int, total: int, group: Group) -> str:
    return f"group {number}/{total}: {len(group.jobs)} job{'s' * (len(group.jobs) > 1)}"


def run_jobs_together(
    context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    label: str,
    group: Group,
    jobs: Sequence[HydraJob],
) -> list[tuple[int, JobReturn]]:
    """One group as one simulation: open its jobs, run them, close them; ``(index, return)``
    of each job, ``index`` its place in the sweep."""
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    log.info("%s: %s", label, ", ".join(f"#{j.num}" for j in jobs))
    if group.why:
        log.info("%s runs apart from group 1: %s", label.split(":")[0], group.why)
    for job in jobs:
        log.info("\t#%d : %s", job.num, " ".join(filter_overrides(job.overrides)))
    for job in jobs:
        open_job(job, context, task_function)
    members = [Member(j.task_cfg, j.run_dir, active=j.active) for j in jobs]
    run_group(members, label=label, together=functools.partial(_together, jobs))
    return [
        (index, close_job(job, context, outcome(job, member)))
        for index, job, member in zip(group.jobs, jobs, members, strict=True)
    ]


def _group_in_worker(
    context: HydraContext,
    task_function: Any,
    config: DictConfig,
    label: str,
    group: Group,
    jobs: Sequence[HydraJob],
) -> list[tuple[int, JobReturn]]:
    """:func:`run_jobs_together` in a worker process. Hydra's singletons are not carried over
    (its resolvers are closures that do not pickle): the jobs' configs are composed already, and
    each job makes its own Hydra config current (:meth:`HydraJob.active`)."""
    import runner.config.schema  # noqa: F401  (the resolvers and schema a job's config reads)

    setup_globals()
    return run_jobs_together(context, task_function, config, label, group, jobs)
