"""Writers of the run folder: metrics CSV, safetensors, summary and failure marker.

Layout of a run folder (Hydra's output dir)::

    .hydra/                 composed config, hydra config, overrides (written by Hydra)
    stdp_run.log            the log (plain file handler of conf/hydra/job_logging/rich.yaml)
    metrics.csv             one row per metrics read-out, appended and flushed (csv backend)
    tensorboard/            event files of the tensorboard backend (logger.backends)
    weights/<tag>.safetensors   one tensor per connection name ([O, I]); tags: final, batch_000120
    delays/<tag>.safetensors    the same for connections with learned delays
    plots/*.png             histograms, receptive fields, learning curves (runner.plots)
    summary.json            final metrics, written last and atomically: present = completed
    FAILED                  the one-line error of a failed run (instead of summary.json)

Every file a later step trusts is written atomically (:mod:`runner.run_files`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.run_files import (
    FAILED,
    SUMMARY,
    atomic_write,
    current_umask,
    load_tensors,
    plain_open_mode,
    save_tensors,
    write_failed,
    write_json,
    write_summary,
)

METRICS = "metrics.csv"

#: the file writers moved to runner.run_files stay importable from here
__all__ = [
    "FAILED", "METRICS", "SUMMARY", "MetricsWriter", "RunRecorder", "atomic_write",
    "current_umask", "load_tensors", "plain_open_mode", "save_tensors", "write_failed",
    "write_json", "write_summary",
]  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


class MetricsWriter:
    """Appends rows to a CSV file, flushing each row; new columns rewrite the header once.

    The columns are those of the existing file (a resumed run appends to it) or of the first
    row. A row with a new key rewrites the file atomically with the extra column (earlier rows
    get empty cells); a row missing a key leaves its cell empty.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="", encoding="utf-8") as f:
                self.columns = next(csv.reader(f), [])

    def append(self, row: Mapping[str, Any]) -> None:
        new = [k for k in row if k not in self.columns]
        if new:
            self._extend(new)
        with self.path.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in self.columns])
            f.flush()

    def _extend(self, new: list[str]) -> None:
        old_rows: list[dict[str, str]] = []
        if self.path.exists() and self.columns:
            with self.path.open(newline="", encoding="utf-8") as f:
                old_rows = list(csv.DictReader(f))
        self.columns = [*self.columns, *new]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(old_rows)
        atomic_write(self.path, lambda f: f.write(buf.getvalue()), binary=False)

    def drop_after(self, step: int) -> None:
        """Remove rows whose ``step`` is beyond ``step`` (written after a checkpoint)."""
        rows = self.rows()
        keep = [r for r in rows if not r.get("step") or int(float(r["step"])) <= step]
        if len(keep) == len(rows):
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(keep)
        atomic_write(self.path, lambda f: f.write(buf.getvalue()), binary=False)

    def rows(self) -> list[dict[str, str]]:
        """All rows written so far (strings, as in the file)."""
        if not self.path.exists():
            return []
        with self.path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))


class RunRecorder:
    """The run folder of one job: metrics, parameters, plots, summary.

    Args:
        run_dir: the folder (Hydra's ``runtime.output_dir``).
        save_weights: write ``weights/`` and ``delays/`` safetensors.
        plots: write PNG plots under ``plots/``.
        backends: logger backend names (:mod:`runner.tracking`) that receive the metrics rows;
            ``csv`` is ``metrics.csv``.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        save_weights: bool = True,
        plots: bool = True,
        backends: Sequence[str] = ("csv",),
    ) -> None:
        from runner.tracking import Tracker

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsWriter(self.run_dir / METRICS)
        self.save_weights = save_weights
        self.plots = plots
        self.tracker = Tracker.from_names(backends, self.run_dir)

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        """Hand one metrics row (numbers already read from the device) to the backends."""
        self.tracker.log_metrics(row)

    def save_parameters(
        self,
        weights: Mapping[str, Any],
        delays: Mapping[str, Any] | None = None,
        *,
        tag: str = "final",
        image_shape: tuple[int, int] | None = None,
        input_connections: tuple[str, ...] = (),
        initial_delays: Mapping[str, Any] | None = None,
        fixed: Collection[str] = (),
    ) -> list[Path]:
        """Save weights/delays as ``weights/<tag>.safetensors`` (and plots for the final tag).

        Args:
            weights: connection name -> weight tensor ``[O, I]``.
            delays: connection name -> delay tensor ``[O, I]`` (connections with delays only).
            tag: ``final`` or a checkpoint tag such as ``batch_000120``.
            image_shape: ``(H, W)`` of image inputs, for receptive-field plots.
            input_connections: the connections whose inputs are images.
            initial_delays: learned delays at the start of the run (drawn behind the final ones).
            fixed: connections without a learning rule (saved, but not plotted).
        """
        written: list[Path] = []
        delays = delays or {}
        if self.save_weights:
            written.append(save_tensors(self.run_dir / "weights" / f"{tag}.safetensors", weights))
            if delays:
                written.append(save_tensors(self.run_dir / "delays" / f"{tag}.safetensors", delays))
        if self.plots and tag == "final":
            from runner.plots import plot_parameters

            written += plot_parameters(
                self.run_dir / "plots",
                weights,
                delays,
                image_shape=image_shape,
                input_connections=input_connections,
                initial_delays=initial_delays,
                fixed=fixed,
            )
        return written

    def finish(self, metrics: Mapping[str, Any], **info: Any) -> Path:
        """Plot the learning curves, hand the final metrics to the backends, then write
        ``summary.json`` (last)."""
        if self.plots and self.metrics.path.exists():
            from runner.plots import plot_learning_curves

            plot_learning_curves(self.metrics.path, self.run_dir / "plots" / "learning_curves.png")
        self.tracker.finish(metrics, [str(x) for x in info.get("overrides") or []])
        self.tracker.close()
        return write_summary(self.run_dir, metrics, **info)

    def close(self) -> None:
        """Flush and close the backends' files (after a failure too)."""
        self.tracker.close()

    def fail(self, message: str) -> Path:
        """Mark the run as failed with a one-line message."""
        return write_failed(self.run_dir, message)
