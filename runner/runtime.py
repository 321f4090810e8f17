"""What a run sets up before building: device, dtype, seeds, recorder, progress mode; and what
it asks the running Hydra job (output folder, job number, multirun or search).
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from runner.config.errors import DeviceError
from runner.config.schema import StdpRunConfig
from runner.objective import BASIC_SWEEPER
from runner.progress import parallel_launcher, resolve_mode
from runner.record import RunRecorder

log = logging.getLogger("runner")


@dataclass
class Runtime:
    """What the run set up before building: typed config, device, dtype, RNG, recorder."""

    config: StdpRunConfig
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    seed: int
    generator: Any  # torch.Generator on ``device``
    recorder: RunRecorder
    progress: str  # resolved run.progress: rich|plain|off
    run_dir: Path
    started: float = field(default_factory=time.perf_counter)
    prior_wall_s: float = 0.0  # wall time of the earlier processes of a resumed run
    extras: dict[str, Any] = field(default_factory=dict)  # the task's summary entries

    def wall_s(self) -> float:
        """Wall time of the whole run so far, earlier processes of a resumed run included."""
        return self.prior_wall_s + time.perf_counter() - self.started


def _hydra_select(key: str, default: Any = None) -> Any:
    """A value of the running job's hydra config (``default`` outside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return default
    return OmegaConf.select(cast(DictConfig, HydraConfig.get()), key, default=default)


def _job_num() -> int | None:
    num = _hydra_select("job.num")
    return num if isinstance(num, int) else None


def resolve_device(name: str, *, job_num: int | None = None) -> Any:
    """``auto|cpu|cuda|cuda:N`` -> ``torch.device``; CUDA where there is none is a DeviceError.

    ``auto`` falls back to the CPU (and logs it). Under a parallel launcher, ``cuda``/``auto``
    without an index spread jobs over the visible GPUs by job number.
    """
    import torch

    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto" and not available:
        log.info("device auto: CUDA is not available, using the CPU")
        return torch.device("cpu")
    if not available:
        why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise DeviceError(f"device.name: {name!r} requested but CUDA is not available ({why}); "
                          "use device=cpu or device=auto")  # fmt: skip
    count = torch.cuda.device_count()
    if ":" in name:
        index = int(name.split(":", 1)[1])
        if index >= count:
            raise DeviceError(f"device.name: {name!r} but only {count} GPU(s) are visible")
        return torch.device("cuda", index)
    index = (job_num or 0) % count if parallel_launcher() else torch.cuda.current_device()
    return torch.device("cuda", index)


def setup_runtime(config: StdpRunConfig, run_dir: Path) -> Runtime:
    """Device, dtype, seeds (torch, numpy, random), generator, recorder, progress mode."""
    import numpy as np
    import torch

    logging.getLogger().setLevel(config.logger.level.value)
    device = resolve_device(config.device.name, job_num=_job_num())
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype.value]
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    if config.device.threads is not None:
        torch.set_num_threads(config.device.threads)
    elif parallel_launcher():  # share the cores between the parallel jobs
        n_jobs = _hydra_select("launcher.n_jobs")
        if isinstance(n_jobs, int) and n_jobs > 0:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_jobs))
    recorder = RunRecorder(
        run_dir,
        save_weights=config.logger.save_weights,
        plots=config.logger.plots,
        backends=config.logger.backends,
    )
    progress = resolve_mode(config.run.progress.value)
    log.info(
        "run folder %s | device %s | %s | seed %d", run_dir, device, config.dtype.value, config.seed
    )
    return Runtime(config, device, dtype, config.seed, generator, recorder, progress, run_dir)


def _output_dir() -> Path:
    out = _hydra_select("runtime.output_dir")
    if out:
        return Path(str(out))
    raise ValueError("no run folder: pass run_dir (outside a Hydra job there is no output dir)")


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _task_overrides() -> list[str]:
    return [str(x) for x in _hydra_select("overrides.task") or []]


def searching() -> bool:
    """True in a multirun whose sweeper optimises the returned objective (not the basic grid)."""
    target = _hydra_select("sweeper._target_", BASIC_SWEEPER)
    return _multirun() and str(target) != BASIC_SWEEPER


def finish_run(runtime: Runtime, metrics: dict[str, float], info: dict[str, Any]) -> None:
    """Learning curves, the backends' final rows, then ``summary.json`` (last) and a log line."""
    config, wall = runtime.config, runtime.wall_s()
    runtime.recorder.finish(
        metrics,
        name=config.name,
        seed=config.seed,
        device=str(runtime.device),
        dtype=config.dtype.value,
        wall_s=round(wall, 3),
        **info,
        **runtime.extras,
    )
    log.info("done in %.1f s: %s", wall, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
