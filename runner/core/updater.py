"""Accumulate the (positive, negative) update parts of one parameter and apply them.

Every trainer call adds one ``(pos, neg)`` pair (both ``>= 0``; the update is ``+pos - neg``).
When applied (every step, or every k steps), the pairs gathered since the last application are
combined by ``sum`` or ``mean`` (each part separately, over the number of pairs it received),
passed through the parameter-dependent bounds, added, and the clamps run:

    P, N = A(pos_1..n), A(neg_1..n)
    w <- w + f_upper(w, P) - f_lower(w, N)
    w <- clamp(w, clamp_min, clamp_max)

The accumulators are cleared after applying. Nothing happens if nothing was pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import torch
from torch import Tensor, nn

from runner.core.bounds import BOUNDS, BoundFn
from runner.core.stacking import broadcast, replica_numbers

ACCUMULATIONS = ("sum", "mean")


@dataclass(frozen=True)
class Bound:
    """One side of a bound: a rule from :data:`BOUNDS`, its limit and extra kwargs (numbers, or
    ``[R, 1, 1]`` tensors in a stacked network whose replicas differ)."""

    fn: str
    limit: float | Tensor
    kwargs: dict[str, Any] = field(default_factory=dict)

    def side(self, upper: bool) -> BoundFn:
        if self.fn not in BOUNDS:
            raise ValueError(f"unknown bound {self.fn!r}; valid: {', '.join(BOUNDS)}")
        pair = BOUNDS[self.fn]
        return pair.upper if upper else pair.lower


class ParameterUpdater(nn.Module):
    """Accumulator, bounds and clamps of one trained parameter (weights or delays)."""

    param: nn.Parameter
    pos_sum: Tensor
    neg_sum: Tensor

    def __init__(self, param: nn.Parameter) -> None:
        super().__init__()
        object.__setattr__(self, "param", param)  # a reference, not a registered parameter
        self.register_buffer("pos_sum", torch.zeros_like(param.data))
        self.register_buffer("neg_sum", torch.zeros_like(param.data))
        self.n_pos = 0
        self.n_neg = 0
        self._first: tuple[Tensor, Tensor] | None = None
        self.accumulate = "sum"
        self.upper: Bound | None = None
        self.lower: Bound | None = None
        self.clamp_min: float | Tensor | None = None
        self.clamp_max: float | Tensor | None = None

    def configure(
        self,
        *,
        accumulate: str = "sum",
        upper: Bound | None = None,
        lower: Bound | None = None,
        clamp_min: float | None = None,
        clamp_max: float | None = None,
    ) -> ParameterUpdater:
        """Set how pairs are combined, the soft bounds and the hard clamps. Returns ``self``."""
        if accumulate not in ACCUMULATIONS:
            raise ValueError(f"accumulate must be one of {ACCUMULATIONS}, got {accumulate!r}")
        if clamp_min is not None and clamp_max is not None and clamp_min > clamp_max:
            raise ValueError(f"clamp_min {clamp_min} is above clamp_max {clamp_max}")
        for bound, upper_side in ((upper, True), (lower, False)):
            if bound is not None:
                bound.side(upper_side)  # validates the name
        self.accumulate, self.upper, self.lower = accumulate, upper, lower
        self.clamp_min, self.clamp_max = clamp_min, clamp_max
        return self

    def push(self, pos: Tensor, neg: Tensor) -> None:
        """Add one ``(pos, neg)`` pair (both ``>= 0``, shaped like the parameter).

        The first pair after an application is only referenced (no copy); the accumulators are
        written from the second pair on, so the common every-step update touches them never.
        """
        if self.n_pos == 0:
            self._first = (pos, neg)
        elif self._first is not None:  # the second pair: start the sums
            torch.add(self._first[0], pos, out=self.pos_sum)
            torch.add(self._first[1], neg, out=self.neg_sum)
            self._first = None
        else:
            self.pos_sum.add_(pos)
            self.neg_sum.add_(neg)
        self.n_pos += 1
        self.n_neg += 1

    def pending(self) -> bool:
        """True when pairs were pushed since the last application (a host-side count, no sync)."""
        return self.n_pos > 0 or self.n_neg > 0

    def accumulated(self) -> tuple[Tensor, Tensor]:
        """The summed ``(pos, neg)`` pushed since the last application (zeros if none)."""
        if self._first is not None:
            return self._first
        if self.n_pos == 0:
            return torch.zeros_like(self.pos_sum), torch.zeros_like(self.neg_sum)
        return self.pos_sum, self.neg_sum

    def apply_pending(self) -> None:
        """Apply the accumulated update to the parameter, then clear."""
        if not self.pending():
            return
        w = self.param.data
        pos, neg = self.accumulated()
        if self.accumulate == "mean":
            pos = pos / max(self.n_pos, 1)
            neg = neg / max(self.n_neg, 1)
        up = pos if self.upper is None else self._bound(self.upper, True, w, pos)
        down = neg if self.lower is None else self._bound(self.lower, False, w, neg)
        w.add_(up - down)
        if self.clamp_min is not None or self.clamp_max is not None:
            w.clamp_(cast(Any, self.clamp_min), cast(Any, self.clamp_max))
        self.clear()

    @staticmethod
    def _bound(bound: Bound, upper: bool, w: Tensor, part: Tensor) -> Tensor:
        return bound.side(upper)(w, part, limit=bound.limit, **bound.kwargs)

    def clear(self) -> None:
        """Drop the accumulated pairs without applying them (the sums are overwritten later)."""
        self._first = None
        self.n_pos = self.n_neg = 0

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[ParameterUpdater]) -> None:
        """Become the updaters of R replicas: sums ``[R, ...]``, per-replica bounds and clamps."""
        if len({(s.n_pos, s.n_neg, s._first is None) for s in solos}) > 1:
            raise ValueError("replicas must have pushed the same number of pending updates")
        self.pos_sum = torch.stack([s.pos_sum for s in solos])
        self.neg_sum = torch.stack([s.neg_sum for s in solos])
        firsts = [s._first for s in solos]
        if all(f is not None for f in firsts):
            self._first = (
                torch.stack([f[0] for f in firsts if f is not None]),
                torch.stack([f[1] for f in firsts if f is not None]),
            )
        ndim, like = self.pos_sum.dim(), self.pos_sum

        def numbers(values: list[Any]) -> Any:
            return broadcast(replica_numbers(values, like=like), ndim)

        for side in ("upper", "lower"):
            bounds = [getattr(s, side) for s in solos]
            if bounds[0] is not None:
                limit = numbers([b.limit for b in bounds])
                kwargs = {k: numbers([b.kwargs[k] for b in bounds]) for k in bounds[0].kwargs}
                setattr(self, side, replace(bounds[0], limit=limit, kwargs=kwargs))
        low, high = (
            None if getattr(solos[0], key) is None else numbers([getattr(s, key) for s in solos])
            for key in ("clamp_min", "clamp_max")
        )
        if isinstance(low, Tensor) and isinstance(high, float):  # clamp_ takes two of a kind
            high = torch.full_like(low, high)
        if isinstance(high, Tensor) and isinstance(low, float):
            low = torch.full_like(high, low)
        self.clamp_min, self.clamp_max = low, high

    def get_extra_state(self) -> Any:
        first = None if self._first is None else [t.clone() for t in self._first]
        return {"n_pos": self.n_pos, "n_neg": self.n_neg, "first": first}

    def set_extra_state(self, state: Any) -> None:
        self.n_pos, self.n_neg = int(state["n_pos"]), int(state["n_neg"])
        first = state.get("first")
        self._first = (
            None if first is None else (first[0].to(self.pos_sum), first[1].to(self.neg_sum))
        )

    def extra_repr(self) -> str:
        return (
            f"accumulate={self.accumulate}, upper={self.upper}, lower={self.lower}, "
            f"clamp=({self.clamp_min}, {self.clamp_max})"
        )
