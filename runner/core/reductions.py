"""Batch reductions ``R(x, dim) -> Tensor`` (the reduced dimension is dropped).

The trainers call ``R(part, 0)`` on each of the four update parts ``[B, O, I]`` separately, so a
non-linear reduction such as ``amax`` is applied per part, as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Reduction = Callable[[Tensor, int], Tensor]


def batch_mean(x: Tensor, dim: int) -> Tensor:
    """Mean over ``dim``; entries with no spike pair count as zeros (divisor is the batch size)."""
    return torch.mean(x, dim)


def batch_sum(x: Tensor, dim: int) -> Tensor:
    """Sum over ``dim``."""
    return torch.sum(x, dim)


def batch_amax(x: Tensor, dim: int) -> Tensor:
    """Elementwise maximum over ``dim``."""
    return torch.amax(x, dim)


def batch_amin(x: Tensor, dim: int) -> Tensor:
    """Elementwise minimum over ``dim``."""
    return torch.amin(x, dim)


def batch_median(x: Tensor, dim: int) -> Tensor:
    """Lower median over ``dim`` (``torch.median`` semantics)."""
    return torch.median(x, dim).values


REDUCTIONS: dict[str, Reduction] = {
    "mean": batch_mean,
    "sum": batch_sum,
    "amax": batch_amax,
    "amin": batch_amin,
    "median": batch_median,
}

#: Reductions that are linear, so ``R(a) + R(b) == R(a + b)`` (enables the fused fast path).
LINEAR_REDUCTIONS: frozenset[Reduction] = frozenset({batch_mean, batch_sum})
