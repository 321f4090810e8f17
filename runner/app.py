"""The Hydra task: compose -> validate -> device/dtype/seed -> build -> loop -> records.

``hydra_entry`` is the ``@hydra.main`` function the CLI's default command runs (single runs and
every launcher: it is importable and pickles by reference). It is a thin shell around
:func:`run_experiment`, which tests call directly with a composed config. A failure is logged
(Hydra 1.3 leaves a failed multirun job's log empty otherwise) and marked with a ``FAILED`` file
holding the one-line error, then re-raised so that Hydra and the CLI report it.

The task returns the run's objective (:mod:`runner.objective`), the one float that optimising
sweepers such as Optuna read; in such a search a diverging run returns the worst value instead
of raising, so the search goes on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import hydra
from omegaconf import DictConfig, OmegaConf

from runner.checkpoint import (
    CheckpointError,
    checkpoint_steps,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from runner.config import schema as _schema  # noqa: F401  (registers the schema)
from runner.config.errors import ConfigError, DeviceError, UserAbort, describe_error, is_user_error
from runner.config.schema import ObjectiveConf, StdpRunConfig
from runner.config.validate import validate_config
from runner.loop import Callbacks, LoopState, NonFiniteError
from runner.objective import (
    BASIC_SWEEPER,
    ObjectiveError,
    check_objective,
    objective_value,
    worst,
)
from runner.progress import Progress, parallel_launcher, resolve_mode
from runner.record import FAILED, SUMMARY, RunRecorder, write_failed
from runner.tracking import Snapshot

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


class RunCallbacks(Callbacks):
    """Loop -> run folder: metrics rows, progress, checkpoints of weights and delays."""

    def __init__(
        self,
        runtime: Runtime,
        network: Any,
        task: Any,
        progress: Progress,
        *,
        checkpoint_every: int,
    ) -> None:
        self.runtime, self.network, self.task, self.progress = runtime, network, task, progress
        self.checkpoint_every = checkpoint_every
        self.last: dict[str, float] = {}
        self._steps = 0  # training steps at the previous batch end (for steps/s)
        self._excluded = 0.0  # compile and evaluation seconds at the previous batch end

    def on_metrics(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.last = metrics
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )

    def on_monitor(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )
        self.last = {**self.last, **metrics}
        if "val_accuracy" in metrics:
            log.info(
                "%d samples seen: validation accuracy %.4g", state.samples, metrics["val_accuracy"]
            )

    def on_train_start(self, state: LoopState) -> None:
        # the rate counts from here: building the step and the learning-free phases are not
        # simulation of the training batches
        self.progress.restart_clock()
        self._steps, self._excluded = state.train_steps, state.compile_s + state.eval_s

    def on_batch_end(self, state: LoopState, phase: str, n_batches: int | None) -> None:
        if phase != "train":
            return
        steps = state.train_steps - self._steps
        excluded = state.compile_s + state.eval_s
        self.progress.advance(
            metrics=self.last, steps=steps, exclude_s=excluded - self._excluded
        )  # fmt: skip
        self._steps, self._excluded = state.train_steps, excluded
        if self.checkpoint_every > 0 and state.batch % self.checkpoint_every == 0:
            state.wall_s = self.runtime.wall_s()
            save_checkpoint(self.runtime.run_dir, self.network, self.task, state)
            weights, delays = parameters(self.network)
            tag = f"epoch{state.epoch:03d}_batch{state.batch:06d}"
            self.runtime.recorder.save_parameters(weights, delays, tag=tag)

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )
        log.info(
            "epoch %d: %s", state.epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        )
        tracker = self.runtime.recorder.tracker
        if tracker.wants_parameters:  # the epoch's phases have synced already: one copy each
            weights, delays = parameters(self.network)
            image_shape, inputs = image_inputs(self.runtime.config)
            tracker.log_parameters(Snapshot(state.steps, weights, delays, image_shape, inputs))
        if state.epoch + 1 < self.progress.epochs:
            self.progress.start_epoch(state.epoch + 1)


def parameters(network: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Weights and (learned) delays of every connection, by connection name."""
    weights = {name: conn.weight for name, conn in network.connections.items()}
    delays = {
        name: conn.delay
        for name, conn in network.connections.items()
        if getattr(conn, "delay", None) is not None
    }
    return weights, delays


def fixed_connections(network: Any) -> list[str]:
    """Connections that no learning rule trains (their weights are what the config set)."""
    return [
        name
        for name, conn in network.connections.items()
        if len(getattr(conn, "updaters", {})) == 0
    ]


def learned_delays(network: Any) -> dict[str, Any]:
    """Copies of the delays that a learning rule trains, by connection name."""
    return {
        name: conn.delay.detach().clone()
        for name, conn in network.connections.items()
        if getattr(conn, "delay", None) is not None and "delay" in getattr(conn, "updaters", {})
    }


