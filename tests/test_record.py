"""Run-folder writers (atomic files, metrics CSV, safetensors, summary), plots and progress."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from runner import plots
from runner.progress import Progress, resolve_mode
from runner.record import (
    MetricsWriter,
    RunRecorder,
    atomic_write,
    load_tensors,
    save_tensors,
    write_failed,
    write_summary,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, lambda f: f.write("one"))
    atomic_write(target, lambda f: f.write("two"))
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def boom(f) -> None:
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_binary(tmp_path: Path) -> None:
    atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01"), binary=True)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_writer_appends_and_adds_columns(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    w = MetricsWriter(path)
    w.append({"step": 50, "rate.exc": 1.5})
    w.append({"step": 100, "rate.exc": 0.1 + 0.2})
    assert _rows(path) == [
        {"step": "50", "rate.exc": "1.5"},
        {"step": "100", "rate.exc": repr(0.1 + 0.2)},  # full precision, no rounding
    ]
    w.append({"step": 100, "accuracy": 0.75})  # a new column rewrites the header once
    assert w.columns == ["step", "rate.exc", "accuracy"]
    rows = _rows(path)
    assert rows[0] == {"step": "50", "rate.exc": "1.5", "accuracy": ""}
    assert rows[2] == {"step": "100", "rate.exc": "", "accuracy": "0.75"}


def test_metrics_writer_resumes_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    MetricsWriter(path).append({"step": 1, "x": 2.0})
    again = MetricsWriter(path)
    assert again.columns == ["step", "x"]
    again.append({"x": 3.0, "step": 2})
    assert _rows(path) == [{"step": "1", "x": "2.0"}, {"step": "2", "x": "3.0"}]


def test_metrics_writer_reads_tensor_scalars(tmp_path: Path) -> None:
    w = MetricsWriter(tmp_path / "m.csv")
    w.append({"v": torch.tensor(0.5), "n": np.int64(3)})
    assert w.rows() == [{"v": "0.5", "n": "3"}]


def test_safetensors_roundtrip(tmp_path: Path) -> None:
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous
    path = save_tensors(tmp_path / "weights" / "final.safetensors", {"input_exc": w})
    back = load_tensors(path)
    assert torch.equal(back["input_exc"], w)


def test_summary_is_json_with_nan_as_null(tmp_path: Path) -> None:
    write_summary(tmp_path, {"accuracy": 0.5, "loss": math.nan, "t": torch.tensor(2.0)}, seed=3)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data == {
        "status": "completed",
        "seed": 3,
        "metrics": {"accuracy": 0.5, "loss": None, "t": 2.0},
    }


def test_failed_marker_is_one_line(tmp_path: Path) -> None:
    write_failed(tmp_path, "dt: must be > 0\n  got 0")
    assert (tmp_path / "FAILED").read_text() == "dt: must be > 0 got 0\n"


def test_recorder_saves_parameters_and_plots(tmp_path: Path) -> None:
    rec = RunRecorder(tmp_path)
    gen = torch.Generator().manual_seed(0)
    weights = {"input_exc": torch.rand(4, 64, generator=gen), "exc_exc": torch.zeros(4, 4)}
    delays = {"input_exc": torch.rand(4, 64, generator=gen) * 10}
    rec.log_metrics({"step": 1, "rate.exc": 2.0})
    rec.log_metrics({"step": 2, "rate.exc": 3.0})
    written = rec.save_parameters(
        weights, delays, image_shape=(8, 8), input_connections=("input_exc",)
    )
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == [
        "delays/final.safetensors",
        "plots/delays_input_exc.png",
        "plots/receptive_fields_input_exc.png",
        "plots/weights_exc_exc.png",
        "plots/weights_input_exc.png",
        "weights/final.safetensors",
    ]
    rec.save_parameters(weights, tag="batch_000010")  # checkpoints: tensors only, no plots
    assert (tmp_path / "weights" / "batch_000010.safetensors").is_file()
    summary = rec.finish({"accuracy": 1.0})
    assert (tmp_path / "plots" / "learning_curves.png").is_file()
    assert summary == tmp_path / "summary.json"
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (tmp_path / "plots").iterdir())


def test_recorder_switches(tmp_path: Path) -> None:
    rec = RunRecorder(tmp_path, save_weights=False, plots=False)
    assert rec.save_parameters({"c": torch.ones(2, 2)}) == []
    rec.finish({})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_receptive_fields_need_matching_image_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weight must be \[O, 64\] for images 8x8, got \[3, 60\]"):
        plots.plot_receptive_fields(torch.zeros(3, 60), tmp_path / "rf.png", image_shape=(8, 8))


def test_learning_curves_need_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("step,epoch\n1,0\n")
    assert plots.plot_learning_curves(path, tmp_path / "lc.png") is None
    path.write_text("step,acc,note\n1,0.5,x\n2,,y\n3,0.7,z\n")
    columns, data = plots.read_metrics(path)
    assert columns == ["step", "acc", "note"]
    assert np.isnan(data["acc"][1]) and np.isnan(data["note"]).all()
    assert plots.plot_learning_curves(path, tmp_path / "lc.png") == tmp_path / "lc.png"


# -- progress ------------------------------------------------------------------------------------


def test_auto_progress_is_plain_off_a_terminal(monkeypatch) -> None:
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    assert resolve_mode("auto") == "plain"
    assert resolve_mode("off") == "off" and resolve_mode("rich") == "rich"


def test_plain_progress_logs_about_ten_lines_per_epoch(caplog) -> None:
    caplog.set_level(logging.INFO, logger="runner.progress")
    with Progress("plain", epochs=1, batches=40, steps_per_batch=100, metric_keys=("acc",)) as p:
        p.start_epoch(0)
        for i in range(40):
            p.advance(metrics={"acc": i / 40, "other": 1.0})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[-1].startswith("epoch 1/1 batch 40/40 (100%)") and lines[-1].endswith("acc=0.975")
    assert p.steps == 4000 and p.steps_per_second > 0


def test_off_and_rich_progress_log_nothing(caplog) -> None:
    caplog.set_level(logging.INFO, logger="runner.progress")
    for mode in ("off", "rich"):
        with Progress(mode, epochs=2, batches=3, steps_per_batch=10) as p:
            for epoch in range(2):
                p.start_epoch(epoch)
                for _ in range(3):
                    p.advance(metrics={"rate": 1.0})
        assert p.steps == 60
    assert caplog.records == []


def test_parallel_launcher_is_false_outside_hydra() -> None:
    from runner.progress import parallel_launcher

    assert parallel_launcher() is False
