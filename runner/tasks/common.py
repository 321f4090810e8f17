"""What the tasks share: the encoder type and the generator state for checkpoints."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Encoder = Callable[[Tensor, torch.Generator], Tensor]


def generator_state(gen: torch.Generator) -> Tensor:
    """The state of ``gen`` (for checkpoints: restored with ``set_state``)."""
    return gen.get_state()
