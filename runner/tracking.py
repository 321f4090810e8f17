"""Where a run's metrics go: the logger backends of ``logger.backends``.

A backend is an entry of :data:`runner.registry.LOGGERS`: a factory ``factory(run_dir)`` that
returns a :class:`Backend`. ``csv`` (``metrics.csv``) and ``tensorboard`` are built in; W&B,
MLflow and others can come as plugins through the ``stdp_run.loggers`` entry-point group (or
``module:attr``), with no change here.

Backends only see what the loop has already read to the host: the metrics rows (every
``run.log_every`` steps, after each batch and epoch), the parameters at epoch ends (copied to
the CPU once, and only when some backend asks for them), and the final metrics with the run's
overrides. So tracking never adds a device sync to the simulation step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.registry import RegistryError, choices_text

if TYPE_CHECKING:
    from runner.config.schema import StdpRunConfig

#: Row keys that say where a row was taken, not what was measured.
POSITION_KEYS = ("epoch", "batch", "step")


@dataclass
class Snapshot:
    """The network's parameters at one point of a run, on the CPU.

    ``weights`` and ``delays`` map connection names to ``[O, I]`` tensors; ``image_shape`` and
    ``input_connections`` say which weights are receptive fields of ``(H, W)`` images.
    """

    step: int
    weights: Mapping[str, Any]
    delays: Mapping[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int] | None = None
    input_connections: tuple[str, ...] = ()


class Backend:
    """A metrics destination; every method is optional (the defaults do nothing).

    ``requires`` lists the importable modules the backend needs (checked at validation, so a
    missing package is a one-line error before the run). ``wants_parameters`` asks for
    :class:`Snapshot` s at epoch ends.
    """

    requires: tuple[str, ...] = ()
    install_hint: str = ""
    wants_parameters: bool = False

    def log_metrics(self, step: int, row: Mapping[str, Any]) -> None:
        """One metrics row (host numbers), at training step ``step``."""

    def log_parameters(self, snapshot: Snapshot) -> None:
        """Weights and delays at an epoch end."""

    def finish(self, metrics: Mapping[str, Any], overrides: Sequence[str]) -> None:
        """The final metrics of a completed run and the overrides it was started with."""

    def close(self) -> None:
        """Flush and release files (also after a failed run)."""


class CsvBackend(Backend):
    """``metrics.csv`` of the run folder: one row per read-out (:class:`MetricsWriter`)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self._writer: Any = None  # opened at the first row: a resumed run trims the file first

    def log_metrics(self, step: int, row: Mapping[str, Any]) -> None:
        if self._writer is None:
            from runner.record import MetricsWriter

            self._writer = MetricsWriter(self.path)
        self._writer.append(row)


def csv_backend(run_dir: str | Path) -> Backend:
    """Metrics rows in metrics.csv (the run folder's own record; stdp-run report reads it)."""
    return CsvBackend(run_dir)


def tensorboard_backend(run_dir: str | Path) -> Backend:
    """TensorBoard event files in tensorboard/: scalars, histograms, receptive fields, hparams."""
    from runner.tensorboard_backend import TensorBoardBackend

    return TensorBoardBackend(Path(run_dir) / "tensorboard")


def builtin_backends() -> dict[str, Any]:
    """The built-in entries of :data:`runner.registry.LOGGERS`."""
    return {"csv": csv_backend, "tensorboard": tensorboard_backend}


#: What each built-in backend needs installed, checked before a run (plugins check themselves).
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "pip install 'stdp-run[tensorboard]'"),
}


def check_backends(cfg: StdpRunConfig, out: list[str]) -> None:
    """Append one line per unknown backend name or missing package of ``logger.backends``."""
    from runner.registry import LOGGERS

    names = list(cfg.logger.backends)
    for name in names:
        try:
            LOGGERS.get(name)
        except RegistryError as exc:
            out.append(f"logger.backends: {exc}")
            continue
        module, hint = REQUIREMENTS.get(name, ("", ""))
        if module and importlib.util.find_spec(module) is None:
            out.append(f"logger.backends: {name!r} needs the {module} package ({hint})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        out.append(f"logger.backends: {choices_text(repeated)} listed more than once")


class Tracker:
    """Fans the run's records out to its backends."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)

    @classmethod
    def from_names(cls, names: Sequence[str], run_dir: str | Path) -> Tracker:
        """Backends by registry name, each writing under ``run_dir``."""
        from runner.registry import LOGGERS

        return cls([LOGGERS.get(name)(Path(run_dir)) for name in names])

    @property
    def wants_parameters(self) -> bool:
        return any(b.wants_parameters for b in self.backends)

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        step = int(row.get("step") or 0)
        for backend in self.backends:
            backend.log_metrics(step, row)

    def log_parameters(self, snapshot: Snapshot) -> None:
        for backend in self.backends:
            if backend.wants_parameters:
                backend.log_parameters(snapshot)

    def finish(self, metrics: Mapping[str, Any], overrides: Sequence[str]) -> None:
        for backend in self.backends:
            backend.finish(metrics, overrides)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def parse_overrides(overrides: Sequence[str]) -> dict[str, bool | int | float | str]:
    """``key=value`` overrides as hyperparameters: numbers and booleans typed, the rest text.

    Hydra's own settings (``hydra.*``, ``hydra/...``) are left out; ``+``/``++``/``~`` prefixes
    are dropped from the key.
    """
    out: dict[str, bool | int | float | str] = {}
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.lstrip("+~")
        if not sep or not key or key.startswith(("hydra.", "hydra/")):
            continue
        out[key] = _typed(text)
    return out


def _typed(text: str) -> bool | int | float | str:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)  # type: ignore[no-any-return]
        except ValueError:
            pass
    return text
