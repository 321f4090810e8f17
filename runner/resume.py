"""``stdp-run resume``: continue an interrupted run in its own folder."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.checkpoint import CheckpointError, latest_checkpoint
from runner.config.errors import ConfigError, UserAbort
from runner.config.schema import StdpRunConfig
from runner.failures import failure
from runner.record import FAILED, SUMMARY, write_failed
from runner.run_folder import _attach_file_log


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
    from runner.app import run_experiment  # the run's own entry (runner.app imports this module)

    try:
        return run_experiment(cfg, run_dir, resume_from=checkpoint)
    except BaseException as exc:
        f = failure(exc, run_dir=run_dir)
        if f.kind in ("abort", "run"):
            write_failed(run_dir, f.message)
        if f.kind == "run":
            raise UserAbort(f.message, code=f.code) from exc
        raise
