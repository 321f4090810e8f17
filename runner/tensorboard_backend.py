"""The ``tensorboard`` logger backend: event files under ``<run folder>/tensorboard/``.

It writes with ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` package must be
installed: ``pip install 'stdp-run[tensorboard]'``):

- a scalar per metric of every row the loop reads (tag = the metric name, x = training step);
- at each epoch end, histograms of every connection's weights (``weights/<name>``) and delays
  (``delays/<name>``), and the receptive fields of image inputs as one image per connection
  (``receptive_fields/<name>``, each field scaled to its own maximum);
- at the end, the run's overrides against its final metrics (``final/<metric>``) as
  TensorBoard's hparams summary, so ``tensorboard --logdir <sweep folder>`` compares all jobs of
  a sweep in its HPARAMS tab.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runner.tracking import POSITION_KEYS, Backend, Snapshot, parse_overrides


def fields_image(weight: Any, image_shape: tuple[int, int]) -> np.ndarray:
    """Receptive fields ``[O, H*W]`` as one ``[1, H', W']`` image in [0, 1] (CHW, gray).

    Each field is divided by its own largest weight, so weak and strong neurons both show their
    shape; borders and empty tiles are 0.
    """
    from runner.plots import field_mosaic

    w = np.asarray(
        weight.detach().to("cpu").double().numpy() if hasattr(weight, "detach") else weight
    )
    peak = np.abs(w).max(axis=1, keepdims=True)
    scaled = np.divide(w, peak, out=np.zeros_like(w, dtype=np.float64), where=peak > 0)
    mosaic = np.nan_to_num(field_mosaic(scaled, image_shape), nan=0.0)
    return np.clip(mosaic, 0.0, 1.0)[None].astype(np.float32)


class TensorBoardBackend(Backend):
    """Scalars, histograms, receptive fields and the hparams summary of one run."""

    wants_parameters = True

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None
        self._step = 0

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def log_metrics(self, step: int, row: Mapping[str, Any]) -> None:
        self._step = max(self._step, step)
        for key, value in row.items():
            if key in POSITION_KEYS or not isinstance(value, int | float):
                continue
            self.writer.add_scalar(str(key), float(value), global_step=step)

    def log_parameters(self, snapshot: Snapshot) -> None:
        self._step = max(self._step, snapshot.step)
        for kind, tensors in (("weights", snapshot.weights), ("delays", snapshot.delays)):
            for name, values in tensors.items():
                flat = values.detach().to("cpu").double().flatten()
                finite = flat[flat.isfinite()]
                if finite.numel():
                    self.writer.add_histogram(f"{kind}/{name}", finite, global_step=snapshot.step)
        if snapshot.image_shape is None:
            return
        for name in snapshot.input_connections:
            if name in snapshot.weights:
                image = fields_image(snapshot.weights[name], snapshot.image_shape)
                self.writer.add_image(
                    f"receptive_fields/{name}", image, global_step=snapshot.step, dataformats="CHW"
                )

    def finish(self, metrics: Mapping[str, Any], overrides: Sequence[str]) -> None:
        final = {
            f"final/{k}": float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and math.isfinite(float(v))
        }
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, global_step=self._step)
        hparams = parse_overrides(overrides)
        if not hparams or not final:
            return
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        experiment, start, end = hparams_summary(hparams, final)
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
