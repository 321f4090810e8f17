"""What the tasks share: the encoder type, the generator state for checkpoints, the split."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Encoder = Callable[[Tensor, torch.Generator], Tensor]


def generator_state(gen: torch.Generator) -> Tensor:
    """The state of ``gen`` (for checkpoints: restored with ``set_state``)."""
    return gen.get_state()


def split_indices(
    total: int, n_train: int, n_eval: int, holdout: str, split_seed: int
) -> tuple[Tensor, Tensor]:
    """Training and validation sample indices: the last ``n_eval`` (``holdout="tail"``) or a
    random subset fixed by ``split_seed``."""
    if n_train < 1 or n_train + n_eval > total:
        raise ValueError(
            f"n_train={n_train} + n_eval={n_eval} must be between 1 and the {total} samples "
            "of the data set"
        )
    if holdout == "tail":
        order = torch.arange(total)
        return order[:n_train], order[total - n_eval :]
    order = torch.randperm(total, generator=torch.Generator().manual_seed(split_seed))
    return order[:n_train], order[n_train : n_train + n_eval]
