"""Progress display: a rich bar on a terminal, plain log lines elsewhere.

``run.progress`` chooses: ``rich`` (a live bar), ``plain`` (a log line about every tenth of an
epoch), ``off``, or ``auto``: a rich bar only in a single run (or a basic-launcher multirun) on an
interactive terminal. Under parallel launchers (joblib, submitit) several processes would share
one terminal, and rich's live display is single-process, so ``auto`` logs plain lines there.
rich honours ``TTY_INTERACTIVE=0/1`` to force the terminal detection.

The loop calls::

    with make_progress(mode, epochs=E, batches=B, steps_per_batch=S) as progress:
        for epoch in ...:
            progress.start_epoch(epoch)
            for batch in ...:
                ...
                progress.advance(metrics={"rate_exc": 3.1})   # numbers already on the host
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

log = logging.getLogger("runner.progress")


def parallel_launcher() -> bool:
    """True inside a multirun job launched by anything but Hydra's basic (sequential) launcher."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return False
        hc = HydraConfig.get()
        target = str(hc.launcher.get("_target_", ""))
        return hc.mode == RunMode.MULTIRUN and not target.endswith("BasicLauncher")
    except Exception:  # outside Hydra, or an unusual hydra config: assume a single run
        return False


def resolve_mode(mode: str) -> str:
    """``auto`` -> ``rich`` or ``plain`` (rules in the module docstring); others unchanged."""
    if mode != "auto":
        return mode
    from rich import get_console

    interactive = get_console().is_interactive
    return "rich" if interactive and not parallel_launcher() else "plain"


def _fmt_metrics(metrics: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``k=v`` for ``keys`` (default: the spike rates and accuracies, at most four)."""
    if keys:
        chosen = [k for k in keys if k in metrics]
    else:
        chosen = [k for k in metrics if k.startswith("rate.") or "accuracy" in k][:4]
    parts = []
    for k in chosen:
        v = metrics[k]
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


class Progress:
    """Epoch/batch progress with steps per second and a few metrics (see module docstring).

    Args:
        mode: ``auto``, ``rich``, ``plain`` or ``off``.
        epochs: number of epochs.
        batches: batches per epoch (``task.n_batches("train")``; 0 if unknown: no total shown).
        steps_per_batch: simulation steps per batch (for steps/s).
        metric_keys: metrics to show (default: the first four given).
        plain_every: log a plain line every this many batches (default: ~10 per epoch).
        label: what runs, shown before the bar and the plain lines (e.g. ``group 1/2: 16 jobs``).
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        epochs: int,
        batches: int,
        steps_per_batch: int,
        metric_keys: Sequence[str] = (),
        plain_every: int | None = None,
        label: str = "",
    ) -> None:
        self.mode = resolve_mode(mode)
        self.epochs, self.batches, self.steps_per_batch = epochs, batches, steps_per_batch
        self.metric_keys = tuple(metric_keys)
        self.label = f"{label}: " if label else ""
        self.plain_every = plain_every or max(1, batches // 10)
        self.epoch = 0
        self.batch = 0
        self.steps = 0
        self.metrics: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        self._excluded = 0.0
        self._seen: tuple[int, float] = (0, 0.0)  # the loop's counters at the last batch end
        self._bar: Any = None
        self._epoch_task: Any = None
        self._batch_task: Any = None

    def __enter__(self) -> Progress:
        self._t0, self._excluded = time.perf_counter(), 0.0
        if self.mode == "rich":
            from rich import get_console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                console=get_console(),  # shared with RichHandler: log lines print above
                transient=False,
            )
            self._bar.start()
            self._epoch_task = self._bar.add_task(f"{self.label}epochs", total=self.epochs, info="")
            self._batch_task = self._bar.add_task(
                f"{self.label}batches", total=self.batches or None, info=""
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def steps_per_second(self) -> float:
        """Training steps per second of simulation (compilation and evaluation excluded)."""
        elapsed = time.perf_counter() - self._t0 - self._excluded
        return self.steps / elapsed if elapsed > 0 else 0.0

    def restart_clock(self) -> None:
        """Count steps per second from now (the training batches begin)."""
        self._t0, self._excluded, self.steps = time.perf_counter(), 0.0, 0

    def follow(self, state: Any) -> None:
        """Count steps per second from now, reading the loop's ``state`` (its training steps,
        compile and evaluation seconds) at each :meth:`advance_loop`."""
        self.restart_clock()
        self._seen = (state.train_steps, state.compile_s + state.eval_s)

    def advance_loop(self, state: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """One training batch done: the steps and the non-simulation seconds (compiling,
        evaluating) that ``state`` added since the last call."""
        steps, excluded = state.train_steps, state.compile_s + state.eval_s
        self.advance(
            metrics=metrics, steps=steps - self._seen[0], exclude_s=excluded - self._seen[1]
        )
        self._seen = (steps, excluded)

    def start_epoch(self, epoch: int, batch: int = 0) -> None:
        """Begin epoch ``epoch`` (0-based) at ``batch`` (non-zero when resuming)."""
        self.epoch, self.batch = epoch, batch
        if self._bar is not None:
            self._bar.update(self._epoch_task, completed=epoch)
            self._bar.reset(self._batch_task, total=self.batches or None, completed=batch, info="")

    def advance(
        self,
        *,
        metrics: Mapping[str, Any] | None = None,
        steps: int | None = None,
        exclude_s: float = 0.0,
    ) -> None:
        """One batch done (``steps`` simulation steps, default ``steps_per_batch``);
        ``exclude_s`` seconds of it were not simulation (compiling, evaluating)."""
        self.batch += 1
        self.steps += self.steps_per_batch if steps is None else steps
        self._excluded += exclude_s
        if metrics:
            self.metrics.update(metrics)
        info = (
            f"{self.steps_per_second:,.0f} steps/s {_fmt_metrics(self.metrics, self.metric_keys)}"
        )
        if self._bar is not None:
            self._bar.update(self._batch_task, completed=self.batch, info=info.strip())
            if self.batch == self.batches:
                self._bar.update(self._epoch_task, completed=self.epoch + 1)
        elif self.mode == "plain" and (
            self.batch % self.plain_every == 0 or self.batch == self.batches
        ):
            position = self._position()
            log.info(
                "%sepoch %d/%d batch %s %s",
                self.label,
                self.epoch + 1,
                self.epochs,
                position,
                info.strip(),
            )

    def _position(self) -> str:
        """``17/60 (28%)``, or ``17`` when the total is unknown (never ``17/0 (1700%)``)."""
        if self.batches <= 0:
            return str(self.batch)
        return f"{self.batch}/{self.batches} ({100.0 * self.batch / self.batches:.0f}%)"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_progress(mode: str, **kwargs: Any) -> Progress:
    """A :class:`Progress` (use it as a context manager)."""
    return Progress(mode, **kwargs)
