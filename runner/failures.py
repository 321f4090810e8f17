"""The one error boundary: an exception -> a one-line message, an exit code and its kind.

The Hydra task (:func:`runner.app.task`), the Typer commands (:func:`runner.cli.user_errors`)
and ``stdp-run resume`` all ask :func:`failure` what an exception means and only decide what to
do with the answer (print it, mark the run folder ``FAILED``, give a search its worst value):

=========  ============================================================  ====
kind       what                                                           code
=========  ============================================================  ====
abort      :class:`~runner.config.errors.UserAbort`, ``Interrupted``: one line its own
config     config, override, registry, device, or data absent here        2
io         the run folder cannot be written (permissions, full disk)      1
run        the run's own failure: non-finite values, a bad checkpoint     1
interrupt  Ctrl-C outside the loop's own handler                          130
bug        anything else: it keeps its traceback                          1
=========  ============================================================  ====

Hydra 1.3 (with ``HYDRA_FULL_ERROR=1``, which the CLI sets) lets every exception through
``run_and_report`` but prints ``Error executing job with overrides: ...`` before it re-raises a
failed job's exception (``JobReturn.return_value``, read by ``Hydra.run`` and by the sweepers).
For a sweep that line says which job failed; for a single run it only repeats the error, so the
task hands a single run's :class:`UserAbort` to the CLI (:func:`hand_over`) instead of raising
it into Hydra, and the CLI raises it once Hydra has returned.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runner.config.errors import (
    ConfigError,
    Interrupted,
    UserAbort,
    describe_error,
    is_user_error,
)

Kind = Literal["abort", "config", "io", "run", "interrupt", "bug"]

#: Kinds that are the user's to fix or read: printed as one ``error:`` line, no traceback.
ONE_LINE: tuple[Kind, ...] = ("abort", "config", "io", "run")


@dataclass(frozen=True)
class Failure:
    """What an exception means to the user."""

    message: str
    code: int
    kind: Kind


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class of ``module`` if that module is loaded (else nothing can raise it,
    and the CLI's light commands need not import torch to know)."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def _is(exc: BaseException, module: str, *names: str) -> bool:
    return any(
        (cls := _loaded(module, name)) is not None and isinstance(exc, cls) for name in names
    )


def data_error(exc: BaseException) -> ConfigError | None:
    """A data set that is absent (files, optional package) as the config error it is."""
    if _is(exc, "runner.core.datasets", "DatasetNotFoundError"):
        return ConfigError(f"stimulus.dataset.root: {exc}")
    if _is(exc, "runner.core.datasets", "MissingDependencyError"):
        return ConfigError(f"stimulus.dataset.source: {exc}")
    return None


def cannot_write(exc: OSError, run_dir: Path | None = None) -> str:
    """The one line for a folder or file that cannot be written."""
    target = exc.filename or run_dir
    where = f" {target}" if target else ""
    return (
        f"cannot write{where}: {exc.strerror or exc} (check the folder, its permissions and "
        "the free space; hydra.run.dir=... picks another run folder)"
    )


def failure(exc: BaseException, *, run_dir: Path | None = None) -> Failure:
    """What ``exc`` means: its message, exit code and kind (the table above)."""
    if isinstance(exc, UserAbort | Interrupted):
        return Failure(exc.message, exc.code, "abort")
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", 130, "interrupt")
    data = data_error(exc)
    if data is not None:
        return Failure(describe_error(data), 2, "config")
    if is_user_error(exc):
        return Failure(describe_error(exc), 2, "config")
    if isinstance(exc, OSError):
        return Failure(cannot_write(exc, run_dir), 1, "io")
    if _is(exc, "runner.loop", "NonFiniteError") or _is(
        exc, "runner.checkpoint", "CheckpointError"
    ):
        return Failure(str(exc), 1, "run")
    return Failure(f"{type(exc).__name__}: {exc}", 1, "bug")


_listeners: list[list[UserAbort]] = []


@contextmanager
def handed_over() -> Iterator[list[UserAbort]]:
    """While open, :func:`hand_over` puts a single run's failure in the list yielded (the CLI
    opens it around the ``@hydra.main`` call, then raises what it holds)."""
    slot: list[UserAbort] = []
    _listeners.append(slot)
    try:
        yield slot
    finally:
        _listeners.remove(slot)


def hand_over(abort: UserAbort) -> None:
    """Give ``abort`` to the CLI that is waiting for it; raise it where nobody waits."""
    if not _listeners:
        raise abort
    _listeners[-1].append(abort)
