"""Plots a reader can trust (issue 13, item 11): labelled learning-curve panels, all of them,
per-epoch values as lines with markers; no histograms of fixed connections; a labelled
receptive-field colourbar."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from matplotlib.figure import Figure

from runner import plots

#: the metrics.csv columns of a two-epoch delay_adjusted run (25 curves)
STEP_KEYS = [f"input_exc.{p}.{s}" for p in ("weight", "delay")
             for s in ("mean", "std", "min", "max", "update")]  # fmt: skip
EPOCH_KEYS = ["train_hit_rate", "train_false_alarms_per_s", "train_latency_ms",
              "train_presentations", "train_presentations_to_detect", "hit_rate",
              "false_alarms_per_s", "latency_ms", "presentations", "n_selected",
              "arrival_std_start_ms", "delay_mean_start_ms", "arrival_std_end_ms",
              "delay_mean_end_ms"]  # fmt: skip
TIMING = ["compile_s", "train_steps_per_s", "train_samples_per_s", "eval_samples_per_s"]


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the plot functions draw (they are still written)."""
    drawn: list[Figure] = []
    save = plots._save

    def keep(fig: Figure, path: Path) -> Path:
        drawn.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def _metrics_csv(path: Path, epochs: int) -> Path:
    columns = ["epoch", "batch", "step", "rate.exc", *STEP_KEYS, *EPOCH_KEYS, *TIMING]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        step = 0
        for epoch in range(epochs):
            for _ in range(20):
                step += 10
                row = {"epoch": epoch, "step": step, "rate.exc": step % 7}
                writer.writerow(row | {k: 0.1 * step for k in STEP_KEYS})
            writer.writerow({"epoch": epoch, "step": step}
                            | {k: float(epoch + 1) for k in EPOCH_KEYS + TIMING})  # fmt: skip
    return path


def _curves(fig: Figure) -> dict[str, Any]:
    return {ax.get_title(): ax for ax in fig.axes}


def test_every_metric_gets_a_labelled_panel(tmp_path: Path, figures: list[Figure]) -> None:
    csv_path = _metrics_csv(tmp_path / "metrics.csv", epochs=2)
    assert plots.plot_learning_curves(csv_path, tmp_path / "lc.png") == tmp_path / "lc.png"
    (fig,) = figures
    panels = _curves(fig)
    # all 25 curves (no cap at 12), and no panels for positions or timings
    assert set(panels) == {"rate.exc", *STEP_KEYS, *EPOCH_KEYS}
    assert all(ax.get_ylabel() for ax in panels.values())
    assert panels["rate.exc"].get_ylabel() == "rate (Hz)"
    assert panels["latency_ms"].get_ylabel() == "ms"
    assert panels["hit_rate"].get_ylabel().startswith("hit rate")
    assert panels["false_alarms_per_s"].get_ylabel() == "false alarms (spikes/s)"
    assert panels["input_exc.delay.mean"].get_ylabel() == "delay (ms)"
    assert panels["input_exc.weight.update"].get_ylabel() == "mean |change| of a weight"
    # per-epoch values: one line through both epochs, with markers
    (line,) = panels["hit_rate"].get_lines()
    assert list(line.get_ydata()) == [1.0, 2.0] and line.get_marker() == "o"
    assert line.get_linestyle() == "-"


def test_a_single_epoch_value_is_written_next_to_its_marker(
    tmp_path: Path, figures: list[Figure]
) -> None:
    plots.plot_learning_curves(_metrics_csv(tmp_path / "m.csv", epochs=1), tmp_path / "lc.png")
    panel = _curves(figures[0])["latency_ms"]
    (line,) = panel.get_lines()
    assert len(line.get_ydata()) == 1 and line.get_marker() == "o"
    assert [t.get_text() for t in panel.texts] == ["1"]


@pytest.mark.parametrize(
    ("key", "label"),
    [("accuracy", "accuracy (fraction correct)"), ("val_accuracy", "accuracy (fraction correct)"),
     ("rate.inh", "rate (Hz)"), ("delta_w", "weight change"), ("mystery", "value")],
)  # fmt: skip
def test_axis_labels(key: str, label: str) -> None:
    assert plots.axis_label(key) == label


def test_fixed_connections_get_no_histogram(tmp_path: Path) -> None:
    lateral = torch.full((4, 4), -5.0).fill_diagonal_(0.0)
    written = plots.plot_parameters(
        tmp_path,
        {"input_exc": torch.rand(4, 9), "exc_exc": lateral},
        {"input_exc": torch.rand(4, 9), "exc_exc": torch.ones(4, 4)},
        fixed=("exc_exc",),
    )
    assert sorted(p.name for p in written) == ["delays_input_exc.png", "weights_input_exc.png"]


def test_a_learned_tensor_of_one_value_is_annotated(tmp_path: Path, figures: list[Figure]) -> None:
    plots.plot_histogram(torch.ones(3, 4), tmp_path / "h.png", title="weights x", xlabel="weight")
    assert "all equal 1" in figures[0].axes[0].get_title()


def test_run_folder_has_no_plots_of_fixed_connections(run_cli) -> None:  # type: ignore[no-untyped-def]
    result, run_dir = run_cli("logger.plots=true")  # Diehl & Cook: exc_inh, inh_exc are fixed
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (run_dir / "plots").iterdir())
    assert names == ["learning_curves.png", "receptive_fields_input_exc.png",
                     "weights_input_exc.png"]  # fmt: skip


def test_receptive_field_colourbar_is_labelled(tmp_path: Path, figures: list[Figure]) -> None:
    plots.plot_receptive_fields(torch.rand(4, 9), tmp_path / "rf.png", image_shape=(3, 3))
    colourbar = figures[0].axes[-1]
    assert colourbar.get_ylabel() == "weight (input pixel -> neuron)"