def distribution(values: Any) -> dict[str, float]:
    """Mean, std and quantiles (min, 10 %, 25 %, median, 75 %, 90 %, max) of a tensor."""
    import torch

    flat = values.detach().double().flatten().cpu()
    points = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=torch.float64)
    names = ("min", "q10", "q25", "median", "q75", "q90", "max")
    out = {"mean": float(flat.mean()), "std": float(flat.std(unbiased=False))}
    out.update(zip(names, (float(q) for q in torch.quantile(flat, points)), strict=True))
    return {k: round(v, 6) for k, v in out.items()}


def timing(state: LoopState) -> dict[str, float]:
    """What the throughput figures are made of, over every process of a resumed run: the
    simulated training steps and samples, their simulation seconds (compilation excluded), the
    learning-free samples and seconds, and the compilation seconds."""
    return {
        "train_steps": state.train_steps,
        "train_samples": state.samples,
        "train_s": round(state.train_s, 3),
        "eval_samples": state.eval_samples,
        "eval_s": round(state.eval_s, 3),
        "compile_s": round(state.compile_s, 3),
    }


def image_inputs(config: StdpRunConfig) -> tuple[tuple[int, int] | None, tuple[str, ...]]:
    """``(H, W)`` of square image inputs and the connections that read them (for plots)."""
    if config.stimulus.dataset is None:
        return None, ()
    inputs = [n for n, p in config.network.populations.items() if p.kind == "input"]
    if len(inputs) != 1:
        return None, ()
    side = math.isqrt(config.network.populations[inputs[0]].size)
    if side * side != config.network.populations[inputs[0]].size:
        return None, ()
    conns = tuple(n for n, c in config.network.connections.items() if c.pre == inputs[0])
    return (side, side), conns


class StopRequest:
    """SIGINT/SIGTERM set a flag that the loop reads after each batch (a second one kills)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        signal.signal(signum, self._saved.get(signum, signal.SIG_DFL))  # a second one stops now
        log.warning(
            "%s received: stopping after this batch (again to stop at once)",
            signal.Signals(signum).name,
        )

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def requested(self) -> bool:
        return self.signum is not None


def execute(
    cfg: DictConfig,
    run_dir: Path,
    logger: logging.Logger,
    runtime: Runtime | None = None,
    *,
    resume_from: Path | None = None,
) -> dict[str, float]:
    """Build the experiment, run the loop, save the final weights; return the final metrics.

    With ``resume_from`` the state is restored from that checkpoint first. SIGINT/SIGTERM stop
    the loop after the current batch and save a checkpoint to resume from. The task's extra
    summary entries (confusion matrices, learning curve) are left in ``runtime.extras``.
    """
    from runner.build import build_experiment
    from runner.loop import run_loop

    if runtime is None:
        runtime = setup_runtime(validate_config(cfg), run_dir)
    config = runtime.config
    experiment = build_experiment(cfg, device=runtime.device, dtype=runtime.dtype)
    start_delays = learned_delays(experiment.network)  # the built values, also when resuming
    progress = Progress(
        runtime.progress,
        epochs=config.run.epochs,
        batches=experiment.task.n_batches("train"),
        steps_per_batch=config.run.steps_per_sample,
        metric_keys=config.logger.metrics,
    )
    callbacks = RunCallbacks(
        runtime,
        experiment.network,
        experiment.task,
        progress,
        checkpoint_every=config.run.checkpoint_every,
    )
    start: LoopState | None = None
    if resume_from is not None:
        start = load_checkpoint(
            resume_from, experiment.network, experiment.task, device=runtime.device
        )
        runtime.prior_wall_s = start.wall_s
        log.info("resuming from %s (epoch %d, batch %d)", resume_from, start.epoch + 1, start.batch)
    with progress, StopRequest() as stop:
        progress.start_epoch(start.epoch if start else 0, batch=start.batch if start else 0)
        state = run_loop(
            experiment.network,
            experiment.task,
            experiment.plan,
            callbacks=callbacks,
            state=start,
            should_stop=stop.requested,
        )
    if stop.signum is not None:
        state.wall_s = runtime.wall_s()
        path = save_checkpoint(run_dir, experiment.network, experiment.task, state)
        name = signal.Signals(stop.signum).name
        raise UserAbort(
            f"interrupted by {name} at epoch {state.epoch + 1}, batch {state.batch}; "
            f"checkpoint {path.name} saved; continue with: stdp-run resume {run_dir}",
            code=128 + stop.signum,
        )
    logger.debug("final loop state: epoch %d, %d steps", state.epoch, state.steps)
    return record_outputs(runtime, experiment.network, experiment.task, state, start_delays)


def record_outputs(
    runtime: Runtime, network: Any, task: Any, state: LoopState, start_delays: dict[str, Any]
) -> dict[str, float]:
    """A finished run's outputs: task figures, summary extras, final weights, delays and their
    plots; returns the final metrics. Shared by a single run and the batched launcher's jobs
    (:mod:`runner.batched`), whose folders must look the same."""
    config = runtime.config
    write_figures = getattr(task, "write_figures", None)
    if config.logger.plots and callable(write_figures):  # task figures, e.g. detection.png
        write_figures(runtime.run_dir / "plots")
    summary = getattr(task, "summary", None)
    runtime.extras = summary() if callable(summary) else {}
    runtime.extras["timing"] = timing(state)
    if start_delays:
        end = learned_delays(network)
        runtime.extras["delays"] = {
            name: {"start": distribution(start_delays[name]), "end": distribution(end[name])}
            for name in start_delays
        }
    weights, delays = parameters(network)
    image_shape, input_conns = image_inputs(config)
    runtime.recorder.save_parameters(
        weights,
        delays,
        image_shape=image_shape,
        input_connections=input_conns,
        initial_delays=start_delays,
        fixed=fixed_connections(network),
    )
    return {k: float(v) for k, v in state.metrics.items()}


def run_experiment(
    cfg: DictConfig,
    run_dir: str | Path | None = None,
    *,
    resume_from: Path | None = None,
    search: bool = False,
) -> dict[str, float]:
    """Validate ``cfg``, set up the run and execute it (from a checkpoint when ``resume_from``);
    write ``summary.json`` last. With ``search`` the objective metric must be one this
    experiment's task reports."""
    config = validate_config(cfg)
    if search:
        problems: list[str] = []
        check_objective(config, problems, searching=True)
        if problems:
            raise ObjectiveError(problems)
    out = Path(run_dir) if run_dir is not None else _output_dir()
    runtime = setup_runtime(config, out)
    # a resumed run keeps the overrides it was started with (Hydra's config, if any, is another
    # job's: resume runs outside Hydra)
    overrides = _saved_overrides(out) if resume_from is not None else _task_overrides()
    info: dict[str, Any] = {"overrides": overrides or _saved_overrides(out)}
    if resume_from is not None:  # rows the interrupted process wrote after the checkpoint
        runtime.recorder.metrics.drop_after(checkpoint_steps(resume_from))
        info["resumed_from"] = resume_from.name
    try:
        metrics = execute(cfg, out, log, runtime, resume_from=resume_from)
    except BaseException:
        runtime.recorder.close()  # flush what the backends have, then report the failure
        raise
    finish_run(runtime, metrics, info)
    return metrics


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


