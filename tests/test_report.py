"""``stdp-run report`` and the sweep summary: job discovery, statuses, sorting, CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runner.report import (
    SWEEP_SUMMARY,
    SweepSummaryCallback,
    collect,
    find_jobs,
    metric_keys,
    sort_rows,
    to_csv_text,
)


def _job(root: Path, name: str, *, metrics: dict | None = None, failed: str | None = None,
         overrides: list[str] | None = None) -> Path:  # fmt: skip
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {o}\n" for o in (overrides or [f"seed={name}"]))
    )
    if metrics is not None:
        (job / "summary.json").write_text(json.dumps({"status": "completed", "metrics": metrics}))
    if failed is not None:
        (job / "FAILED").write_text(failed + "\n")
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    _job(root, "0", metrics={"accuracy": 0.5, "rate": 3.0})
    _job(root, "1", metrics={"accuracy": 0.8})
    _job(root, "2", failed="trainer.weight.batch_reduction: unknown reduction 'maen'")
    _job(root, "3")  # still running or killed
    _job(root, "10", metrics={"accuracy": 0.1, "rate": 1.0})
    (root / "multirun.yaml").write_text("x: 1\n")
    (root / ".submitit").mkdir()
    return root


def test_find_jobs_in_natural_order(sweep: Path) -> None:
    assert [p.name for p in find_jobs(sweep)] == ["0", "1", "2", "3", "10"]
    assert find_jobs(sweep / "1") == [sweep / "1"]


def test_statuses_metrics_and_errors(sweep: Path) -> None:
    rows = {r.job: r for r in collect(sweep)}
    assert rows["0"].status == "completed" and rows["0"].metrics == {"accuracy": 0.5, "rate": 3.0}
    assert rows["0"].overrides == "seed=0"
    assert rows["2"].status == "failed"
    assert rows["2"].error == "trainer.weight.batch_reduction: unknown reduction 'maen'"
    assert rows["3"].status == "incomplete"
    assert metric_keys(list(rows.values())) == ["accuracy", "rate"]


def test_sort_puts_missing_values_last(sweep: Path) -> None:
    rows = collect(sweep)
    assert [r.job for r in sort_rows(rows, "accuracy")] == ["10", "0", "1", "2", "3"]
    assert [r.job for r in sort_rows(rows, "accuracy", descending=True)] == [
        "1",
        "0",
        "10",
        "2",
        "3",
    ]
    assert [r.job for r in sort_rows(rows, "rate")] == ["10", "0", "1", "2", "3"]
    assert [r.job for r in sort_rows(rows, None)] == ["0", "1", "2", "3", "10"]


def test_csv_columns(sweep: Path) -> None:
    rows = list(csv.DictReader(to_csv_text(collect(sweep)).splitlines()))
    assert list(rows[0]) == ["job", "status", "overrides", "accuracy", "rate", "error"]
    assert rows[1] == {"job": "1", "status": "completed", "overrides": "seed=1", "accuracy": "0.8",
                       "rate": "", "error": ""}  # fmt: skip


def test_report_command_sorts_and_writes_csv(cli, sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    result = cli("report", sweep, "--sort", "accuracy", "--desc", "--csv", out)
    assert result.exit_code == 0, result.output
    assert "failed" in result.stdout and "unknown reduction 'maen'" in result.stdout
    with out.open() as f:
        assert [r["job"] for r in csv.DictReader(f)] == ["1", "0", "10", "2", "3"]
    assert result.stdout.strip().endswith(f"csv: {out}")


def test_report_default_csv_next_to_the_runs(cli, sweep: Path) -> None:
    assert cli("report", sweep).exit_code == 0
    assert (sweep / "report.csv").is_file()


def test_report_user_errors(cli, sweep: Path, tmp_path: Path) -> None:
    bad_key = cli("report", sweep, "--sort", "acuracy")
    assert bad_key.exit_code == 2
    assert bad_key.stderr.strip() == (
        "error: --sort: unknown metric 'acuracy'; did you mean 'accuracy'? valid: accuracy, rate"
    )
    missing = cli("report", tmp_path / "nope")
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli("report", tmp_path / "empty")
    assert empty.exit_code == 2 and "no runs found" in empty.stderr


def test_sweep_callback_writes_the_summary(sweep: Path, capsys) -> None:
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    SweepSummaryCallback().on_multirun_end(cfg)
    with (sweep / SWEEP_SUMMARY).open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0", "completed"),
        ("1", "completed"),
        ("2", "failed"),
        ("3", "incomplete"),
        ("10", "completed"),
    ]
    assert "sweep" in capsys.readouterr().out
