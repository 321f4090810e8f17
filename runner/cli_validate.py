"""``stdp-run validate``: compose and check every case without running (imported only by
that command)."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from runner.cli import fail, user_errors
from runner.config.compose import expand_cases
from runner.config.errors import ConfigError
from runner.config.precheck import check_job
from runner.failures import failure


def validate_cases(overrides: Sequence[str], *, every_experiment: bool, strict: bool) -> None:
    """Check each case of ``overrides`` (every shipped experiment and sweep with
    ``every_experiment``): ``ok``, ``needs data`` (an error with ``strict``) or ``error:``
    lines; exits 2 when any case is invalid."""
    notes: list[str] = []
    with user_errors():
        cases = expand_cases(list(overrides), every_experiment=every_experiment, notes=notes)
    for note in notes:
        typer.echo(f"note: {note}")
    failures = 0
    for case in cases:
        label = " ".join(case) or "(defaults)"
        try:
            check_job(case)
        except Exception as exc:
            f = failure(exc)
            if f.kind != "config":
                raise
            if isinstance(exc, ConfigError) and exc.only_needs_data and not strict:
                for line in exc.needs_data:
                    typer.echo(f"needs data: [{label}] {line}")
                continue
            failures += 1
            for line in f.message.splitlines():
                typer.echo(f"error: [{label}] {line}", err=True)
            continue
        typer.echo(f"ok  {label}")
    if failures:
        fail(f"{failures} of {len(cases)} config(s) invalid")
