"""Weight hooks applied between steps or samples: L1 normalisation and clamping, in place.

    normalize_l1_:  W[o, :] <- W[o, :] * target / max(sum_i |W[o, i]|, 1e-12)   (dim=-1)

With dim=-1 on ``[O, I]`` weights every postsynaptic neuron's incoming weights sum (in absolute
value) to ``target``, as in Diehl & Cook (2015), whose 784 inputs are normalised to 78.4. A row
of zeros stays zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_EPS = 1e-12


@torch.no_grad()
def normalize_l1_(weight: Tensor, target: float, dim: int = -1) -> Tensor:
    """Scale ``weight`` in place so that its L1 norm along ``dim`` equals ``target``.

    Args:
        weight: e.g. ``[O, I]`` connection weights (a parameter or a plain tensor).
        target: the L1 norm wanted, finite.
        dim: the dimension summed over (-1: the inputs of each postsynaptic neuron).

    Returns:
        ``weight`` itself.
    """
    if not (isinstance(target, int | float) and math.isfinite(target)):
        raise ValueError(f"target must be a finite number, got {target!r}")
    norm = weight.abs().sum(dim=dim, keepdim=True).clamp_min_(_EPS)
    weight.mul_(torch.div(target, norm))
    return weight


@torch.no_grad()
def clamp_(
    param: Tensor, min: float | Tensor | None = None, max: float | Tensor | None = None
) -> Tensor:
    """Clamp ``param`` in place to [min, max] (either may be None: no bound on that side).

    ``min``/``max`` may be tensors broadcastable to ``param`` (per-synapse bounds). Returns
    ``param``.
    """
    if isinstance(min, int | float) and isinstance(max, int | float) and min > max:
        raise ValueError(f"min must be <= max, got min={min!r}, max={max!r}")
    if min is not None:
        param.clamp_min_(min)
    if max is not None:
        param.clamp_max_(max)
    return param
