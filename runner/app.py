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
import signal
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from runner.callbacks import (
    RunCallbacks,
    StopRequest,
    distribution,
    fixed_connections,
    image_inputs,
    learned_delays,
    parameters,
    record_outputs,
    timing,
)
from runner.checkpoint import checkpoint_steps, load_checkpoint, save_checkpoint
from runner.config import schema as _schema  # noqa: F401  (registers the schema)
from runner.config.errors import Interrupted, UserAbort
from runner.config.schema import ObjectiveConf
from runner.config.validate import validate_config
from runner.failures import failure, hand_over
from runner.loop import LoopState, NonFiniteError
from runner.objective import (
    ObjectiveError,
    check_objective,
    objective_of,
    objective_value,
    worst_trial,
)
from runner.progress import Progress
from runner.record import write_failed
from runner.resume import resume
from runner.run_folder import HYDRA_FILES, _saved_overrides, discard_run_folder
from runner.runtime import (
    Runtime,
    _hydra_select,
    _multirun,
    _output_dir,
    _task_overrides,
    finish_run,
    resolve_device,
    searching,
    setup_runtime,
)

#: names that moved to runner.runtime, runner.callbacks, runner.run_folder and runner.resume
#: stay importable from here
__all__ = [
    "HYDRA_FILES", "RunCallbacks", "Runtime", "StopRequest", "discard_run_folder", "distribution",
    "execute", "finish_run", "fixed_connections", "hydra_entry", "image_inputs", "learned_delays",
    "parameters", "resolve_device", "resume", "run_experiment", "searching", "setup_runtime",
    "task", "timing",
]  # fmt: skip

log = logging.getLogger("runner")


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
    experiment = build_experiment(config, device=runtime.device, dtype=runtime.dtype)
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
        raise Interrupted(
            f"interrupted by {name} at epoch {state.epoch + 1}, batch {state.batch}; "
            f"checkpoint {path.name} saved; continue with: stdp-run resume {run_dir}",
            code=128 + stop.signum,
        )
    logger.debug("final loop state: epoch %d, %d steps", state.epoch, state.steps)
    return record_outputs(runtime, experiment.network, experiment.task, state, start_delays)


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


def task(cfg: DictConfig) -> float:
    """:func:`run_experiment` in the Hydra output dir, logging and marking failures; returns
    the objective (NaN where a plain run lacks its metric).

    A config error of a single run (normally caught by the CLI before Hydra starts) removes the
    folder Hydra made for it; one of a sweep's job leaves ``FAILED`` for the sweep table.
    """
    run_dir = _output_dir()
    search = searching()
    objective = objective_of(cfg)
    try:
        metrics = run_experiment(cfg, run_dir, search=search)
        if objective is None:
            return math.nan
        value = objective_value(metrics, objective, required=search)
    except BaseException as exc:
        return _failed(exc, run_dir, search=search, objective=objective)
    if search:
        log.info("objective %s = %.6g", objective.metric, value)
    return value


def _failed(
    exc: BaseException, run_dir: Path, *, search: bool, objective: ObjectiveConf | None
) -> float:
    """A failed run: log it, mark the folder ``FAILED`` (or remove the folder of a single run
    whose config was wrong), and re-raise; a search gets the worst objective instead for a
    failing trial. What the exception means is :func:`runner.failures.failure`'s."""
    f = failure(exc, run_dir=run_dir)
    if f.kind == "abort":  # interrupted: the checkpoint is saved, the message says how on
        log.warning("%s", f.message)
        write_failed(run_dir, f.message)
        raise exc
    single = not _multirun()
    log_name = f"{_hydra_select('job.name', 'stdp_run')}.log"
    if f.kind == "config" and single and discard_run_folder(run_dir, log_name):
        return _abort_single(UserAbort(f.message), exc)
    log.error("run failed: %s", f.message, exc_info=f.kind == "bug")
    if f.kind == "io":
        with contextlib.suppress(OSError):
            write_failed(run_dir, f.message)
    else:
        write_failed(run_dir, f.message)
    # one bad trial (a sampled value the config rejects, a diverging run) must not end a
    # search; an objective that no trial can report must
    trial = (f.kind in ("config", "bug") and not isinstance(exc, ObjectiveError)) or (
        isinstance(exc, NonFiniteError)
    )
    if search and objective is not None and trial and isinstance(exc, Exception):
        return worst_trial(objective)
    if single and f.kind in ("config", "io", "run"):
        return _abort_single(UserAbort(f.message, code=f.code), exc)
    raise exc


def _abort_single(abort: UserAbort, cause: BaseException) -> float:
    """A single run's one-line failure goes to the CLI, past Hydra (which would print it a
    second time); NaN is what Hydra records for the job."""
    abort.__cause__ = cause
    hand_over(abort)
    return math.nan


@hydra.main(version_base="1.3", config_path="pkg://runner.conf", config_name="config")
def hydra_entry(cfg: DictConfig) -> float:
    """The ``@hydra.main`` task (``stdp-run [overrides]`` routes here); returns the objective."""
    return task(cfg)
