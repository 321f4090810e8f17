r"""Max-rate class assignment readout (Diehl & Cook 2015).

Training: for every class c and neuron n accumulate S[c, n] = sum of the spike counts of n over
the training samples labelled c, and M[c] = number of such samples. ``assign`` gives neuron n
the class with the highest mean response,

    a[n] = argmax_c S[c, n] / M[c]        (-1 if n never fired)

(ties go to the lowest class; a class without samples has mean 0). Prediction for a sample with
counts x[n]: the score of class c is the mean count of the neurons assigned to c,

    score[c] = sum_{n: a[n] = c} x[n] / |{n: a[n] = c}|,   -inf if no neuron is assigned to c,

and the prediction is argmax_c score[c], or -1 (abstain, counted as wrong by ``accuracy``) when
the assigned neurons did not fire at all in that sample, so that silent samples are not credited
with a lucky guess.

Time-to-first-spike prediction (``predict_first_spike``, with the same assignments): the class of
the assigned neuron that fired first in the sample, ties going to the one with more spikes (then
the lowest index); -1 when no assigned neuron fired.

All state lives in buffers on the module's device; ``observe``, ``assign``, ``predict`` and
``accuracy`` do not synchronise with the host (``accuracy`` returns a 0-d tensor).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MaxRateClassifier(nn.Module):
    """Max-rate class assignment classifier (equations in the module docstring).

    Args:
        n_neurons: number of neurons N.
        n_classes: number of classes C.
        dtype: dtype of the accumulated counts (float32 by default; sums of integer counts are
            exact up to 2**24).

    Shape:
        observe: counts ``[B, N]`` (spike counts or rates), labels ``[B]`` int in [0, C).
        predict: counts ``[B, N]`` -> ``[B]`` int64 in [-1, C).

    Caution: labels outside [0, C) are not checked (an index error on the CPU, a device-side
    assert on CUDA).

    Attributes:
        class_sums: ``[C, N]`` summed counts S per class.
        class_samples: ``[C]`` number of observed samples M per class.
        assignments: ``[N]`` int64 class of each neuron, -1 until assigned or if never fired.
    """

    class_sums: Tensor
    class_samples: Tensor
    assignments: Tensor

    def __init__(
        self,
        n_neurons: int,
        n_classes: int,
        device: torch.device | str | None = None,
        *,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("n_neurons", n_neurons), ("n_classes", n_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.n_neurons = n_neurons
        self.n_classes = n_classes
        sums = torch.zeros(n_classes, n_neurons, device=device, dtype=dtype)
        self.register_buffer("class_sums", sums)
        self.register_buffer("class_samples", torch.zeros(n_classes, device=device, dtype=dtype))
        self.register_buffer(
            "assignments", torch.full((n_neurons,), -1, device=device, dtype=torch.long)
        )

    @torch.no_grad()
    def reset(self) -> None:
        """Forget everything observed and every assignment."""
        self.class_sums.zero_()
        self.class_samples.zero_()
        self.assignments.fill_(-1)

    @torch.no_grad()
    def observe(self, counts: Tensor, labels: Tensor) -> None:
        """Add a batch of training responses ``[B, N]`` with their labels ``[B]``."""
        if counts.ndim != 2 or counts.shape[1] != self.n_neurons:
            raise ValueError(
                f"counts must have shape [B, {self.n_neurons}], got {list(counts.shape)}"
            )
        if labels.shape != counts.shape[:1]:
            raise ValueError(
                f"labels must have shape [{counts.shape[0]}], got {list(labels.shape)}"
            )
        labels = labels.long()
        self.class_sums.index_add_(0, labels, counts.to(self.class_sums.dtype))
        ones = torch.ones_like(labels, dtype=self.class_samples.dtype)
        self.class_samples.index_add_(0, labels, ones)

    @torch.no_grad()
    def assign(self) -> Tensor:
        """Give every neuron the class of its highest mean response; returns ``assignments``."""
        means = self.class_sums / self.class_samples.clamp_min(1).unsqueeze(1)
        best = means.argmax(dim=0)
        fired = self.class_sums.sum(dim=0) > 0
        self.assignments.copy_(best.masked_fill_(~fired, -1))
        return self.assignments

    @torch.no_grad()
    def predict(self, counts: Tensor) -> Tensor:
        """Class ``[B]`` of each sample from its counts ``[B, N]``; -1 where nothing fired."""
        classes = torch.arange(self.n_classes, device=self.assignments.device)
        dtype = self.class_sums.dtype
        members = (self.assignments.unsqueeze(0) == classes.unsqueeze(1)).to(dtype)  # [C, N]
        counts = counts.to(dtype)
        totals = counts @ members.t()  # [B, C] summed counts per class
        sizes = members.sum(dim=1)
        scores = torch.where(sizes > 0, totals / sizes.clamp_min(1), -torch.inf)
        silent = totals.sum(dim=1) == 0
        return torch.where(silent, -1, scores.argmax(dim=1))

    @torch.no_grad()
    def predict_first_spike(self, latency: Tensor, counts: Tensor) -> Tensor:
        """Class ``[B]`` of the first assigned neuron to fire (``latency [B, N]``: steps before
        its first spike); ties go to more spikes; -1 where no assigned neuron fired."""
        fired = (counts > 0) & (self.assignments >= 0).unsqueeze(0)
        # earliest first, then most spikes: latency * 2^31 - count, exact in float64 for counts
        # below 2^31 and latencies below 2^21 steps (a constant span: no sync with the host)
        order = latency.to(torch.float64) * 2.0**31 - counts.to(torch.float64)
        first = torch.where(fired, order, torch.inf).argmin(dim=1)
        return torch.where(fired.any(dim=1), self.assignments[first], -1)

    @torch.no_grad()
    def accuracy(self, counts: Tensor, labels: Tensor) -> Tensor:
        """Fraction (0-d tensor) of samples whose prediction equals the label."""
        return (self.predict(counts) == labels.to(self.assignments.device)).float().mean()

    def extra_repr(self) -> str:
        return f"n_neurons={self.n_neurons}, n_classes={self.n_classes}"


def confusion_matrix(predicted: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """``[C, C + 1]`` int64 counts: row = true class, column = predicted class; the last column
    counts abstentions (prediction -1)."""
    column = torch.where(predicted < 0, n_classes, predicted).long()
    flat = labels.long().to(column.device) * (n_classes + 1) + column
    counts = torch.bincount(flat, minlength=n_classes * (n_classes + 1))
    return counts.reshape(n_classes, n_classes + 1)
