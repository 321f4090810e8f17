"""Tasks: what an experiment feeds the network and what it measures.

A task makes the input batches of each phase (``train``/``eval``) and turns the spike record of
each batch into metrics. Metrics are computed on the host after a batch, never inside a step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from runner.loop import Batch, Record

Encoder = Callable[[Tensor, torch.Generator], Tensor]


def _generator_state(gen: torch.Generator) -> Tensor:
    return gen.get_state()


class ImageTask:
    """Rate-coded images (e.g. digits); with ``readout`` a max-rate classifier measures accuracy.

    The train/held-out split is fixed by ``split_seed``; the training order is shuffled per epoch
    from ``seed`` and the epoch number, so it is reproducible without saved state.
    """

    record_raster = False

    def __init__(self, *, images: Tensor, labels: Tensor, n_train: int | None, n_eval: int,
                 batch_size: int, encode: Encoder, input: str, readout: str | None = None,
                 n_classes: int = 10, seed: int = 0, split_seed: int = 1234,
                 device: torch.device | str = "cpu") -> None:
        total = images.shape[0]
        n_train = total - n_eval if n_train is None else n_train
        if n_train < 1 or n_train + n_eval > total:
            raise ValueError(
                f"n_train={n_train} + n_eval={n_eval} must be between 1 and the {total} samples "
                "of the data set"
            )
        order = torch.randperm(total, generator=torch.Generator().manual_seed(split_seed))
        self.train_idx, self.eval_idx = order[:n_train], order[n_train:n_train + n_eval]
        self.images = images.reshape(total, -1).to(device)
        self.labels = labels.to(device)
        self.batch_size, self.encode, self.seed = batch_size, encode, seed
        self.input = input
        self.readout = readout
        self.watch: tuple[str, ...] = (readout,) if readout else ()
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.n_classes = n_classes
        self.device = device
        self._reset_readout()

    def _reset_readout(self) -> None:
        self.classifier: Any = None
        self._eval_counts: list[Tensor] = []
        self._eval_labels: list[Tensor] = []
        self._train_counts: list[Tensor] = []
        self._train_labels: list[Tensor] = []

    def n_batches(self, phase: str) -> int:
        idx = self.train_idx if phase == "train" else self.eval_idx
        return (len(idx) + self.batch_size - 1) // self.batch_size

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train":
            perm = torch.randperm(len(self.train_idx),
                                  generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
            idx = self.train_idx[perm]
        else:
            idx = self.eval_idx
        for b in range(start, self.n_batches(phase)):
            pick = idx[b * self.batch_size:(b + 1) * self.batch_size].to(self.device)
            yield Batch(self.encode(self.images[pick], self.generator), labels=self.labels[pick])

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        if not self.readout or batch.labels is None:
            return
        counts = record.counts[self.readout]
        store = (self._train_counts, self._train_labels) if phase == "train" else (
            self._eval_counts, self._eval_labels)
        store[0].append(counts.clone())
        store[1].append(batch.labels)

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        if not self.readout:
            return {}
        from runner.core.readout import MaxRateClassifier

        if phase == "train":
            if not self._train_counts:
                return {}
            counts, labels = torch.cat(self._train_counts), torch.cat(self._train_labels)
            self.classifier = MaxRateClassifier(counts.shape[1], self.n_classes, device=counts.device)
            self.classifier.observe(counts, labels)
            self.classifier.assign()
            acc = float(self.classifier.accuracy(counts, labels))
            self._train_counts, self._train_labels = [], []
            return {"train_accuracy": acc}
        if self.classifier is None or not self._eval_counts:
            return {}
        counts, labels = torch.cat(self._eval_counts), torch.cat(self._eval_labels)
        self._eval_counts, self._eval_labels = [], []
        return {"accuracy": float(self.classifier.accuracy(counts, labels))}

    def state_dict(self) -> dict[str, Any]:
        """Generator state and this epoch's readout statistics (for an exact resume)."""
        state: dict[str, Any] = {"generator": _generator_state(self.generator)}
        if self._train_counts:
            state["train_counts"] = torch.cat(self._train_counts)
            state["train_labels"] = torch.cat(self._train_labels)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        if "train_counts" in state:
            self._train_counts = [state["train_counts"].to(self.device)]
            self._train_labels = [state["train_labels"].to(self.device)]


