"""The ``stdp-run`` command line: Hydra for runs, Typer for the other verbs.

Any argv whose first token is not a subcommand goes to the implicit ``run`` command, which hands
it to the ``@hydra.main`` task by swapping ``sys.argv``; so overrides, ``-m`` sweeps with any
launcher, ``--cfg job``, ``--info``, ``-cd``, ``-h`` (Hydra's app help) and ``-sc`` completion all
behave as in a plain Hydra app (CLI-CONFIG-GUIDE section 1.3). The subcommands compose configs
with the Compose API:

    stdp-run list [kernels|reductions|bounds|trainers|neurons|connections|stimuli|datasets|
                   experiments|sweeps|GROUP]
    stdp-run show [OVERRIDES...]          the resolved config as YAML
    stdp-run validate [OVERRIDES...] [--all] [--strict]
    stdp-run replay CASE.npz --out OUT.npz
    stdp-run report RUN_OR_SWEEP_DIR [--sort KEY] [--desc] [--csv PATH]
    stdp-run resume RUN_DIR

User errors (config, override, registry, device) print ``error: ...`` lines on stderr and exit 2.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

# Hydra, OmegaConf, the registry and the engine are imported inside the commands that use them:
# `stdp-run --help` and `stdp-run replay` (whose floor is `import torch`) do not pay for them.


class DefaultToRunGroup(TyperGroup):
    """Routes ``stdp-run x=1 -m ...`` to ``stdp-run run x=1 -m ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["run", *args]
        return super().parse_args(ctx, args)  # type: ignore[no-any-return]


app = typer.Typer(
    cls=DefaultToRunGroup,
    add_completion=False,  # Hydra's -sc completion is the one that knows the config groups
    pretty_exceptions_enable=False,
    help="stdp-run: declarative STDP experiments. `stdp-run [OVERRIDES]` runs one "
    "(Hydra: -m for sweeps, --cfg job, --info, -h for the config help).",
)


def console() -> Any:
    """rich's console on a terminal; a wide one when piped (tables then never fold names)."""
    from rich import get_console
    from rich.console import Console

    return get_console() if sys.stdout.isatty() else Console(width=240, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <line>`` for each line of ``message`` on stderr and exit."""
    for line in message.splitlines() or [message]:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Print what :func:`runner.failures.failure` makes of a user's error (config, registry,
    override, an aborted run, a folder that cannot be written) as ``error: ...`` and exit with
    its code; bugs keep their traceback."""
    from runner.config.errors import Interrupted
    from runner.failures import failure

    try:
        yield
    except typer.Exit:
        raise
    except (Exception, Interrupted) as exc:
        f = failure(exc)
        if f.kind in ("abort", "config", "io"):
            fail(f.message, code=f.code)
        raise


@app.command(
    "run",
    add_help_option=False,  # --help goes to Hydra's app help
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(ctx: typer.Context) -> None:
    """Run an experiment (the default command): stdp-run [OVERRIDES] [-m] [Hydra flags]."""
    from runner.cli_run import run_hydra

    run_hydra(ctx.args, commands=[c.name or "" for c in app.registered_commands])


Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides, e.g. seed=1")]


@app.command("list")
def list_cmd(
    what: Annotated[
        str | None,
        typer.Argument(help="a registry (kernels, ...), experiments, sweeps, or a config group"),
    ] = None,
) -> None:
    """List registered components (with their kwargs) or the options of a config group."""
    from runner.config.compose import group_options, list_groups
    from runner.config.listing import REGISTRY_CHOICES, option_lines, registry_table

    out = console()
    with user_errors():
        if what is None:
            for name in REGISTRY_CHOICES:
                names = registry_table(name, names_only=True)
                out.print(f"[bold]{name}[/]: " + ", ".join(names))
            for group, options in list_groups().items():
                out.print(f"[bold]{group}/[/]: " + ", ".join(options))
            return
        if what in REGISTRY_CHOICES:
            out.print(registry_table(what))
            return
        group = {"experiments": "experiment", "sweeps": "sweep"}.get(what, what)
        for line in option_lines(group, group_options(group)):
            typer.echo(line)


@app.command("show")
def show(
    overrides: Overrides = None,
    resolve: Annotated[bool, typer.Option(help="resolve ${...} interpolations")] = True,
    hydra: Annotated[bool, typer.Option("--hydra", help="include the hydra node")] = False,
) -> None:
    """Print the composed config as YAML (nothing is run or checked beyond the schema)."""
    from omegaconf import OmegaConf

    from runner.config.compose import compose

    with user_errors():
        cfg = compose(overrides or [], with_hydra=hydra)
        if resolve and not hydra:
            OmegaConf.resolve(cfg)
        text = OmegaConf.to_yaml(cfg)
    if sys.stdout.isatty():
        from rich import get_console
        from rich.syntax import Syntax

        get_console().print(Syntax(text, "yaml", background_color="default"))
    else:
        typer.echo(text, nl=False)


@app.command("validate")
def validate(
    overrides: Overrides = None,
    all_: Annotated[
        bool, typer.Option("--all", help="check every shipped experiment and sweep")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="data absent on this machine is an error too")
    ] = False,
) -> None:
    """Compose and check configs without running (sweep values are expanded and each checked).

    The checks are the run's own (:func:`runner.config.precheck.check_job`). A config that is
    fine but reads data absent here (no MNIST folder) prints ``needs data: ...`` and counts as
    valid unless ``--strict``.
    """
    from runner.cli_validate import validate_cases

    validate_cases(overrides or [], every_experiment=all_, strict=strict)


@app.command("replay")
def replay(
    case: Annotated[Path, typer.Argument(help="a case archive (.npz)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the trajectories")],
) -> None:
    """Replay recorded spike trains through the learning rules and write the trajectories."""
    from runner.cli_replay import run_replay

    run_replay(case, out)


@app.command("report")
def report(
    path: Annotated[Path, typer.Argument(help="a run folder or a sweep folder")],
    sort: Annotated[str | None, typer.Option("--sort", help="sort by this metric")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="sort descending")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="CSV file to write (default PATH/report.csv)")
    ] = None,
) -> None:
    """Table of the final metrics of a run or of every job of a sweep (also written as CSV)."""
    from runner.registry import choices_text, did_you_mean
    from runner.report import collect, metric_keys, render_table, sort_rows, write_csv

    if not path.is_dir():
        fail(f"{path}: no such folder")
    rows = collect(path)
    if not rows:
        fail(f"{path}: no runs found (no folder with .hydra/, summary.json or FAILED)")
    keys = metric_keys(rows)
    if sort is not None and sort not in keys:
        fail(
            f"--sort: unknown metric {sort!r}{did_you_mean(sort, keys)} valid: {choices_text(keys)}"
        )
    rows = sort_rows(rows, sort, descending=desc)
    console().print(render_table(rows, title=str(path)))
    written = write_csv(rows, csv_path or path / "report.csv")
    typer.echo(f"csv: {written}")


@app.command("resume")
def resume(run_dir: Annotated[Path, typer.Argument(help="the run folder to continue")]) -> None:
    """Continue an interrupted run from its last checkpoint."""
    from runner.app import resume as resume_run

    with user_errors():
        resume_run(run_dir)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="stdp-run")
    finally:
        # Everything is written. Interpreter shutdown runs full garbage collections over every
        # object still alive, and after a compiled run (dynamo, inductor, sympy) that walk took
        # 2-6 s; frozen objects are skipped by it and still freed by reference counting.
        gc.freeze()


if __name__ == "__main__":
    main()