def _saved_overrides(run_dir: Path) -> list[str]:
    """The overrides Hydra recorded in a run folder (what a resumed run was started with)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    saved = OmegaConf.load(path)
    return [str(x) for x in saved] if OmegaConf.is_list(saved) else []


def _objective(cfg: DictConfig) -> ObjectiveConf | None:
    """``cfg.objective`` typed (None where the config cannot give it: validation says why)."""
    try:
        node = OmegaConf.to_object(cfg.objective)
    except Exception:
        return None
    return node if isinstance(node, ObjectiveConf) else None


#: Files Hydra writes into a run folder before the task starts (besides the job's log).
HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")


def discard_run_folder(run_dir: Path, log_name: str = "stdp_run.log") -> bool:
    """Remove the folder Hydra made for a run that failed its config check; True if removed.

    Only when the folder holds nothing but Hydra's files and the log (a folder the user pointed
    ``hydra.run.dir`` at, with other files in it, is left alone and marked FAILED instead).
    """
    known = {run_dir / f for f in (*HYDRA_FILES, log_name)}
    present = [p for p in run_dir.rglob("*") if p.is_file() or p.is_symlink()]
    if any(p not in known for p in present):
        return False
    for path in present:
        path.unlink()
    with contextlib.suppress(OSError):
        (run_dir / ".hydra").rmdir()
    try:
        run_dir.rmdir()
    except OSError:
        return False
    cwd = Path.cwd().resolve()
    parent = run_dir.resolve().parent
    while parent != cwd and cwd in parent.parents:  # the empty date folders above it, too
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
    return True


def _data_error(exc: BaseException) -> ConfigError | None:
    """A data set that is absent (files, optional package) as the config error it is."""
    from runner.core.datasets import DatasetNotFoundError, MissingDependencyError

    if isinstance(exc, DatasetNotFoundError):
        return ConfigError(f"stimulus.dataset.root: {exc}")
    if isinstance(exc, MissingDependencyError):
        return ConfigError(f"stimulus.dataset.source: {exc}")
    return None


def task(cfg: DictConfig) -> float:
    """:func:`run_experiment` in the Hydra output dir, logging and marking failures; returns
    the objective (NaN where a plain run lacks its metric).

    A config error of a single run (normally caught by the CLI before Hydra starts) removes the
    folder Hydra made for it; one of a sweep's job leaves ``FAILED`` for the sweep table.
    """
    run_dir = _output_dir()
    search = searching()
    objective = _objective(cfg)
    try:
        try:
            metrics = run_experiment(cfg, run_dir, search=search)
        except OSError as exc:
            data = _data_error(exc)
            if data is None:
                raise
            raise data from exc
        if objective is None:
            return math.nan
        value = objective_value(metrics, objective, required=search)
        if search:
            log.info("objective %s = %.6g", objective.metric, value)
        return value
    except UserAbort as exc:  # interrupted: the checkpoint is saved, the message says how on
        log.warning("%s", exc.message)
        write_failed(run_dir, exc.message)
        raise
    except OSError as exc:  # cannot write the run folder (permissions, full disk)
        message = (
            f"cannot write {exc.filename or run_dir}: {exc.strerror or exc} (check the "
            "folder, its permissions and the free space; hydra.run.dir=... picks another "
            "run folder)"
        )
        log.error("run failed: %s", message)
        with contextlib.suppress(OSError):
            write_failed(run_dir, message)
        if _multirun():
            raise
        raise UserAbort(message, code=1) from exc
    except (NonFiniteError, CheckpointError) as exc:  # the run's own failure, one line
        log.error("run failed: %s", exc)
        write_failed(run_dir, str(exc))
        if search and objective is not None and isinstance(exc, NonFiniteError):
            return _worst_trial(objective)
        if _multirun():
            raise
        raise UserAbort(str(exc), code=1) from exc
    except BaseException as exc:
        user = is_user_error(exc) or isinstance(exc, KeyboardInterrupt)
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        else:
            message = describe_error(exc) if user else f"{type(exc).__name__}: {exc}"
        config_error = user and not isinstance(exc, KeyboardInterrupt) and not _multirun()
        log_name = f"{_hydra_select('job.name', 'stdp_run')}.log"
        if config_error and discard_run_folder(run_dir, log_name):
            raise UserAbort(message) from exc  # the CLI prints it, once
        log.error("run failed: %s", message, exc_info=not user)
        write_failed(run_dir, message)
        # one bad trial (e.g. a sampled value the config rejects) must not end a search; an
        # objective that no trial can report must
        trial = isinstance(exc, Exception) and not isinstance(exc, ObjectiveError)
        if search and objective is not None and trial:
            return _worst_trial(objective)
        if config_error:
            raise UserAbort(message) from exc
        raise


def _worst_trial(objective: ObjectiveConf) -> float:
    value = worst(objective.direction)
    log.warning("the trial failed: the search gets the worst objective (%s) and goes on", value)
    return value


@hydra.main(version_base="1.3", config_path="pkg://runner.conf", config_name="config")
def hydra_entry(cfg: DictConfig) -> float:
    """The ``@hydra.main`` task (``stdp-run [overrides]`` routes here); returns the objective."""
    return task(cfg)


def resume(run_dir: str | Path) -> dict[str, float]:
    """Continue an interrupted run in its own folder from its latest checkpoint.

    The composed config of the run (``.hydra/config.yaml``) is used as it was; metrics rows that
    the interrupted process wrote after the checkpoint are dropped, so the file reads as one run.
    """
    run_dir = Path(run_dir)
    config_file = run_dir / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no .hydra/config.yaml)")
    if (run_dir / SUMMARY).is_file():
        raise ConfigError(f"{run_dir}: the run already completed ({SUMMARY} exists)")
    try:
        checkpoint = latest_checkpoint(run_dir)
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from None
    cfg = OmegaConf.merge(OmegaConf.structured(StdpRunConfig), OmegaConf.load(config_file))
    assert isinstance(cfg, DictConfig)
    _attach_file_log(run_dir)
    (run_dir / FAILED).unlink(missing_ok=True)
    try:
        return run_experiment(cfg, run_dir, resume_from=checkpoint)
    except UserAbort as exc:
        write_failed(run_dir, exc.message)
        raise
    except (NonFiniteError, CheckpointError) as exc:
        write_failed(run_dir, str(exc))
        raise UserAbort(str(exc), code=1) from exc


def _attach_file_log(run_dir: Path) -> None:
    """Outside Hydra: log to the console and append to the run's log file."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) for h in root.handlers):
        handler = logging.FileHandler(run_dir / "stdp_run.log")
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        )
        root.addHandler(handler)
    if not any(
        type(h) is logging.StreamHandler or h.__class__.__name__ == "RichHandler"
        for h in root.handlers
    ):
        from rich.logging import RichHandler

        root.addHandler(RichHandler(show_path=False))
    root.setLevel(logging.INFO)
