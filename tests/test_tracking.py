"""Logger backends: csv, TensorBoard event files, plugins through the registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from runner.config.errors import ConfigError
from runner.config.validate import validate_config
from runner.registry import LOGGERS
from runner.tracking import Backend, Snapshot, parse_overrides

#: A tiny image run with held-out digits (so it reports ``accuracy``) over two epochs.
TINY_IMAGE = ("run.n_eval=6", "run.epochs=2", "logger.level=WARNING")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _accumulator(folder: Path) -> Any:
    module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = module.EventAccumulator(
        str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}
    )
    acc.Reload()
    return acc


def test_csv_is_the_default_and_writes_no_event_files(run_cli) -> None:
    result, run_dir = run_cli()
    assert result.exit_code == 0, result.output
    assert (run_dir / "metrics.csv").is_file()
    assert not (run_dir / "tensorboard").exists()


def test_tensorboard_event_files_load_in_tensorboard(run_cli) -> None:
    pytest.importorskip("tensorboard")
    result, run_dir = run_cli(*TINY_IMAGE, "logger.backends=[csv,tensorboard]")
    assert result.exit_code == 0, result.output
    assert (run_dir / "metrics.csv").is_file()  # csv still there
    acc = _accumulator(run_dir / "tensorboard")
    tags = acc.Tags()
    summary = _summary(run_dir)
    accuracy = acc.Scalars("accuracy")
    assert len(accuracy) == 2  # one per epoch
    assert accuracy[-1].value == pytest.approx(summary["metrics"]["accuracy"], abs=1e-6)
    assert accuracy[0].step < accuracy[-1].step
    assert acc.Scalars("final/accuracy")[-1].value == pytest.approx(accuracy[-1].value)
    assert "train_accuracy" in tags["scalars"]
    # the network: 64 inputs -> 100 exc (diehl_cook at 8x8): one histogram per epoch end
    histograms = acc.Histograms("weights/input_exc")
    assert [h.step for h in histograms] == [a.step for a in accuracy]
    assert histograms[-1].histogram_value.num == 64 * 100
    from safetensors.torch import load_file

    final = load_file(str(run_dir / "weights" / "final.safetensors"))["input_exc"]
    assert histograms[-1].histogram_value.max == pytest.approx(float(final.max()), rel=1e-6)
    assert histograms[-1].histogram_value.sum == pytest.approx(float(final.double().sum()))
    images = acc.Images("receptive_fields/input_exc")
    assert len(images) == 2
    assert (images[-1].width, images[-1].height) == (10 * 9 + 1, 10 * 9 + 1)  # 10 x 10 tiles of 8x8


def test_hparams_summary_holds_the_overrides_and_final_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    from runner.tensorboard_backend import TensorBoardBackend

    backend = TensorBoardBackend(tmp_path / "tb")
    backend.log_metrics(100, {"step": 100, "accuracy": 0.5})
    backend.finish(
        {"accuracy": 0.5, "latency_ms": float("nan")},
        ["seed=3", "trainer.weight.batch_reduction=sum", "hydra.job.chdir=true"],
    )
    backend.close()
    acc = _accumulator(tmp_path / "tb")
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert dict(start.hparams)["seed"].number_value == 3
    assert dict(start.hparams)["trainer.weight.batch_reduction"].string_value == "sum"
    assert "hydra.job.chdir" not in start.hparams
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["final/accuracy"]  # NaN left out
    assert acc.Scalars("final/accuracy")[-1].value == 0.5


def test_delay_histograms_and_fields_from_a_snapshot(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    import numpy as np
    import torch

    from runner.tensorboard_backend import TensorBoardBackend, fields_image

    weights = torch.arange(12, dtype=torch.float32).reshape(3, 4)  # 3 neurons, 2x2 images
    delays = torch.tensor([[0.5, float("nan")], [2.0, 3.0]])
    backend = TensorBoardBackend(tmp_path / "tb")
    backend.log_parameters(Snapshot(7, {"c": weights}, {"c": delays}, (2, 2), ("c",)))
    backend.close()
    acc = _accumulator(tmp_path / "tb")
    (histogram,) = acc.Histograms("delays/c")
    assert histogram.step == 7 and histogram.histogram_value.num == 3  # NaN left out
    assert histogram.histogram_value.sum == pytest.approx(5.5)
    assert acc.Histograms("weights/c")[0].histogram_value.max == 11
    image = fields_image(weights, (2, 2))
    assert image.shape == (1, 7, 7)  # 2 x 2 tiles of 2x2 with 1-pixel borders
    assert image[0, 1:3, 1:3] == pytest.approx(np.array([[0.0, 1 / 3], [2 / 3, 1.0]]))  # / max
    assert image[0, 1:3, 4:6].max() == 1.0 and image[0, 4:6, 4:6].max() == 0.0  # empty tile
    assert acc.Images("receptive_fields/c")[0].width == 7


def test_parse_overrides_types_values() -> None:
    assert parse_overrides(
        ["seed=2", "+x.y=1e-3", "flag=true", "name=abc", "hydra/launcher=parallel", "bad"]
    ) == {"seed": 2, "x.y": 1e-3, "flag": True, "name": "abc"}


def test_unknown_or_uninstalled_backends_are_one_line_errors(compose_cfg, monkeypatch) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(compose_cfg("debug=default", "logger.backends=[csv,tensorbord]"))
    assert len(err.value.problems) == 1
    assert "logger.backends: unknown logger backend 'tensorbord'" in err.value.problems[0]
    assert "did you mean 'tensorboard'" in err.value.problems[0]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ConfigError) as err:
        validate_config(compose_cfg("debug=default", "logger.backends=[tensorboard,tensorboard]"))
    assert err.value.problems == [
        "logger.backends: 'tensorboard' needs the tensorboard package "
        "(pip install 'stdp-run[tensorboard]')",
        "logger.backends: 'tensorboard' needs the tensorboard package "
        "(pip install 'stdp-run[tensorboard]')",
        "logger.backends: tensorboard listed more than once",
    ]


class Recording(Backend):
    """A plugin-style backend that keeps what it is given."""

    wants_parameters = True
    seen: list[Recording] = []

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.rows: list[tuple[int, dict[str, Any]]] = []
        self.snapshots: list[Snapshot] = []
        self.final: tuple[dict[str, Any], list[str]] | None = None
        self.closed = False
        Recording.seen.append(self)

    def log_metrics(self, step: int, row: Mapping[str, Any]) -> None:
        self.rows.append((step, dict(row)))

    def log_parameters(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)

    def finish(self, metrics: Mapping[str, Any], overrides: Sequence[str]) -> None:
        self.final = (dict(metrics), list(overrides))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recording() -> Iterator[type[Recording]]:
    Recording.seen = []
    LOGGERS.register("recording", Recording)
    try:
        yield Recording
    finally:
        LOGGERS.unregister("recording")


def test_a_registered_backend_gets_rows_snapshots_and_the_end(run_cli, recording) -> None:
    result, run_dir = run_cli(*TINY_IMAGE, "logger.backends=[recording]")
    assert result.exit_code == 0, result.output
    assert not (run_dir / "metrics.csv").exists()  # csv was not asked for
    (backend,) = recording.seen
    assert backend.run_dir == run_dir and backend.closed
    steps = [step for step, _ in backend.rows]
    assert steps == sorted(steps) and all(row["step"] == s for s, row in backend.rows)
    assert [s.step for s in backend.snapshots] == [
        r["step"] for _, r in backend.rows if "accuracy" in r
    ]
    snap = backend.snapshots[-1]
    assert tuple(snap.weights["input_exc"].shape) == (100, 64)
    assert snap.image_shape == (8, 8) and snap.input_connections == ("input_exc",)
    assert backend.final is not None
    metrics, overrides = backend.final
    assert metrics == pytest.approx(_summary(run_dir)["metrics"])
    assert "logger.backends=[recording]" in overrides


# -- a sweep in one TensorBoard view (subprocess, slow) -------------------------------------------


@pytest.mark.slow
def test_a_sweep_compares_in_one_tensorboard_logdir(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    sweep = tmp_path / "sweep"
    exe = shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")
    proc = subprocess.run(
        [exe, "-m", "debug=default", "run.n_eval=6", "seed=0,1", "logger.backends=[csv,tensorboard]",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "TTY_INTERACTIVE": "0"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    mux = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    mux.Reload()
    assert sorted(mux.Runs()) == ["0/tensorboard", "1/tensorboard"]
    seeds = []
    for run in ("0/tensorboard", "1/tensorboard"):
        content = mux.PluginRunToTagToContent("hparams")[run]
        start = plugin_data_pb2.HParamsPluginData.FromString(
            content["_hparams_/session_start_info"]
        ).session_start_info
        seeds.append(start.hparams["seed"].number_value)
        accuracy = _summary(sweep / run.split("/")[0])["metrics"]["accuracy"]
        assert mux.Scalars(run, "final/accuracy")[-1].value == pytest.approx(accuracy, abs=1e-6)
    assert seeds == [0, 1]
