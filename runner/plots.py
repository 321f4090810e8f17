"""PNG plots of a run: weight/delay histograms, receptive fields, learning curves.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state,
no display needed) and written atomically through :func:`runner.record.atomic_write`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from runner.metric_columns import NOT_CURVES, axis_label, read_metrics
from runner.record import atomic_write

#: the metrics.csv readers moved to runner.metric_columns stay importable from here
__all__ = [
    "NOT_CURVES", "axis_label", "field_mosaic", "fixed_margins", "panel_grid", "plot_histogram",
    "plot_learning_curves", "plot_parameters", "plot_receptive_fields", "read_metrics",
]  # fmt: skip


def _to_numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().to("cpu").float().numpy()
    return np.asarray(t, dtype=np.float64)


def fixed_margins(
    fig: Figure, *, left: float, right: float, bottom: float, top: float, wspace: float = 0.2
) -> None:
    """Margins in inches around the axes: what ``tight_layout`` would find for the usual tick
    and axis labels, without measuring every text (it took 0.15-0.3 s a figure)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
        wspace=wspace,
    )  # fmt: skip


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda f: f.write(buf.getvalue()), binary=True)


def plot_histogram(
    values: Any,
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    bins: int = 50,
    initial: Any = None,
) -> Path:
    """A histogram of all entries of ``values`` (NaN dropped); with ``initial`` the values at
    the start of the run are drawn behind it, on the same bins."""
    data = _finite(values)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    start = None if initial is None else _finite(initial)
    edges = np.histogram_bin_edges(
        data if start is None else np.concatenate([data, start]), bins=bins
    ).tolist()
    if start is not None:
        ax.hist(start, bins=edges, color="tab:gray", alpha=0.5, label="start")
    ax.hist(data, bins=edges, color="tab:blue", alpha=0.8 if start is not None else 1.0,
            label="end")  # fmt: skip
    if start is not None:
        ax.legend(frameon=False)
    stats = f"n={data.size}" + (
        f", mean={data.mean():.4g}, std={data.std():.4g}" if data.size else ""
    )
    if data.size and data.min() == data.max():  # one bar: say its value
        stats = f"n={data.size}, all equal {data[0]:.4g}"
    ax.set(title=f"{title}\n{stats}", xlabel=xlabel, ylabel="count")
    fixed_margins(fig, left=0.75, right=0.2, bottom=0.55, top=0.6)  # a two-line title
    return _save(fig, Path(path))


def _finite(values: Any) -> np.ndarray:
    data = _to_numpy(values).ravel()
    return data[np.isfinite(data)]


def field_mosaic(weight: Any, image_shape: tuple[int, int], *, max_fields: int = 100) -> np.ndarray:
    """The first ``max_fields`` rows of ``weight`` ``[O, H*W]`` as ``H x W`` tiles of one image.

    Tiles fill a near-square grid, each with a 1-pixel NaN border (blank when drawn): one image
    draws in a fraction of the time of one axes per neuron.
    """
    w = _to_numpy(weight)
    h, wd = image_shape
    if w.ndim != 2 or w.shape[1] != h * wd:
        raise ValueError(f"weight must be [O, {h * wd}] for images {h}x{wd}, got {list(w.shape)}")
    n = min(w.shape[0], max_fields)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    mosaic = np.full((rows * (h + 1) + 1, cols * (wd + 1) + 1), np.nan)
    for i in range(n):
        row, col = divmod(i, cols)
        top, left = 1 + row * (h + 1), 1 + col * (wd + 1)
        mosaic[top : top + h, left : left + wd] = w[i].reshape(h, wd)
    return mosaic


def plot_receptive_fields(
    weight: Any,
    path: str | Path,
    *,
    image_shape: tuple[int, int],
    max_fields: int = 100,
    title: str = "",
    colorbar_label: str = "weight (input pixel -> neuron)",
) -> Path:
    """Each postsynaptic neuron's incoming weights ``weight[o]`` drawn as an ``image_shape`` image.

    Args:
        weight: ``[O, I]`` with ``I == H * W``.
        image_shape: ``(H, W)``.
        max_fields: at most this many neurons (the first ones) are drawn.
    """
    w = _to_numpy(weight)
    mosaic = field_mosaic(w, image_shape, max_fields=max_fields)
    n = min(w.shape[0], max_fields)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(0.8 * cols + 1.5, 0.8 * rows + 0.8))
    ax = fig.add_subplot()
    ax.set_axis_off()
    vmin, vmax = float(np.nanmin(w[:n])), float(np.nanmax(w[:n]))
    image = ax.imshow(mosaic, cmap="hot_r", vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8).set_label(colorbar_label)
    fig.suptitle(title or f"receptive fields ({n} of {w.shape[0]} neurons)")
    return _save(fig, Path(path))


