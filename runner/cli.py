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
import os
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
    """Turn config/registry/override errors into ``error: ...`` and exit code 2."""
    from runner.config.errors import UserAbort, describe_error, is_user_error

    try:
        yield
    except UserAbort as exc:
        fail(exc.message, code=exc.code if isinstance(exc.code, int) else 2)
    except typer.Exit:
        raise
    except Exception as exc:
        if is_user_error(exc):
            fail(describe_error(exc))
        if isinstance(exc, OSError):  # a folder that cannot be written, a full disk
            where = f" {exc.filename}" if exc.filename else ""
            fail(
                f"cannot write{where}: {exc.strerror or exc} (check the folder, its "
                "permissions and the free space; hydra.run.dir=... picks another run folder)",
                code=1,
            )
        raise


@app.command(
    "run",
    add_help_option=False,  # --help goes to Hydra's app help
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(ctx: typer.Context) -> None:
    """Run an experiment (the default command): stdp-run [OVERRIDES] [-m] [Hydra flags]."""
    from hydra.core.global_hydra import GlobalHydra

    from runner.cli_slips import hoist_flags

    with heavy_imports():
        from runner.app import hydra_entry  # imported lazily: keeps list/show fast

    full_error = os.environ.get("HYDRA_FULL_ERROR")
    _check_before_running(ctx.args, full_error=full_error == "1")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's exit(1)
    saved, sys.argv = sys.argv, [sys.argv[0], *hoist_flags(ctx.args)]
    GlobalHydra.instance().clear()
    try:
        with user_errors() if full_error != "1" else _aborts_only(), _sweep_table_on_failure():
            hydra_entry()
    finally:
        sys.argv = saved
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _check_before_running(argv: list[str], *, full_error: bool) -> None:
    """CLI slips and every job's config, before Hydra creates a folder (exit 2 on a problem)."""
    from runner.cli_slips import find_slip, hoist_flags
    from runner.config.precheck import failure_lines, hydra_args, precheck

    slip = find_slip(argv, [c.name or "" for c in app.registered_commands])
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
    """With HYDRA_FULL_ERROR=1 exceptions keep their traceback; only UserAbort is printed."""
    from runner.config.errors import UserAbort

    try:
        yield
    except UserAbort as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        fail(exc.message)


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
    from runner.config.compose import expand_cases
    from runner.config.errors import ConfigError, describe_error, is_user_error
    from runner.config.precheck import check_job

    notes: list[str] = []
    with user_errors():
        cases = expand_cases(overrides or [], every_experiment=all_, notes=notes)
    for note in notes:
        typer.echo(f"note: {note}")
    failures = 0
    for case in cases:
        label = " ".join(case) or "(defaults)"
        try:
            check_job(case)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            if isinstance(exc, ConfigError) and exc.only_needs_data and not strict:
                for line in exc.needs_data:
                    typer.echo(f"needs data: [{label}] {line}")
                continue
            failures += 1
            for line in describe_error(exc).splitlines():
                typer.echo(f"error: [{label}] {line}", err=True)
            continue
        typer.echo(f"ok  {label}")
    if failures:
        fail(f"{failures} of {len(cases)} config(s) invalid")


@app.command("replay")
def replay(
    case: Annotated[Path, typer.Argument(help="a case archive (.npz)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the trajectories")],
) -> None:
    """Replay recorded spike trains through the learning rules and write the trajectories."""
    run_replay(case, out)


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import torch and the engine without the cyclic GC, then freeze what they created.

    ``import torch`` (and dynamo, Hydra, the registries) creates ~170,000 GC-tracked objects: the
    import runs without the cyclic GC (its collections cost ~0.14 s there) and ``gc.freeze()``
    then moves everything into the permanent generation, so later collections and the
    interpreter's shutdown skip it (~0.35 s less per process); they live until the process ends
    anyway. An embedding process that has already imported torch (pytest) is left as it is.
    Also, only effective before torch is first imported: ``OMP_WAIT_POLICY=PASSIVE`` unless the
    user set it, so that OpenMP workers sleep between parallel regions instead of spinning (the
    same speed on an idle machine; when another process holds a core, spinning workers wait for
    each other's time slices: measured on 2 cores with one busy, 2.8 s instead of 3.5 s, and up
    to 10 s with a busy neighbour).
    """
    fresh = "torch" not in sys.modules
    if fresh:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        gc.disable()
    try:
        yield
    finally:
        if fresh:
            gc.freeze()
            gc.enable()


def run_replay(case: Path, out: Path) -> None:
    """The body of ``stdp-run replay``: the imports under :func:`heavy_imports`, and glibc's
    malloc kept from returning freed blocks (:func:`runner.replay.keep_freed_memory`; the
    trainers' ``[B, O, I]`` temporaries otherwise page-fault in again every step: trainers 0.47 s
    instead of 0.75-1.0 s in the 100-step case). The thread count stays torch's default
    (``OMP_NUM_THREADS``, else the cores): on 2 cores the whole process takes 1.8 s with 2
    threads and 2.1 s with 1.
    """
    with heavy_imports():
        from runner.replay import ReplayInputError, keep_freed_memory, main
    keep_freed_memory()
    try:
        main(case, out)
    except ReplayInputError as exc:
        fail(str(exc))


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
