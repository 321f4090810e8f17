"""The columns of a run's ``metrics.csv`` as the plots read them: float arrays, which are
learning curves, and the y label (quantity and unit) of each."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np


def read_metrics(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Columns of a metrics CSV as float arrays (empty or non-numeric cells become NaN)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0].keys()) if rows else []

    def num(x: str | None) -> float:
        try:
            return float(x) if x not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return columns, {c: np.array([num(r.get(c)) for r in rows]) for c in columns}


#: Columns of metrics.csv that are positions or timings, not learning curves.
NOT_CURVES = frozenset(
    {"epoch", "batch", "step", "global_step", "compile_s", "train_steps_per_s",
     "train_samples_per_s", "eval_samples_per_s"}
)  # fmt: skip

#: ``(test, y label)`` by metric name, first match wins (see :func:`axis_label`).
_LABELS: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda k: k.startswith("rate."), "rate (Hz)"),
    (lambda k: k.endswith(".weight.update"), "mean |change| of a weight"),
    (lambda k: k.endswith(".delay.update"), "mean |change| of a delay (ms)"),
    (lambda k: ".weight." in k, "weight"),
    (lambda k: ".delay." in k, "delay (ms)"),
    (lambda k: "accuracy" in k, "accuracy (fraction correct)"),
    (lambda k: k.endswith("hit_rate"), "hit rate (fraction of presentations)"),
    (lambda k: k.endswith("false_alarms_per_s"), "false alarms (spikes/s)"),
    (lambda k: k.endswith("_ms"), "ms"),
    (lambda k: k.endswith("_per_s"), "per second"),
    (lambda k: k.endswith("_s"), "seconds"),
    (lambda k: k.endswith(("presentations", "presentations_to_detect", "n_selected")), "count"),
    (lambda k: k.startswith("delta_w") or k in ("window", "kernel"), "weight change"),
)


def axis_label(key: str) -> str:
    """The y label (quantity and unit) of a metrics column, e.g. ``rate.exc`` -> ``rate (Hz)``."""
    return next((label for test, label in _LABELS if test(key)), "value")
