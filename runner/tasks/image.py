"""Rate-coded images and the accuracy of a max-rate classifier (:class:`ImageTask`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from runner.loop import Batch, Record
from runner.tasks.common import Encoder, generator_state, split_indices
from runner.tasks.image_readout import readout_figures, readout_summary, score

#: The learning-free phases and which samples each reads: training samples (``label``,
#: ``monitor_label``), the held-out validation split (``eval``, ``monitor``) or the test split.
LABEL_PHASES = ("label", "monitor_label")
SCORE_PHASES = ("eval", "monitor", "test")


class ImageTask:
    """Rate-coded images (e.g. digits); with ``readout`` a max-rate classifier measures accuracy.

    Splits: ``n_train`` training and ``n_eval`` validation samples of ``images`` (``holdout``
    ``random``: a random subset fixed by ``split_seed``; ``tail``: the last ``n_eval`` samples,
    as the MNIST training file's conventional 50,000 / 10,000 split), and optionally a separate
    test split (``test_images``). The training order is shuffled per epoch from ``seed`` and the
    epoch number, so it is reproducible without saved state.

    Readout (``readout`` names the population): neurons get the class of their highest mean
    response (:class:`~runner.core.readout.MaxRateClassifier`), either from the responses
    recorded while learning (``assign_from="training"``, the classic protocol) or from a
    learning-free pass over ``assign_samples`` training samples after training
    (``assign_from="frozen"``). Validation gives ``accuracy`` (max-rate) and ``accuracy_ttfs``
    (the first neuron to fire); the test split ``test_accuracy`` and ``test_accuracy_ttfs``.
    With ``monitor_samples`` the monitor phases score that many validation samples during
    training (the loop runs them every ``run.eval_every`` samples): ``val_accuracy`` against
    the samples seen, kept in ``curve``.

    Learning-free phases run at ``eval_batch_size`` and draw their spikes from a generator
    seeded per phase, so they neither perturb the training input nor vary between runs.
    """

    record_raster = False
    record_latency = True

    def __init__(
        self,
        *,
        images: Tensor,
        labels: Tensor,
        n_train: int | None,
        n_eval: int,
        batch_size: int,
        encode: Encoder,
        input: str,
        readout: str | None = None,
        n_classes: int = 10,
        seed: int = 0,
        split_seed: int = 1234,
        holdout: str = "random",
        test_images: Tensor | None = None,
        test_labels: Tensor | None = None,
        eval_batch_size: int | None = None,
        assign_from: str = "training",
        assign_samples: int | None = None,
        monitor_samples: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        total = images.shape[0]
        n_train = total - n_eval if n_train is None else n_train
        self.train_idx, self.eval_idx = split_indices(total, n_train, n_eval, holdout, split_seed)
        self.images = images.reshape(total, -1).to(device)
        self.labels = labels.to(device)
        self.test_images = None if test_images is None else test_images.reshape(
            test_images.shape[0], -1
        ).to(device)  # fmt: skip
        self.test_labels = None if test_labels is None else test_labels.to(device)
        self.batch_size, self.encode, self.seed = batch_size, encode, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.input = input
        self.readout = readout
        self.watch: tuple[str, ...] = (readout,) if readout else ()
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.n_classes = n_classes
        self.device = device
        self.assign_from = assign_from
        self.n_label = min(assign_samples or n_train, n_train)
        self.n_monitor = min(monitor_samples, len(self.eval_idx)) if readout else 0
        self.curve: list[tuple[int, float]] = []  # (training samples seen, val_accuracy)
        self.samples_seen = 0
        self.reports: dict[str, dict[str, Any]] = {}  # per scored phase: confusion, per class
        self._reset_readout()

    # ------------------------------------------------------------------------------ phases
    @property
    def eval_phases(self) -> tuple[str, ...]:
        """After each epoch: a frozen labelling pass (if so configured), validation, test."""
        phases = ["label"] if self.readout and self.assign_from == "frozen" else []
        if len(self.eval_idx) > 0:
            phases.append("eval")
        if self.test_images is not None and self.test_images.shape[0] > 0:
            phases.append("test")
        return tuple(phases)

    @property
    def monitor_phases(self) -> tuple[str, ...]:
        """Every ``eval_every`` training samples: labels (frozen mode), then a validation subset."""
        if not self.n_monitor:
            return ()
        return ("monitor_label", "monitor") if self.assign_from == "frozen" else ("monitor",)

    def _phase_samples(self, phase: str) -> tuple[Tensor, Tensor]:
        """Images and labels a learning-free phase reads."""
        if phase == "test":
            assert self.test_images is not None and self.test_labels is not None
            return self.test_images, self.test_labels
        if phase in LABEL_PHASES:
            count = self.n_label if phase == "label" else min(self.n_label, self.n_monitor)
            idx = self.train_idx[:count]
        else:
            idx = self.eval_idx[: self.n_monitor] if phase == "monitor" else self.eval_idx
        idx = idx.to(self.images.device)
        return self.images[idx], self.labels[idx]

    def n_batches(self, phase: str) -> int:
        if phase == "train":
            return (len(self.train_idx) + self.batch_size - 1) // self.batch_size
        count = self._phase_samples(phase)[1].shape[0]
        return (count + self.eval_batch_size - 1) // self.eval_batch_size

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train":
            perm = torch.randperm(
                len(self.train_idx),
                generator=torch.Generator().manual_seed(self.seed * 1000 + epoch),
            )
            idx = self.train_idx[perm]
            for b in range(start, self.n_batches(phase)):
                pick = idx[b * self.batch_size : (b + 1) * self.batch_size].to(self.device)
                yield Batch(
                    self.encode(self.images[pick], self.generator), labels=self.labels[pick]
                )
            return
        images, labels = self._phase_samples(phase)
        gen = torch.Generator(device=self.device).manual_seed(
            self.seed * 7919 + zlib.crc32(phase.encode())
        )
        size = self.eval_batch_size
        for b in range(start, self.n_batches(phase)):
            part = slice(b * size, (b + 1) * size)
            yield Batch(self.encode(images[part], gen), labels=labels[part])

    # ----------------------------------------------------------------------------- readout
    def _reset_readout(self) -> None:
        self.classifier: Any = None
        self._monitor_classifier: Any = None
        self._store: dict[str, list[tuple[Tensor, Tensor, Tensor | None]]] = {}

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        if phase == "train":
            self.samples_seen += batch.spikes.shape[1]
        if not self.readout or batch.labels is None:
            return
        if phase == "train" and self.assign_from == "frozen":
            return  # the labels come from the frozen pass
        counts = record.counts[self.readout]
        latency = record.latency.get(self.readout)
        self._store.setdefault(phase, []).append(
            (counts.clone(), batch.labels, None if latency is None else latency.clone())
        )

    def _stored(
        self, phase: str, *, keep: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None] | None:
        """Counts, labels and (if every batch recorded them) latencies stored in ``phase``;
        removed from the store unless ``keep``."""
        parts = self._store.get(phase, []) if keep else self._store.pop(phase, [])
        if not parts:
            return None
        latency = [p[2] for p in parts if p[2] is not None]
        return (
            torch.cat([p[0] for p in parts]),
            torch.cat([p[1] for p in parts]),
            torch.cat(latency) if len(latency) == len(parts) else None,
        )

    def _fit(self, counts: Tensor, labels: Tensor) -> Any:
        from runner.core.readout import MaxRateClassifier

        classifier = MaxRateClassifier(counts.shape[1], self.n_classes, device=counts.device)
        classifier.observe(counts, labels)
        classifier.assign()
        return classifier

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        if not self.readout:
            return {}
        if phase == "train":
            train = self._peek("train") if self.assign_from == "training" else None
            self._store.pop("train", None)
            if train is None:
                return {}
            self.classifier = self._fit(train[0], train[1])
            return {"train_accuracy": float(self.classifier.accuracy(train[0], train[1]))}
        data = self._stored(phase)
        if data is None:
            return {}
        counts, labels, latency = data
        if phase in LABEL_PHASES:
            classifier = self._fit(counts, labels)
            if phase == "label":
                self.classifier = classifier
                return {"train_accuracy": float(classifier.accuracy(counts, labels))}
            self._monitor_classifier = classifier
            return {}
        classifier = self.classifier
        if phase == "monitor":
            classifier = self._monitor_classifier if self.assign_from == "frozen" else None
            if classifier is None:
                train = self._peek("train")
                if train is None:
                    return {}
                classifier = self._fit(train[0], train[1])
            accuracy = float(classifier.accuracy(counts, labels))
            self.curve.append((self.samples_seen, accuracy))
            return {"samples": float(self.samples_seen), "val_accuracy": accuracy}
        if classifier is None:
            return {}
        return self._score(phase, classifier, counts, labels, latency)

    def _peek(self, phase: str) -> tuple[Tensor, Tensor] | None:
        """The counts and labels stored so far in ``phase`` (kept)."""
        data = self._stored(phase, keep=True)
        return None if data is None else (data[0], data[1])

    def _score(
        self, phase: str, classifier: Any, counts: Tensor, labels: Tensor, latency: Tensor | None
    ) -> dict[str, float]:
        """Accuracies of ``phase`` (validation or test); its report for the summary."""
        metrics, report = score(phase, classifier, counts, labels, latency, self.n_classes)
        self.reports["test" if phase == "test" else "validation"] = report
        return metrics

    # ---------------------------------------------------------------- summary and figures
    def summary(self) -> dict[str, Any]:
        """Extra entries of summary.json: per-class accuracy, confusion matrices, the curve."""
        return readout_summary(self.reports, self.curve)

    def write_figures(self, plot_dir: str | Path) -> list[Path]:
        """Confusion matrices of validation/test, and validation accuracy against samples seen."""
        return readout_figures(self.reports, self.curve, Path(plot_dir))

    # ------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Generator state, this epoch's training responses and the curve (for a resume)."""
        state: dict[str, Any] = {
            "generator": generator_state(self.generator),
            "samples_seen": self.samples_seen,
            "curve": torch.tensor(self.curve, dtype=torch.float64).reshape(-1, 2),
        }
        train = self._peek("train")
        if train is not None:
            state["train_counts"], state["train_labels"] = train
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.samples_seen = int(state.get("samples_seen", 0))
        self.curve = [(int(n), float(a)) for n, a in state.get("curve", torch.zeros(0, 2))]
        if "train_counts" in state:
            counts = state["train_counts"].to(self.device)
            self._store["train"] = [(counts, state["train_labels"].to(self.device), None)]
