"""Rate-coded images and the accuracy of a max-rate classifier (:class:`ImageTask`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from runner.loop import Batch, Record
from runner.tasks.common import Encoder, generator_state


class ImageTask:
    """Rate-coded images (e.g. digits); with ``readout`` a max-rate classifier measures accuracy.

    The train/held-out split is fixed by ``split_seed``; the training order is shuffled per epoch
    from ``seed`` and the epoch number, so it is reproducible without saved state.
    """

    record_raster = False

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
        device: torch.device | str = "cpu",
    ) -> None:
        total = images.shape[0]
        n_train = total - n_eval if n_train is None else n_train
        if n_train < 1 or n_train + n_eval > total:
            raise ValueError(
                f"n_train={n_train} + n_eval={n_eval} must be between 1 and the {total} samples "
                "of the data set"
            )
        order = torch.randperm(total, generator=torch.Generator().manual_seed(split_seed))
        self.train_idx, self.eval_idx = order[:n_train], order[n_train : n_train + n_eval]
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
            perm = torch.randperm(
                len(self.train_idx),
                generator=torch.Generator().manual_seed(self.seed * 1000 + epoch),
            )
            idx = self.train_idx[perm]
        else:
            idx = self.eval_idx
        for b in range(start, self.n_batches(phase)):
            pick = idx[b * self.batch_size : (b + 1) * self.batch_size].to(self.device)
            yield Batch(self.encode(self.images[pick], self.generator), labels=self.labels[pick])

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        if not self.readout or batch.labels is None:
            return
        counts = record.counts[self.readout]
        store = (
            (self._train_counts, self._train_labels)
            if phase == "train"
            else (self._eval_counts, self._eval_labels)
        )
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
            self.classifier = MaxRateClassifier(
                counts.shape[1], self.n_classes, device=counts.device
            )
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
        state: dict[str, Any] = {"generator": generator_state(self.generator)}
        if self._train_counts:
            state["train_counts"] = torch.cat(self._train_counts)
            state["train_labels"] = torch.cat(self._train_labels)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        if "train_counts" in state:
            self._train_counts = [state["train_counts"].to(self.device)]
            self._train_labels = [state["train_labels"].to(self.device)]
