"""What :class:`~runner.tasks.image.ImageTask` makes of a scored phase: accuracies (max-rate
and first-spike), a report per split (per-class accuracy, confusion matrix, abstentions), and
the summary entries and figures built from those reports and the validation curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor


def score(
    phase: str,
    classifier: Any,
    counts: Tensor,
    labels: Tensor,
    latency: Tensor | None,
    n_classes: int,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics of ``phase`` (``test_`` prefixed for the test split) and its report."""
    from runner.core.readout import confusion_matrix

    prefix = "test_" if phase == "test" else ""
    predicted = classifier.predict(counts)
    labels = labels.to(predicted.device)
    metrics = {f"{prefix}accuracy": float((predicted == labels).float().mean())}
    if latency is not None:
        first = classifier.predict_first_spike(latency, counts)
        metrics[f"{prefix}accuracy_ttfs"] = float((first == labels).float().mean())
    matrix = confusion_matrix(predicted, labels, n_classes).cpu()
    per_class = matrix.diagonal().double() / matrix.sum(dim=1).clamp_min(1).double()
    report = {
        "samples": int(labels.shape[0]),
        "per_class_accuracy": [round(float(x), 4) for x in per_class],
        "confusion_matrix": matrix[:, :n_classes].tolist(),
        "abstained": matrix[:, n_classes].tolist(),
    }
    return metrics, report


def readout_summary(
    reports: dict[str, dict[str, Any]], curve: list[tuple[int, float]]
) -> dict[str, Any]:
    """Extra entries of summary.json: per-class accuracy, confusion matrices, the curve."""
    out: dict[str, Any] = {"readout": dict(reports)} if reports else {}
    if curve:
        out["accuracy_curve"] = [{"samples": n, "val_accuracy": a} for n, a in curve]
    return out


def readout_figures(
    reports: dict[str, dict[str, Any]], curve: list[tuple[int, float]], plot_dir: Path
) -> list[Path]:
    """Confusion matrices of validation/test, and validation accuracy against samples seen."""
    from runner.tasks.figures import plot_accuracy_curve, plot_confusion

    written = [
        plot_confusion(report, plot_dir / f"confusion_{name}.png", title=name)
        for name, report in reports.items()
    ]
    if curve:
        written.append(plot_accuracy_curve(curve, plot_dir / "accuracy_curve.png"))
    return written
