"""Every job of a run or sweep checked before Hydra makes a folder or starts a launcher.

``stdp-run ARGS`` reads Hydra's flags from the argv, composes each job the sweep would run (the
same expansion as ``stdp-run validate``) and checks it with
:func:`runner.config.validate.validate_config`, the check the run itself makes, plus the device
where the jobs run on this machine. A config error then prints its lines once and exits 2 with
nothing created: no run folder, no sweep folder, no job started.

Invocations that only print (``--cfg``, ``--info``, ``-h``, ``-sc``) or that read configs this
module does not compose (``-cd``, ``-cp``, ``-cn``, ``--experimental-rerun``) are left to Hydra;
the run's own check still applies to them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Jobs checked before a sweep starts; a larger sweep is checked job by job as it runs.
RUN_LIMIT = 4096
#: Flags after which Hydra only prints, or reads configs from elsewhere: no pre-check.
_SKIP = ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")
_ELSEWHERE = ("config_path", "config_name", "config_dir")


@dataclass
class JobFailure:
    """A job that would fail: its sweep overrides (empty for a single run) and the error."""

    label: str
    error: BaseException


@dataclass
class Precheck:
    """What :func:`precheck` found: failures, jobs checked, and notes (sampled intervals)."""

    failures: list[JobFailure] = field(default_factory=list)
    jobs: int = 0
    multirun: bool = False
    notes: list[str] = field(default_factory=list)


def hydra_args(argv: Sequence[str]) -> argparse.Namespace | str | None:
    """Hydra's own parse of ``argv``: the namespace, argparse's one-line complaint, or None
    where parsing would exit (``--version``)."""
    from hydra._internal.utils import get_args_parser

    if "--version" in argv:
        return None
    parser = get_args_parser()

    def error(message: str) -> Any:
        raise ValueError(message)

    parser.error = error  # type: ignore[method-assign]
    try:
        return parser.parse_args(list(argv))
    except ValueError as exc:
        return str(exc)
    except SystemExit:
        return None


def _check_device(cfg: Any) -> None:
    """The device must exist here unless the jobs run elsewhere (SLURM)."""
    from runner.app import resolve_device

    launcher = str(cfg.hydra.launcher.get("_target_", "")) if "hydra" in cfg else ""
    if "slurm" not in launcher.lower():
        resolve_device(str(cfg.device.name))


def check_config(cfg: Any) -> None:
    """Check one composed job (with its hydra node); raises its user error."""
    from runner.config.validate import validate_config

    validate_config(cfg)
    _check_device(cfg)


def check_job(case: Sequence[str]) -> None:
    """Compose and check one job; raises its user error."""
    from runner.config.compose import compose

    check_config(compose(case, with_hydra=True))


def _multirun_mode(cfg: Any) -> bool:
    """True when the composed config itself asks for a multirun (a ``sweep=`` preset)."""
    from hydra.types import RunMode

    mode = cfg.hydra.mode
    return bool(mode == RunMode.MULTIRUN or str(mode) == "MULTIRUN")


def _sweeper_samples(overrides: Sequence[str], job: Sequence[str]) -> None:
    """An ``interval`` needs a sweeper that samples: Hydra's basic one only enumerates."""
    from runner.config.compose import compose
    from runner.config.errors import ConfigError

    target = str(compose(job, with_hydra=True).hydra.sweeper.get("_target_", ""))
    if target.endswith("BasicSweeper"):
        keys = [o.split("=", 1)[0] for o in overrides if "interval(" in o]
        raise ConfigError(
            f"{', '.join(keys) or 'a sweep'}: Hydra's basic sweeper cannot sample an interval; "
            "list the values (a,b,c), use range(start,stop,step), or a sampling sweeper "
            "(e.g. hydra/sweeper=optuna from hydra-optuna-sweeper)"
        )


def precheck(argv: Sequence[str]) -> Precheck | None:
    """Check every job ``stdp-run ARGV`` would run; None when Hydra should handle it alone.

    Raises:
        a user error (override syntax, an over-long sweep) that concerns every job at once.
    """
    from runner.config.compose import TooManyJobs, compose, expand_cases
    from runner.config.errors import is_user_error

    args = hydra_args(argv)
    if not isinstance(args, argparse.Namespace) or any(
        getattr(args, k, None) for k in (*_SKIP, *_ELSEWHERE)
    ):
        return None
    overrides = list(args.overrides or [])
    result = Precheck(multirun=bool(args.multirun))
    if not result.multirun:  # one job, unless a sweep preset asks for a multirun
        result.jobs = 1
        try:
            cfg = compose(overrides, with_hydra=True)
            result.multirun = _multirun_mode(cfg)
            if not result.multirun:
                check_config(cfg)
                return result
        except Exception as exc:  # e.g. a sweep without -m: the single job's error
            if not is_user_error(exc):
                raise
            result.failures.append(JobFailure("", exc))
            return result
    composed: dict[tuple[str, ...], Any] = {}
    try:
        cases = expand_cases(overrides, notes=result.notes, limit=RUN_LIMIT, composed=composed)
    except TooManyJobs:  # each job is still checked by the run itself
        return None
    if result.notes and cases:
        _sweeper_samples(overrides, cases[0])
    result.jobs = len(cases)
    for case in cases:
        label = " ".join(x for x in case if x not in overrides)
        try:
            job_cfg = composed.get(tuple(case))  # composed once already while expanding
            if job_cfg is not None:
                check_config(job_cfg)
            else:
                check_job(case)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            result.failures.append(JobFailure(label, exc))
    return result


def failure_lines(result: Precheck) -> list[str]:
    """One line per distinct problem; a problem of only some jobs of a sweep names the first."""
    from runner.config.errors import describe_error

    by_line: dict[str, list[str]] = {}
    for failure in result.failures:
        for line in describe_error(failure.error).splitlines():
            by_line.setdefault(line, []).append(failure.label)
    out: list[str] = []
    for line, labels in by_line.items():
        if not result.multirun or len(labels) == result.jobs or not labels[0]:
            out.append(line)
            continue
        more = f" and {len(labels) - 1} more job(s)" if len(labels) > 1 else ""
        out.append(f"[{labels[0]}{more}] {line}")
    if result.multirun and result.failures:
        bad = len(result.failures)
        out[-1] += f" ({bad} of {result.jobs} jobs invalid; nothing was run)"
    return out
