"""``hydra/launcher=batched``: a sweep's jobs as replicas of one simulation.

Jobs whose configs differ only in values that may vary per replica (the seed, kernel kwargs,
bounds, neuron parameters, normalisation targets, input rates, initial ranges) run together,
up to ``hydra.launcher.max_replicas`` per group, as many as fit in ``memory_fraction`` of
the free memory and, on the CPU, as many as keep a step's weights within ``cpu_group_mb``;
``n_jobs`` groups run at a time. Each job's folder is written as if it had run alone. The work
is done by :mod:`runner.batched`; this module only registers the plugin (Hydra imports it at
start-up, so it imports nothing heavy).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.stdp_run_batched.batched_launcher.BatchedLauncher"
    max_replicas: int = 16  # jobs per simulation at most
    memory_fraction: float = 0.5  # of the free host (or GPU) memory a group may fill
    cpu_group_mb: float = 3.0  # CPU: MB of weights and updates a stacked step may touch (0: no cap)
    n_jobs: int = 1  # groups run side by side, each in a spawned worker process


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="stdp_run"
)


class BatchedLauncher(Launcher):
    """Runs a sweep's jobs in groups, each group as one stacked simulation."""

    def __init__(
        self,
        max_replicas: int = 16,
        memory_fraction: float = 0.5,
        cpu_group_mb: float = 3.0,
        n_jobs: int = 1,
    ) -> None:
        self.max_replicas = int(max_replicas)
        self.memory_fraction = float(memory_fraction)
        self.cpu_group_mb = float(cpu_group_mb)
        self.n_jobs = int(n_jobs)
        self.config: Any = None
        self.hydra_context: Any = None
        self.task_function: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from runner.batched.launch import launch

        return launch(
            context=self.hydra_context,
            task_function=self.task_function,
            config=self.config,
            job_overrides=job_overrides,
            initial_job_idx=initial_job_idx,
            max_replicas=self.max_replicas,
            memory_fraction=self.memory_fraction,
            cpu_group_mb=self.cpu_group_mb,
            n_jobs=self.n_jobs,
        )
