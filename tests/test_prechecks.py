"""One check before anything runs: validate's needs-data lines and sweep syntax, kwarg types,
the run's fallback when Hydra already made a folder, and the sweep table after a failed job.

The catalogue of single bad configs is tests/test_bad_configs.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runner.app import discard_run_folder
from runner.kwarg_types import accepts, describe, type_problem

LR = "trainer.weight.kernel_post.kwargs.learning_rate"


# -- validate -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_validate_all_lists_absent_data_and_exits_0(cli, monkeypatch) -> None:
    monkeypatch.delenv("STDP_RUN_MNIST", raising=False)
    result = cli("validate", "--all")
    assert result.exit_code == 0, result.output
    needs = [ln for ln in result.stdout.splitlines() if ln.startswith("needs data: ")]
    assert [ln.split("]")[0] for ln in needs] == [
        "needs data: [experiment=mnist_dr_stdp",
        "needs data: [experiment=mnist_dr_stdp_1epoch",
        "needs data: [experiment=mnist_stdp",
        "needs data: [experiment=mnist_stdp_1epoch",
    ]
    assert all("stimulus.dataset.root: MNIST needs an existing folder" in ln for ln in needs)
    assert result.stderr == ""
    strict = cli("validate", "--all", "--strict")
    assert strict.exit_code == 2
    assert strict.stderr.splitlines()[-1] == "error: 4 of 35 config(s) invalid"


def test_validate_interval_checks_both_ends_and_the_middle(cli) -> None:
    result = cli("validate", f"{LR}=interval(1e-4,1e-3)")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"note: {LR}=interval(0.0001,0.001): checked at 0.0001, 0.00055")
    assert lines[1:] == [f"ok  {LR}={v}" for v in ("0.0001", "0.00055", "0.001")]
    logged = cli("validate", f"{LR}=tag(log,interval(1e-4,1e-2))")
    assert logged.stdout.splitlines()[2] == f"ok  {LR}=0.001"  # the geometric middle


def test_validate_interval_reports_a_bad_end_in_one_line(cli) -> None:
    key = "trainer.weight.kernel_post.kwargs.time_constant"
    result = cli("validate", f"{key}=interval(-5,20)")
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert errors == [
        f"error: [{key}=-5.0] {key}: must be > 0, got -5.0",
        "error: 1 of 3 config(s) invalid",
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("sweep", "jobs", "bad"),
    [
        ("trainer.weight.batch_reduction=choice(mean,summ)", 2, 1),
        ("seed=range(0,3)", 3, 0),
        ("trainer.weight.batch_reduction=tag(red,choice(mean,sum))", 2, 0),
        ("experiment=glob(mnist_*_cpu)", 2, 0),
    ],
)
def test_validate_enumerates_every_sweep_value(cli, sweep: str, jobs: int, bad: int) -> None:
    result = cli("validate", sweep)
    oks = [ln for ln in result.stdout.splitlines() if ln.startswith("ok  ")]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: [")]
    assert (len(oks), len(errors)) == (jobs - bad, bad), result.output
    assert result.exit_code == (2 if bad else 0)


# -- kwarg types --------------------------------------------------------------------------------


def test_kwarg_types_judge_config_values() -> None:
    import torch

    assert accepts(float, 1) and accepts(float, 2.5) and not accepts(float, "abc")
    assert not accepts(float, True)  # a bool is no learning rate
    assert accepts(float | torch.Tensor, [0.1, 0.2]) and not accepts(float | torch.Tensor, "x")
    assert accepts(int | None, None) and not accepts(int, 1.5)
    assert accepts(Any, "anything") is None  # cannot tell: never rejected
    assert describe(float | torch.Tensor) == "a number"
    assert describe(int | None) == "an integer or null"


def test_type_problem_names_the_kwarg_and_the_expected_type() -> None:
    from runner.core.kernels import exp_stdp_post

    assert type_problem(exp_stdp_post, "learning_rate", 4e-4) is None
    assert type_problem(exp_stdp_post, "learning_rate", "abc") == (
        "kwarg 'learning_rate' must be a number, got 'abc' (str)"
    )

    def plugin(diff, *, width: "NotAType"):  # type: ignore[no-untyped-def,name-defined]  # noqa: F821, UP037
        return diff

    assert type_problem(plugin, "width", "abc") is None  # unresolvable hints accept anything


# -- the run's own check (after Hydra made a folder) --------------------------------------------


def test_discard_run_folder_removes_only_hydras_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "x" / "2026-01-01" / "00-00-00"
    (run / ".hydra").mkdir(parents=True)
    for name in (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"):
        (run / name).write_text("a: 1\n")
    (run / "stdp_run.log").write_text("")
    assert discard_run_folder(run)
    assert not (tmp_path / "outputs").exists()  # the empty date folders above it go too
    kept = tmp_path / "mine"
    (kept / ".hydra").mkdir(parents=True)
    (kept / ".hydra" / "config.yaml").write_text("a: 1\n")
    (kept / "notes.txt").write_text("the user's")
    assert not discard_run_folder(kept)
    assert (kept / "notes.txt").read_text() == "the user's"


def test_config_error_past_the_precheck_leaves_no_folder(cli, tmp_path: Path) -> None:
    """``-cd`` skips the CLI's pre-check: the run's own check removes the folder Hydra made."""
    run_dir = tmp_path / "run"
    result = cli("-cd", tmp_path, "run.batch_size=0", f"hydra.run.dir={run_dir}")
    assert result.exit_code == 2
    assert [ln for ln in result.stderr.splitlines() if ln.strip()] == [
        "error: run.batch_size: must be >= 1, got 0"
    ]
    assert "ERROR" not in result.stdout and "run failed" not in result.stdout  # printed once
    assert not run_dir.exists()


# -- sweeps -------------------------------------------------------------------------------------


def test_sweep_with_absent_data_in_one_job_runs_nothing(run_cli, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result, _ = run_cli(
        "-m",
        "stimulus.dataset.source=sklearn,mnist,sklearn",
        "stimulus.dataset.root=/nonexistent/mnist",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.exit_code == 2
    size, root = result.stderr.splitlines()  # two problems of the mnist job, a line each
    assert size.startswith("error: [stimulus.dataset.source=mnist] network.populations.input")
    assert root.startswith("error: [stimulus.dataset.source=mnist] stimulus.dataset.root: MNIST")
    assert root.endswith("(1 of 3 jobs invalid; nothing was run)")
    assert not sweep.exists()


BOOM = '''
import torch


def boom(diff, *, learning_rate: float, time_constant: float):
    """exp_stdp_post that fails in the run (not in validation) for a learning rate above 1."""
    if learning_rate > 1:
        raise RuntimeError("boom: learning rate above 1")
    return torch.exp(diff.abs() / -time_constant) * (learning_rate * (diff >= 0).to(diff.dtype))
'''


def test_sweep_table_is_printed_when_a_job_failed(tmp_path: Path, monkeypatch) -> None:
    from runner.cli import app

    (tmp_path / "boom_kernel.py").write_text(BOOM)
    monkeypatch.syspath_prepend(str(tmp_path))
    sweep = tmp_path / "sweep"
    result = CliRunner().invoke(
        app,
        ["-m", "debug=default", "trainer.weight.kernel_post.name=boom_kernel:boom",
         f"{LR}=4e-4,2", f"hydra.sweep.dir={sweep}"],
    )  # fmt: skip
    assert isinstance(result.exception, RuntimeError)  # the job's own failure, not a config one
    assert (sweep / "0" / "summary.json").is_file() and (sweep / "1" / "FAILED").is_file()
    table = result.stdout[result.stdout.index(f"sweep {sweep}") :]
    rows = [ln for ln in table.splitlines() if ln.startswith("│ 0 ") or ln.startswith("│ 1 ")]
    assert "comple" in rows[0] and "failed" in rows[1], table  # the column may fold


# -- the command line ---------------------------------------------------------------------------


def test_flags_after_overrides_are_moved_first() -> None:
    from runner.cli_slips import hoist_flags

    argv = ["a=1", "-m", "b=2,3", "--cfg", "job", "--info", "c=4", "-cd", "DIR"]
    assert hoist_flags(argv) == [
        "-m",
        "--cfg",
        "job",
        "--info",
        "-cd",
        "DIR",
        "a=1",
        "b=2,3",
        "c=4",
    ]


def test_argparse_complaint_is_one_line(cli) -> None:
    result = cli("--cfg", "jobb")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: argument --cfg/-c: invalid choice: 'jobb' (choose from 'job', 'hydra', 'all') "
        "(stdp-run --help lists the commands, stdp-run -h Hydra's options)"
    ]


def test_a_sweep_over_the_precheck_limit_is_left_to_the_run(monkeypatch) -> None:
    from runner.config import precheck as pc

    monkeypatch.setattr(pc, "RUN_LIMIT", 2)
    assert pc.precheck(["-m", "seed=0,1,2"]) is None  # not refused: each job checks itself
    monkeypatch.setattr(pc, "RUN_LIMIT", 3)
    result = pc.precheck(["-m", "seed=0,1,2"])
    assert result is not None and (result.jobs, result.failures) == (3, [])