def panel_grid(fig: Figure, rows: int, cols: int) -> GridSpec:
    """A ``rows x cols`` grid of panels with fixed margins in inches (room for a title above and
    tick labels and axis labels on the left and below): ``tight_layout`` would measure every
    text first, which took most of the plotting time of a run (1.5 s for 12 panels)."""
    width, height = fig.get_size_inches()
    left, right, top, bottom = 0.95, 0.2, 0.35, 0.55  # inches
    gap_x, gap_y = left + right, top + bottom  # between panels: the next one's margins
    panel_w = (width - left - right - (cols - 1) * gap_x) / cols
    panel_h = (height - top - bottom - (rows - 1) * gap_y) / rows
    return fig.add_gridspec(
        rows,
        cols,
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=gap_x / panel_w,
        hspace=gap_y / panel_h,
    )


def plot_learning_curves(
    metrics_csv: str | Path,
    path: str | Path,
    *,
    keys: Sequence[str] | None = None,
    columns_per_row: int = 3,
) -> Path | None:
    """One panel per numeric metric against ``step`` (or the row number); None if no data.

    Every metric gets a panel (positions and timings, :data:`NOT_CURVES`, are not curves), with
    a y label naming its unit. Sparse series (values read once per epoch or per evaluation) are
    drawn as lines with markers; a single value is also written next to its marker.
    """
    columns, data = read_metrics(metrics_csv)
    x_key = next((k for k in ("step", "global_step", "batch") if k in data), None)
    wanted = [k for k in (keys or columns) if k in data and k not in NOT_CURVES | {x_key}]
    wanted = [k for k in wanted if np.isfinite(data[k]).any()]
    if not wanted:
        return None
    x = data[x_key] if x_key else np.arange(len(data[wanted[0]]), dtype=np.float64)
    cols = min(columns_per_row, len(wanted))
    rows = math.ceil(len(wanted) / cols)
    grid = panel_grid(fig := Figure(figsize=(4 * cols, 2.8 * rows)), rows, cols)
    for i, key in enumerate(wanted):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ok = np.isfinite(data[key])
        sparse = ok.sum() < 50
        ax.plot(x[ok], data[key][ok], marker="o" if sparse else None, markersize=4)
        if ok.sum() == 1:  # one value (one epoch): say it, a lone marker is easy to miss
            ax.annotate(f"{data[key][ok][0]:.4g}", (x[ok][0], data[key][ok][0]),
                        xytext=(6, 4), textcoords="offset points")  # fmt: skip
        ax.set(title=key, xlabel=x_key or "row", ylabel=axis_label(key))
    return _save(fig, Path(path))


def plot_parameters(
    plot_dir: str | Path,
    weights: Mapping[str, Any],
    delays: Mapping[str, Any] | None = None,
    *,
    image_shape: tuple[int, int] | None = None,
    input_connections: Sequence[str] = (),
    initial_delays: Mapping[str, Any] | None = None,
    fixed: Collection[str] = (),
) -> list[Path]:
    """Histograms of the weights and delays of every connection but the ``fixed`` ones (no
    learning rule: their values are set by the config, e.g. one inhibitory weight, and a
    histogram of them shows one bar); learned delays over their start values; receptive fields
    of image inputs."""
    plot_dir = Path(plot_dir)
    written = [
        plot_histogram(
            w, plot_dir / f"weights_{name}.png", title=f"weights {name}", xlabel="weight"
        )
        for name, w in weights.items()
        if name not in fixed
    ]
    written += [
        plot_histogram(
            d,
            plot_dir / f"delays_{name}.png",
            title=f"delays {name}",
            xlabel="delay (ms)",
            initial=(initial_delays or {}).get(name),
        )
        for name, d in (delays or {}).items()
        if name not in fixed
    ]
    if image_shape is not None:
        for name in input_connections:
            if name in weights:
                written.append(
                    plot_receptive_fields(
                        weights[name],
                        plot_dir / f"receptive_fields_{name}.png",
                        image_shape=image_shape,
                    )
                )
    return written
