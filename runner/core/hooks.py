"""Weight hooks applied between steps or samples: L1 normalisation and clamping, in place.

    normalize_l1_:  W[o, :] <- W[o, :] * target / max(sum_i |W[o, i]|, 1e-12)   (dim=-1)

With dim=-1 on ``[O, I]`` weights every postsynaptic neuron's incoming weights sum (in absolute
value) to ``target``, as in Diehl & Cook (2015), whose 784 inputs are normalised to 78.4. A row
of zeros stays zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from runner.core.stacking import broadcast, replica_numbers

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


class NormalizeL1:
    """A batch hook: scale each postsynaptic neuron's incoming weights to an L1 norm of
    ``target`` (:func:`normalize_l1_` along the inputs).

    An object rather than a closure so that :func:`runner.core.replicas.stack_networks` can
    stack it: in a stacked network ``weight`` is ``[R, O, I]`` and ``target`` a number or an
    ``[R, 1, 1]`` tensor of the replicas' targets.
    """

    def __init__(self, weight: Tensor, target: float | Tensor) -> None:
        ok = isinstance(target, Tensor) or (
            isinstance(target, int | float) and math.isfinite(target)
        )
        if not ok:
            raise ValueError(f"target must be a finite number, got {target!r}")
        self.weight = weight
        self.target = target

    @torch.no_grad()
    def __call__(self) -> None:
        if isinstance(self.target, Tensor):  # the arithmetic of normalize_l1_, per replica
            weight = self.weight.data
            norm = weight.abs().sum(dim=-1, keepdim=True).clamp_min_(_EPS)
            weight.mul_(torch.div(self.target, norm))
        else:
            normalize_l1_(self.weight.data, self.target)

    def stack_replicas(self, solos: Sequence[NormalizeL1]) -> None:
        """Take the R replicas' targets (``weight`` is already the stacked parameter)."""
        target = replica_numbers([float(s.target) for s in solos], like=self.weight)
        self.target = broadcast(target, 3)

    def __repr__(self) -> str:
        return f"NormalizeL1(target={self.target})"
