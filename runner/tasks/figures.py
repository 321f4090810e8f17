"""The tasks' own figures (detection history, arrival times, the learning window)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from runner.tasks.detection import arrival_times, select_afferents


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save_png(fig: Any, path: Path, *, tight: bool = True) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from runner.record import atomic_write

    FigureCanvasAgg(fig)
    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)


def plot_detection(history: list[dict[str, Any]], path: Path) -> Path:
    """Hit rate, false alarms/s and latency per training batch against presentations seen."""
    rows = [h for h in history if h["phase"] == "train"]
    x = np.array([h["presented"] for h in rows])
    fig = _figure(10, 2.8)
    for i, (key, label) in enumerate(
        (
            ("hit_rate", "hit rate"),
            ("false_alarms_per_s", "false alarms / s"),
            ("latency_ms", "latency (ms)"),
        )
    ):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(x, [h[key] for h in rows], marker=".", linewidth=1)
        ax.set(xlabel="presentations", title=label)
    return _save_png(fig, path)


def plot_arrivals(
    start: dict[str, np.ndarray],
    end: dict[str, np.ndarray],
    output: int,
    pattern: np.ndarray,
    mask: np.ndarray,
    dt: float,
    path: Path,
    latency_ms: float = math.nan,
) -> Path:
    """Delays and arrival times of the selected pattern afferents, at the start and the end.

    The arrivals are those of :func:`arrival_times` before ``latency_ms`` (all when NaN).
    """
    selected = select_afferents(end["weight"][output], mask)
    before = None if math.isnan(latency_ms) else latency_ms
    fig = _figure(10, 3)
    titles = (
        f"delays of the {int(selected.sum())} selected afferents (ms)",
        "their arrival times after the onset (ms)",
    )
    for i, title in enumerate(titles):
        ax = fig.add_subplot(1, 2, i + 1)
        for tag, params in (("start", start), ("end", end)):
            delay = params.get("delay", np.zeros_like(end["weight"]))[output]
            values = (
                delay[selected] if i == 0 else arrival_times(pattern, selected, delay, dt, before)
            )
            label = (
                f"{tag} (mean {values.mean():.2f}, std {values.std():.2f})" if values.size else tag
            )
            ax.hist(
                values,
                bins=np.arange(0.0, values.max() + 1.0, 0.5) if values.size else 10,
                alpha=0.6,
                label=label,
            )
        if i == 1 and before is not None:
            ax.axvline(before, color="k", linestyle=":", label="mean output latency")
        ax.set(title=title)
        ax.legend(fontsize=7)
    return _save_png(fig, path)


def plot_window(
    delta_t: np.ndarray, window: np.ndarray, fine_t: np.ndarray, fine_kernel: np.ndarray, path: Path
) -> Path:
    """The measured learning window (weight change per contributing step) over the kernel."""
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    causal = fine_t >= 0
    for part in (causal, ~causal):
        ax.plot(
            fine_t[part],
            fine_kernel[part],
            color="0.6",
            linewidth=3,
            label="kernel K(Δt)" if part is causal else None,
        )
    ax.plot(delta_t, window, "o", color="tab:red", markersize=4, label="measured Δw / steps")
    ax.axhline(0.0, color="0.8", linewidth=0.8)
    ax.set(xlabel="Δt = t_post - t_pre (ms)", ylabel="weight change per step")
    ax.legend(fontsize=8)
    return _save_png(fig, path)


def plot_confusion(report: dict[str, Any], path: Path, *, title: str = "") -> Path:
    """The confusion matrix of a readout report (rows: true class, columns: predicted), as
    fractions of each true class, with the counts written in the cells."""
    matrix = np.asarray(report["confusion_matrix"], dtype=np.float64)
    totals = matrix.sum(axis=1) + np.asarray(report["abstained"], dtype=np.float64)
    share = matrix / np.maximum(totals, 1)[:, None]
    n = matrix.shape[0]
    fig = _figure(0.55 * n + 2.5, 0.5 * n + 1.5)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                        color=color)  # fmt: skip
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted class", ylabel="true class")
    accuracy = float(np.trace(matrix) / max(totals.sum(), 1))
    ax.set_title(f"{title} confusion ({int(totals.sum())} samples, accuracy {accuracy:.1%})")
    from runner.plots import fixed_margins  # matplotlib: imported when a figure is drawn

    fixed_margins(fig, left=0.7, right=0.35, bottom=0.6, top=0.4)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    return _save_png(fig, path, tight=False)


def plot_accuracy_curve(curve: list[tuple[int, float]], path: Path) -> Path:
    """Validation accuracy (monitor subset) against the training samples seen."""
    fig = _figure(5, 3.2)
    ax = fig.add_subplot()
    seen, accuracy = zip(*curve, strict=True)
    ax.plot(seen, [100 * a for a in accuracy], marker="o", linewidth=1.5)
    ax.set(xlabel="training samples seen", ylabel="validation accuracy (%)", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.set_title("learning curve")
    return _save_png(fig, path)
