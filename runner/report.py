"""Tables of final metrics across a run or a sweep (``stdp-run report``, sweep summaries).

A job folder is one that holds ``.hydra/``, ``summary.json`` or ``FAILED``. Its status is
``completed`` (``summary.json``), ``failed`` (``FAILED``, with the one-line error) or
``incomplete`` (neither: still running, killed, or failed before the marker was written).
The metrics are the ``metrics`` object of ``summary.json``; the overrides come from
``.hydra/overrides.yaml``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner.record import FAILED, SUMMARY, atomic_write

log = logging.getLogger("runner.report")
SWEEP_SUMMARY = "sweep_summary.csv"


@dataclass
class JobRow:
    """One job of a run or sweep."""

    job: str
    status: str
    overrides: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _is_job(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / SUMMARY).is_file() or (path / FAILED).is_file()


def _natural(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.as_posix())]


def find_jobs(root: str | Path, *, max_depth: int = 3) -> list[Path]:
    """``root`` itself if it is a job folder, else the job folders below it (natural order)."""
    root = Path(root)
    if _is_job(root):
        return [root]
    found: list[Path] = []
    frontier = [root]
    for _ in range(max_depth):
        nxt: list[Path] = []
        for folder in frontier:
            for child in sorted(
                p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
            ):
                (found if _is_job(child) else nxt).append(child)
        frontier = nxt
    return sorted(found, key=_natural)


def _overrides(job: Path) -> str:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ""
    from omegaconf import OmegaConf

    try:
        items = OmegaConf.load(path)
    except Exception:  # an unreadable file only loses the column
        return ""
    return " ".join(str(x) for x in items) if isinstance(items, Iterable) else ""


def read_job(job: Path, root: Path) -> JobRow:
    """The row of one job folder."""
    name = job.relative_to(root).as_posix() if job != root else job.name
    row = JobRow(job=name or ".", status="incomplete", overrides=_overrides(job))
    summary = job / SUMMARY
    if summary.is_file():
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
            row.status = str(data.get("status", "completed"))
            row.metrics = dict(data.get("metrics") or {})
        except (OSError, ValueError) as exc:
            row.status, row.error = "failed", f"unreadable {SUMMARY}: {exc}"
    elif (job / FAILED).is_file():
        row.status = "failed"
        row.error = (job / FAILED).read_text(encoding="utf-8").strip()
    return row


def collect(root: str | Path) -> list[JobRow]:
    """Rows of every job under ``root`` (a run folder or a sweep folder)."""
    root = Path(root)
    return [read_job(job, root) for job in find_jobs(root)]


def metric_keys(rows: Sequence[JobRow]) -> list[str]:
    """The union of the metric names, in first-seen order."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row.metrics))
    return list(keys)


def sort_rows(rows: Sequence[JobRow], key: str | None, *, descending: bool = False) -> list[JobRow]:
    """Completed rows sorted by metric ``key`` (missing/NaN values last), then the others."""
    if key is None:
        return list(rows)

    def value(row: JobRow) -> float:
        v = row.metrics.get(key)
        return float(v) if isinstance(v, int | float) and not math.isnan(v) else math.nan

    with_value = [r for r in rows if not math.isnan(value(r))]
    without = [r for r in rows if math.isnan(value(r))]
    with_value.sort(key=value, reverse=descending)
    return with_value + without


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def to_csv_text(rows: Sequence[JobRow]) -> str:
    """CSV with columns job, status, overrides, every metric, error."""
    keys = metric_keys(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["job", "status", "overrides", *keys, "error"])
    for r in rows:
        writer.writerow(
            [r.job, r.status, r.overrides, *(r.metrics.get(k, "") for k in keys), r.error]
        )
    return buf.getvalue()


def write_csv(rows: Sequence[JobRow], path: str | Path) -> Path:
    """Write the table as CSV atomically."""
    text = to_csv_text(rows)
    return atomic_write(path, lambda f: f.write(text))


def render_table(rows: Sequence[JobRow], *, title: str = "") -> Any:
    """A rich Table of the rows (failed jobs show their error)."""
    from rich.table import Table

    keys = metric_keys(rows)
    table = Table(title=title or None)
    for col in ("job", "status", "overrides", *keys):
        table.add_column(col, overflow="fold", justify="right" if col in keys else "left")
    if any(r.error for r in rows):
        table.add_column("error", overflow="fold")
    for r in rows:
        style = {"failed": "red", "incomplete": "yellow"}.get(r.status)
        cells = [r.job, r.status, r.overrides, *(_cell(r.metrics.get(k)) for k in keys)]
        if any(x.error for x in rows):
            cells.append(r.error)
        table.add_row(*cells, style=style)
    return table


def summarize_sweep(sweep_dir: str | Path) -> list[JobRow]:
    """Write ``sweep_summary.csv`` in ``sweep_dir`` from its jobs; return the rows."""
    rows = collect(sweep_dir)
    if rows:
        write_csv(rows, Path(sweep_dir) / SWEEP_SUMMARY)
    return rows


#: The folder of the sweep running in this process, from its start until its table is printed.
_running_sweep: list[Path] = []


def print_sweep_table(sweep_dir: Path) -> None:
    """Write ``sweep_summary.csv`` and print the sweep's table (failed jobs marked failed)."""
    rows = summarize_sweep(sweep_dir)
    if not rows:
        return
    from rich import get_console

    get_console().print(render_table(rows, title=f"sweep {sweep_dir}"))
    log.info("sweep summary: %s", sweep_dir / SWEEP_SUMMARY)


def print_unfinished_sweep() -> None:
    """The table of a sweep that stopped on a failed job (Hydra skips ``on_multirun_end``)."""
    while _running_sweep:
        sweep_dir = _running_sweep.pop()
        try:
            print_sweep_table(sweep_dir)
        except Exception as exc:  # the table must never hide the job's own error
            log.warning("could not print the sweep summary: %s", exc)


class SweepSummaryCallback(Callback):
    """Hydra callback: keep ``sweep_summary.csv`` of a multirun up to date and print it at the end.

    The table is rewritten after each job (so it exists even if a job fails, when Hydra skips
    ``on_multirun_end``) and printed when the sweep ends; when a failed job ends the sweep
    early, the CLI prints it (:func:`print_unfinished_sweep`). It also creates the sweep folder
    before the sweeper starts, so that a search can keep its Optuna study there.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # a search stores its study there
        _running_sweep.append(sweep_dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        try:
            hc = HydraConfig.get()
            if hc.mode == RunMode.MULTIRUN:
                summarize_sweep(hc.sweep.dir)
        except Exception as exc:  # a summary must never fail a job
            log.warning("could not update the sweep summary: %s", exc)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _running_sweep.clear()
        print_sweep_table(Path(str(config.hydra.sweep.dir)))
