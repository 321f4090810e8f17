"""The default command's body: check the argv and every job's config, then hand the argv to
the ``@hydra.main`` task (by swapping ``sys.argv``) with errors printed by the one boundary
(:func:`runner.cli.user_errors`). Imported only when a run starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from runner.cli import fail, user_errors


def run_hydra(args: list[str], *, commands: list[str]) -> None:
    """Run ``stdp-run ARGS``: ``commands`` are the CLI's subcommands (for slip hints)."""
    from hydra.core.global_hydra import GlobalHydra

    from runner.cli_replay import heavy_imports
    from runner.cli_slips import hoist_flags
    from runner.failures import handed_over

    with heavy_imports():
        from runner.app import hydra_entry  # imported lazily: keeps list/show fast

    full_error = os.environ.get("HYDRA_FULL_ERROR")
    _check_before_running(args, commands=commands, full_error=full_error == "1")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's exit(1)
    saved, sys.argv = sys.argv, [sys.argv[0], *hoist_flags(args)]
    GlobalHydra.instance().clear()
    try:
        with (
            user_errors() if full_error != "1" else _aborts_only(),
            _sweep_table_on_failure(),
            handed_over() as aborted,
        ):
            hydra_entry()
            if aborted:  # a single run's failure, handed past Hydra (runner.failures)
                raise aborted[0]
    finally:
        sys.argv = saved
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _check_before_running(argv: list[str], *, commands: list[str], full_error: bool) -> None:
    """CLI slips and every job's config, before Hydra creates a folder (exit 2 on a problem)."""
    from runner.cli_slips import find_slip, hoist_flags
    from runner.config.precheck import failure_lines, hydra_args, precheck

    slip = find_slip(argv, commands)
    if slip is not None:
        fail(slip)
    argv = hoist_flags(argv)
    if isinstance(problem := hydra_args(argv), str):  # argparse's complaint, without its usage
        fail(f"{problem} (stdp-run --help lists the commands, stdp-run -h Hydra's options)")
    if full_error:
        result = precheck(argv)
        if result is not None and result.failures:
            raise result.failures[0].error
        return
    with user_errors():
        result = precheck(argv)
    if result is not None and result.failures:
        fail("\n".join(failure_lines(result)))


@contextmanager
def _sweep_table_on_failure() -> Iterator[None]:
    """A sweep whose job failed still prints its table (Hydra skips ``on_multirun_end``)."""
    from runner.report import print_unfinished_sweep

    try:
        yield
    except BaseException:
        print_unfinished_sweep()
        raise


@contextmanager
def _aborts_only() -> Iterator[None]:
    """With HYDRA_FULL_ERROR=1 exceptions keep their traceback; only the one-line aborts
    without a cause (an interrupted run) are printed."""
    from runner.config.errors import Interrupted, UserAbort

    try:
        yield
    except (UserAbort, Interrupted) as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        fail(exc.message)