class PatternTask:
    """A repeating spatio-temporal pattern in Poisson noise; measures detection by the outputs.

    Metrics per phase: ``hit_rate`` (fraction of pattern presentations during which some output
    neuron fired), ``false_alarms_per_s`` (output spikes outside pattern windows, per second and
    per sample), ``latency_ms`` (mean time from onset to the first output spike of a hit).
    """

    record_raster = True

    def __init__(self, *, source: Any, n_train: int, n_eval: int, batch_size: int, steps: int,
                 dt: float, input: str, output: str, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        self.source, self.n_train, self.n_eval = source, n_train, n_eval
        self.batch_size, self.steps, self.dt = batch_size, steps, dt
        self.input, self.output = input, output
        self.watch = (output,)
        self.pattern_steps = int(round(source.pattern.shape[0]))
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._tally: dict[str, np.ndarray] = {}
        self.history: list[dict[str, float]] = []

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        count = self.n_train if phase == "train" else self.n_eval
        n = (count + self.batch_size - 1) // self.batch_size
        for _ in range(start, n):
            spikes, onsets = self.source.sample(self.steps, self.batch_size, self.generator)
            yield Batch(spikes, labels=onsets)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        assert batch.labels is not None
        fired = record.raster[self.output].any(-1).cpu().numpy()  # [T, B]
        stats = detection_stats(batch.labels.cpu().numpy(), fired, self.pattern_steps)
        self.history.append({"phase": phase, **stats_to_metrics(stats, self.dt)})  # type: ignore[dict-item]
        tally = self._tally.setdefault(phase, np.zeros(5))
        tally += stats

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        stats = self._tally.pop(phase, np.zeros(5))
        prefix = "" if phase == "eval" else "train_"
        return {prefix + k: v for k, v in stats_to_metrics(stats, self.dt).items()}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": _generator_state(self.generator)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())


def detection_stats(onsets: np.ndarray, fired: np.ndarray, window: int) -> np.ndarray:
    """``[presentations, hits, latency_sum_steps, false_alarm_steps, outside_steps]``.

    ``onsets`` and ``fired`` are ``[T, B]`` bool; a presentation occupies ``window`` steps from
    its onset.
    """
    steps, batch = onsets.shape
    inside = np.zeros_like(fired)
    presentations = hits = latency = 0
    for b in range(batch):
        for t0 in np.flatnonzero(onsets[:, b]):
            end = min(t0 + window, steps)
            inside[t0:end, b] = True
            presentations += 1
            spikes = np.flatnonzero(fired[t0:end, b])
            if spikes.size:
                hits += 1
                latency += int(spikes[0])
    outside = ~inside
    return np.array([presentations, hits, latency, (fired & outside).sum(), outside.sum()],
                    dtype=np.float64)


def stats_to_metrics(stats: np.ndarray, dt: float) -> dict[str, float]:
    presentations, hits, latency, false_alarms, outside = stats
    return {
        "hit_rate": hits / presentations if presentations else 0.0,
        "false_alarms_per_s": false_alarms / (outside * dt / 1000.0) if outside else 0.0,
        "latency_ms": latency * dt / hits if hits else float("nan"),
        "presentations": float(presentations),
    }


class SpikeTrainTask:
    """Recorded spike trains: ``pre [T, B, I]`` drives the input, optional ``post`` is imposed."""

    record_raster = False

    def __init__(self, *, pre: Tensor, post: Tensor | None, input: str, output: str | None,
                 watch: tuple[str, ...] = ()) -> None:
        self.pre, self.post = pre, post
        self.input, self.output = input, output
        self.watch = watch

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train" and start == 0:
            drive = {self.output: self.post} if self.post is not None and self.output else {}
            yield Batch(self.pre, drive=drive)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        pass

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
