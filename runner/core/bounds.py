"""Parameter-dependent bounds applied when an accumulated update is applied.

With ``P``/``N`` the accumulated positive/negative parts and ``w`` the parameter before the update,
the update is ``U = f_upper(w, P) - f_lower(w, N)`` (an unset side is the identity), followed by
the clamps. ``limit`` is the maximum for an upper bound and the minimum for a lower bound.

| name                    | upper                        | lower                        |
|-------------------------|------------------------------|------------------------------|
| multiplicative          | (max - w) * P                | (w - min) * N                |
| scaled_multiplicative   | (max - w) / range * P        | (w - min) / range * N        |
| power                   | (max - w)**power * P         | (w - min)**power * N         |
| sharp                   | H(max - w) * P               | H(w - min) * N               |

``H(x)`` is 1 for ``x > 0`` and 0 otherwise: a parameter sitting exactly on its limit gets no
update in that direction (as in the reference, whose docstring says otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

BoundFn = Callable[..., Tensor]


def upper_multiplicative(w: Tensor, pos: Tensor, *, limit: float) -> Tensor:
    """Soft bound, steps shrink near the limit: (max - w) * P up and (w - min) * N down."""
    return (limit - w) * pos


def lower_multiplicative(w: Tensor, neg: Tensor, *, limit: float) -> Tensor:
    """Lower side of ``multiplicative``: (w - min) * N."""
    return (w - limit) * neg


def upper_scaled_multiplicative(w: Tensor, pos: Tensor, *, limit: float, range: float) -> Tensor:  # noqa: A002
    """Soft bound over a range: (max - w) / range * P up and (w - min) / range * N down."""
    return (limit - w) / range * pos


def lower_scaled_multiplicative(w: Tensor, neg: Tensor, *, limit: float, range: float) -> Tensor:  # noqa: A002
    """Lower side of ``scaled_multiplicative``: (w - min) / range * N."""
    return (w - limit) / range * neg


def upper_power(w: Tensor, pos: Tensor, *, limit: float, power: float) -> Tensor:
    """Soft bound with an exponent: (max - w)**power * P up and (w - min)**power * N down."""
    return (limit - w) ** power * pos


def lower_power(w: Tensor, neg: Tensor, *, limit: float, power: float) -> Tensor:
    """Lower side of ``power``: (w - min)**power * N."""
    return (w - limit) ** power * neg


def upper_sharp(w: Tensor, pos: Tensor, *, limit: float) -> Tensor:
    """Hard bound: whole steps while short of the limit, none at or past it (H(max - w) * P)."""
    return (limit - w > 0).to(w.dtype) * pos


def lower_sharp(w: Tensor, neg: Tensor, *, limit: float) -> Tensor:
    """Lower side of ``sharp``: H(w - min) * N."""
    return (w - limit > 0).to(w.dtype) * neg


class BoundPair(NamedTuple):
    """The upper and lower form of one bounding rule."""

    upper: BoundFn
    lower: BoundFn


BOUNDS: dict[str, BoundPair] = {
    "multiplicative": BoundPair(upper_multiplicative, lower_multiplicative),
    "scaled_multiplicative": BoundPair(upper_scaled_multiplicative, lower_scaled_multiplicative),
    "power": BoundPair(upper_power, lower_power),
    "sharp": BoundPair(upper_sharp, lower_sharp),
}
