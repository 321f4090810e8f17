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

Everything a later step trusts (summary.json, safetensors, rewritten CSVs) goes through
:func:`atomic_write`: write a temporary file in the same folder, flush and fsync, then
``os.replace`` it over the target, so a reader never sees a half-written file. The file gets the
mode a plain ``open()`` would give it (``0o666 & ~umask``, or the mode of the file it replaces),
so colleagues sharing a folder can read the results as the umask intends.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

SUMMARY = "summary.json"
FAILED = "FAILED"
METRICS = "metrics.csv"


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux's
    ``/proc/self/status``); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_open_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: those of the existing file, else
    ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:  # no such file (yet)
        return 0o666 & ~current_umask()


def atomic_write(
    path: str | Path, write_fn: Callable[[IO[Any]], object], *, binary: bool = False
) -> Path:
    """Write ``path`` atomically: ``write_fn(f)`` fills a temp file that then replaces ``path``.

    The temp file (``mkstemp`` makes it 0600) gets the mode of :func:`plain_open_mode` before
    it is renamed, so the result is as readable as a plainly written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_open_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        f: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with f:
            os.chmod(tmp, mode)
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf become None, tensors and numpy scalars become numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Atomically write ``data`` as indented JSON (NaN/inf as null)."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda f: f.write(text))


def write_summary(run_dir: str | Path, metrics: Mapping[str, Any], **info: Any) -> Path:
    """Write ``summary.json`` (status completed, the final metrics, extra info) atomically."""
    return write_json(Path(run_dir) / SUMMARY, {"status": "completed", **info, "metrics": metrics})


def write_failed(run_dir: str | Path, message: str) -> Path:
    """Write the ``FAILED`` marker with the one-line error."""
    line = " ".join(message.split()) if message else "failed"
    return atomic_write(Path(run_dir) / FAILED, lambda f: f.write(line + "\n"))


def save_tensors(
    path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> Path:
    """Save named tensors as safetensors (moved to the CPU, made contiguous) atomically."""
    from safetensors.torch import save

    data = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    blob = save(data, metadata=dict(metadata) if metadata else None)
    return atomic_write(path, lambda f: f.write(blob), binary=True)


def load_tensors(path: str | Path) -> dict[str, Any]:
    """Load a safetensors file written by :func:`save_tensors` (CPU tensors)."""
    from safetensors.torch import load_file

    return load_file(str(path))


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
