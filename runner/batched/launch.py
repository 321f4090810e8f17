"""The batched launcher's work: group a sweep's jobs, run each group, return each job's result.

Called by the Hydra plugin ``hydra_plugins.stdp_run_batched`` (``hydra/launcher=batched``),
which stays import-light because Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from runner.batched.group_run import Member, run_group
from runner.batched.grouping import group_jobs, memory_capacity, replica_bytes
from runner.batched.jobs import HydraJob, close_job, load_jobs, open_job, shared_logs

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


def capacity(configs: Sequence[dict[str, Any]], max_replicas: int, fraction: float) -> int:
    """Replicas per group: ``max_replicas``, fewer where the memory estimate says so."""
    if not configs:
        return max_replicas
    free = free_memory(str((configs[0].get("device") or {}).get("name", "cpu")))
    if free is None:
        return max_replicas
    per_replica = max(replica_bytes(c) for c in configs)
    fit = memory_capacity(per_replica, free, fraction)
    if fit < max_replicas:
        log.info(
            "batched launcher: at most %d replicas per group (%.0f MB each, %.0f%% of %.0f MB "
            "free)", fit, per_replica / 1e6, 100 * fraction, free / 1e6,
        )  # fmt: skip
    return min(max_replicas, fit)


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
) -> list[JobReturn]:
    """Run the jobs in groups (one simulation each); one :class:`JobReturn` per job, in order."""
    if max_replicas < 1:
        raise ValueError(f"hydra.launcher.max_replicas: must be at least 1, got {max_replicas}")
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs = load_jobs(context, config, job_overrides, initial_job_idx)
    plain = [_plain(job) for job in jobs]
    groups = group_jobs(plain, capacity(plain, max_replicas, memory_fraction))
    log.info("Launching %d jobs as %d group(s) (batched launcher)", len(jobs), len(groups))
    returns: dict[int, JobReturn] = {}
    for number, group in enumerate(groups, start=1):
        label = f"group {number}/{len(groups)}: {len(group.jobs)} job{'s' * (len(group.jobs) > 1)}"
        members_jobs = [jobs[i] for i in group.jobs]
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        log.info("%s: %s", label, ", ".join(f"#{j.num}" for j in members_jobs))
        if group.why:
            log.info("%s runs apart from group 1: %s", label.split(":")[0], group.why)
        for job in members_jobs:
            log.info("\t#%d : %s", job.num, " ".join(filter_overrides(job.overrides)))
        for job in members_jobs:
            open_job(job, context, task_function)
        members = [Member(j.task_cfg, j.run_dir, active=j.active) for j in members_jobs]
        run_group(members, label=label, together=functools.partial(_together, members_jobs))
        for index, job, member in zip(group.jobs, members_jobs, members, strict=True):
            returns[index] = close_job(job, context, outcome(job, member))
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[i] for i in range(len(jobs))]
