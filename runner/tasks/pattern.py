"""A pattern hidden in noise (:class:`PatternTask`): detection and arrival-time metrics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner.loop import Batch, Record
from runner.tasks.common import generator_state
from runner.tasks.detection import (
    arrival_times,
    detection_stats,
    select_afferents,
    stats_to_metrics,
)
from runner.tasks.figures import plot_arrivals, plot_detection


class PatternTask:
    """A repeating spatio-temporal pattern in Poisson noise; measures detection by the outputs.

    Metrics per phase (``train_`` prefix while training): ``hit_rate`` (fraction of pattern
    presentations during which some output neuron fired), ``false_alarms_per_s`` (output spikes
    outside pattern windows, per second and per sample), ``latency_ms`` (mean time from onset to
    the first output spike of a hit), ``presentations``. After training also
    ``train_presentations_to_detect``: the presentations seen before the first training batch
    with ``hit_rate >= detect_hit_rate`` and ``false_alarms_per_s <= detect_false_alarms`` (NaN
    if none). After evaluation, with ``connection`` (the trained input -> output connection):
    ``n_selected`` pattern afferents the best output kept (weight >= half its largest weight)
    and the spread (std, ms) of their arrival times (pattern spike time + delay) with the delays
    at the start and now, ``arrival_std_start_ms`` / ``arrival_std_end_ms`` (see
    :func:`arrival_times`).
    """

    record_raster = True

    def __init__(
        self,
        *,
        source: Any,
        n_train: int,
        n_eval: int,
        batch_size: int,
        steps: int,
        dt: float,
        input: str,
        output: str,
        seed: int = 0,
        device: torch.device | str = "cpu",
        connection: Any = None,
        detect_hit_rate: float = 0.9,
        detect_false_alarms: float = 1.0,
    ) -> None:
        self.source, self.n_train, self.n_eval = source, n_train, n_eval
        self.batch_size, self.steps, self.dt = batch_size, steps, dt
        self.input, self.output = input, output
        self.watch: tuple[str, ...] = (output,)
        self.pattern_steps = int(round(source.pattern.shape[0]))
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.connection = connection
        self.detect = (detect_hit_rate, detect_false_alarms)
        self.start = self._parameters()
        self._tally: dict[str, np.ndarray] = {}
        self._output_hits: np.ndarray | None = None
        self.presented = 0.0
        self.detected_at = math.nan
        self.latency_ms = math.nan  # of the last evaluation
        self.history: list[dict[str, Any]] = []

    def _parameters(self) -> dict[str, np.ndarray]:
        """Weights and delays ``[O, I]`` of ``connection`` now, as float64 arrays."""
        conn, out = self.connection, {}  # type: Any, dict[str, np.ndarray]
        if conn is None:
            return out
        out["weight"] = conn.weight.detach().double().cpu().numpy().copy()
        if getattr(conn, "delay", None) is not None:
            out["delay"] = conn.delay.detach().double().cpu().numpy().copy()
        return out

    def n_batches(self, phase: str) -> int:
        count = self.n_train if phase == "train" else self.n_eval
        return (count + self.batch_size - 1) // self.batch_size

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        for _ in range(start, self.n_batches(phase)):
            spikes, onsets = self.source.sample(self.steps, self.batch_size, self.generator)
            yield Batch(spikes, labels=onsets)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        assert batch.labels is not None
        onsets = batch.labels.cpu().numpy()
        raster = record.raster[self.output].cpu().numpy()  # [T, B, O]
        stats = detection_stats(onsets, np.asarray(raster.any(-1)), self.pattern_steps)
        metrics = stats_to_metrics(stats, self.dt)
        if phase == "train":
            self.presented += stats[0]
            hit_ok = metrics["hit_rate"] >= self.detect[0]
            if (
                math.isnan(self.detected_at)
                and hit_ok
                and metrics["false_alarms_per_s"] <= self.detect[1]
            ):
                self.detected_at = self.presented - stats[0]
        else:
            hits = np.array(
                [
                    detection_stats(onsets, raster[..., o], self.pattern_steps)[1]
                    for o in range(raster.shape[-1])
                ]
            )
            self._output_hits = hits if self._output_hits is None else self._output_hits + hits
        self.history.append({"phase": phase, "presented": self.presented, **metrics})
        tally = self._tally.setdefault(phase, np.zeros(5))
        tally += stats

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        stats = self._tally.pop(phase, np.zeros(5))
        prefix = "" if phase == "eval" else "train_"
        out = {prefix + k: float(v) for k, v in stats_to_metrics(stats, self.dt).items()}
        if phase == "train":
            out["train_presentations_to_detect"] = float(self.detected_at)
        else:
            self.latency_ms = out["latency_ms"]
            if self.connection is not None:
                out.update(self.arrival_summary(out["latency_ms"]))
        return out

    def best_output(self) -> int:
        """The output with the most hits in evaluation (0 before any evaluation)."""
        return 0 if self._output_hits is None else int(np.argmax(self._output_hits))

    def arrival_summary(self, latency_ms: float) -> dict[str, float]:
        """Selected afferents of the best output and the spread of their arrival times.

        The arrival of each selected afferent is its latest one at or before the output's mean
        latency ``latency_ms`` (all of them when that is NaN), with the delays at the start and
        at the end of training.
        """
        now, out = self._parameters(), self.best_output()
        mask = self.source.pattern_mask.cpu().numpy()
        pattern = self.source.pattern.cpu().numpy()
        selected = select_afferents(now["weight"][out], mask)
        before = None if math.isnan(latency_ms) else latency_ms
        result = {"n_selected": float(selected.sum())}
        for tag, params in (("start", self.start), ("end", now)):
            delay = params["delay"][out] if "delay" in params else np.zeros(mask.shape)
            times = arrival_times(pattern, selected, delay, self.dt, before)
            result[f"arrival_std_{tag}_ms"] = float(times.std()) if times.size else math.nan
            result[f"delay_mean_{tag}_ms"] = (
                float(delay[selected].mean()) if selected.any() else math.nan
            )
        return result

    def write_figures(self, plot_dir: str | Path) -> list[Path]:
        """``detection.png`` (over training) and, with a connection, ``arrivals.png``."""
        written = [plot_detection(self.history, Path(plot_dir) / "detection.png")]
        if self.connection is not None:
            written.append(
                plot_arrivals(
                    self.start,
                    self._parameters(),
                    self.best_output(),
                    self.source.pattern.cpu().numpy(),
                    self.source.pattern_mask.cpu().numpy(),
                    self.dt,
                    Path(plot_dir) / "arrivals.png",
                    self.latency_ms,
                )
            )
        return written

    def state_dict(self) -> dict[str, Any]:
        """Generator, detection progress and the starting parameters (for an exact resume)."""
        state: dict[str, Any] = {
            "generator": generator_state(self.generator),
            "presented": self.presented,
            "detected_at": self.detected_at,
        }
        if "train" in self._tally:
            state["train_tally"] = torch.from_numpy(self._tally["train"].copy())
        state.update({f"start_{k}": torch.from_numpy(v) for k, v in self.start.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.presented = float(state.get("presented", 0.0))
        self.detected_at = float(state.get("detected_at", math.nan))
        if "train_tally" in state:
            self._tally["train"] = state["train_tally"].double().numpy().copy()
        for key in ("weight", "delay"):
            if f"start_{key}" in state:
                self.start[key] = state[f"start_{key}"].double().numpy().copy()
