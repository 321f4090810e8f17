"""Hydra's job bookkeeping for jobs that run together (what ``run_job`` does for one job).

Hydra's ``run_job`` runs one task function per job. A group runs many jobs in one simulation,
so its jobs are opened first (folder, ``.hydra/`` files, log file, ``on_job_start``), run
together, and closed one by one (``on_job_end`` with the job's :class:`JobReturn`, which is what
the sweep table callback and the sweeper read). :meth:`HydraJob.active` makes a job's Hydra config
current, so code that reads it (overrides, job number, the log file) sees that job.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write


@dataclass
class HydraJob:
    """One job of a sweep: its number, overrides, full config (with ``hydra``) and folder."""

    num: int
    overrides: list[str]
    config: DictConfig
    run_dir: Path
    task_cfg: DictConfig = field(init=False)

    def __post_init__(self) -> None:
        self.task_cfg = copy.deepcopy(self.config)
        with read_write(self.task_cfg), open_dict(self.task_cfg):
            del self.task_cfg["hydra"]

    @contextlib.contextmanager
    def active(self, *, log_file: bool = True) -> Iterator[HydraJob]:
        """This job's Hydra config is the current one (and, with ``log_file``, its logging)."""
        instance = HydraConfig.instance()
        saved = instance.cfg
        instance.set_config(self.config)
        if log_file:
            configure_log(self.config.hydra.job_logging, self.config.hydra.verbose)
        try:
            yield self
        finally:
            instance.cfg = saved


def load_jobs(
    context: HydraContext, config: DictConfig, overrides: Sequence[Sequence[str]], first: int
) -> list[HydraJob]:
    """The sweep's jobs ``first, first + 1, ...``: composed configs and their run folders."""
    jobs = []
    for offset, job_overrides in enumerate(overrides):
        num = first + offset
        sweep = context.config_loader.load_sweep_config(config, list(job_overrides))
        with open_dict(sweep):
            sweep.hydra.job.id = num
            sweep.hydra.job.num = num
        instance = HydraConfig.instance()
        saved = instance.cfg
        instance.set_config(sweep)  # the folder's interpolations read the job's own values
        try:
            folder = Path(str(sweep.hydra.sweep.dir)) / str(sweep.hydra.sweep.subdir)
            with read_write(sweep.hydra.runtime), open_dict(sweep.hydra.runtime):
                sweep.hydra.runtime.output_dir = os.path.abspath(folder)
        finally:
            instance.cfg = saved
        jobs.append(HydraJob(num, [str(x) for x in job_overrides], sweep, folder.absolute()))
    return jobs


def _save(node: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(node), encoding="utf-8")


def open_job(job: HydraJob, context: HydraContext, task_function: TaskFunction) -> None:
    """Create the job's folder with its ``.hydra/`` files and log, and tell the callbacks."""
    job.run_dir.mkdir(parents=True, exist_ok=True)  # before its log file is opened
    with job.active():
        subdir = job.config.hydra.output_subdir
        if subdir is not None:
            hydra_dir = job.run_dir / str(subdir)
            _save(job.task_cfg, hydra_dir / "config.yaml")
            _save(HydraConfig.instance().cfg, hydra_dir / "hydra.yaml")
            _save(job.config.hydra.overrides.task, hydra_dir / "overrides.yaml")
        context.callbacks.on_job_start(config=job.config, task_function=task_function)


def close_job(job: HydraJob, context: HydraContext, outcome: Any) -> JobReturn:
    """The job's :class:`JobReturn` (``outcome``: its return value, or the exception it failed
    with), handed to the callbacks' ``on_job_end``."""
    with job.active(log_file=False):
        ret = JobReturn(
            overrides=list(job.overrides),
            cfg=job.task_cfg,
            hydra_cfg=copy.deepcopy(cast(DictConfig, HydraConfig.instance().cfg)),
            working_dir=os.getcwd(),
            task_name=str(job.config.hydra.job.name),
        )
        ret.return_value = outcome
        ret.status = JobStatus.FAILED if isinstance(outcome, BaseException) else JobStatus.COMPLETED
        for handler in logging.getLogger().handlers:
            handler.flush()
        context.callbacks.on_job_end(config=job.config, job_return=ret)
    return ret


@contextlib.contextmanager
def shared_logs(jobs: Sequence[HydraJob]) -> Iterator[None]:
    """While a group runs, its log lines go to every job's log file (after the first job's
    logging is configured): each job's log tells the whole story of its simulation."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    formatter = files[0].formatter if files else None
    present = {Path(h.baseFilename) for h in files}
    added: list[logging.FileHandler] = []
    for job in jobs:
        path = job.run_dir / f"{job.config.hydra.job.name}.log"
        if path.absolute() in present:
            continue
        added.append(logging.FileHandler(path))
        added[-1].setFormatter(formatter)
        root.addHandler(added[-1])
    try:
        yield
    finally:
        for added_handler in added:
            root.removeHandler(added_handler)
            added_handler.close()
