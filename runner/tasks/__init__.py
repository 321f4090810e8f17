"""Tasks: what an experiment feeds the network and what it measures.

A task makes the input batches of each phase (``train``/``eval``) and turns the spike record of
each batch into metrics. Metrics are computed on the host after a batch, never inside a step.
A task may also draw its own figures into the run folder (``write_figures(plot_dir)``).

- :class:`ImageTask`: rate-coded images, accuracy of a max-rate classifier.
- :class:`PatternTask`: a pattern hidden in noise; hit rate, false alarms, latency, and how the
  arrival times (spike time + delay) of the learned pattern afferents change.
- :class:`SpikeTrainTask`: given spike trains (a pairing protocol, an npz file); with a pairing
  it measures the weight change against the kernel (:func:`pairing_metrics`).
"""

from runner.tasks.common import Encoder
from runner.tasks.detection import (
    arrival_times,
    detection_stats,
    select_afferents,
    stats_to_metrics,
)
from runner.tasks.figures import plot_arrivals, plot_detection, plot_window
from runner.tasks.image import ImageTask
from runner.tasks.pairing import SpikeTrainTask, pair_differences, pairing_metrics
from runner.tasks.pattern import PatternTask

__all__ = [
    "Encoder",
    "ImageTask",
    "PatternTask",
    "SpikeTrainTask",
    "arrival_times",
    "detection_stats",
    "pair_differences",
    "pairing_metrics",
    "plot_arrivals",
    "plot_detection",
    "plot_window",
    "select_afferents",
    "stats_to_metrics",
]
