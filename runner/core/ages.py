"""Spike ages: the time since the most recent spike of each element.

The age is NaN before the first spike, 0 on the step of a spike, and otherwise grows by ``dt``
per step by repeated floating-point addition in the buffer's dtype (as the reference does: after
1000 steps of dt = 0.1 in float32 the age is 99.99905, not 100). NaN ages make kernels NaN, which
the trainers count as "no pair" (a zero contribution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from runner.core.stacking import fold


class SpikeAges(nn.Module):
    """Ages ``[*shape]`` of a spiking population (or of synapses), updated in place.

    Args:
        shape: the state shape, batch first (e.g. ``(B, N)`` or ``(B, O, I)``).
        dt: step length in ms.
    """

    age: Tensor

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        dt: float,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dt = float(dt)
        self.register_buffer("age", torch.full(shape, math.nan, device=device, dtype=dtype))

    def observe(self, spikes: Tensor) -> Tensor:
        """Advance by one step: ``age = 0 where spikes else age + dt``. Returns the ages."""
        self.age.add_(self.dt).masked_fill_(spikes, 0.0)
        return self.age

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate for ``batch_size`` samples (the first dimension), all ages NaN."""
        shape = (int(batch_size), *self.age.shape[1:])
        self.age = torch.full(shape, math.nan, device=self.age.device, dtype=self.age.dtype)

    def reset_state(self) -> None:
        """Forget all spikes (ages back to NaN), e.g. between samples."""
        self.age.fill_(math.nan)

    def stack_replicas(self, solos: Sequence[SpikeAges]) -> None:
        """Become the ages of R replicas side by side, ``[R*B, ...]``."""
        self.age = torch.cat([s.age for s in solos])

    def extra_repr(self) -> str:
        return f"shape={tuple(self.age.shape)}, dt={self.dt}"


class SpikeBits(nn.Module):
    """The last ``length`` (at most 31) steps of spikes ``[B, N]``, one bit per step.

    Bit ``k`` of ``bits[b, n]`` is the spike of element ``n`` ``k`` steps ago (bit 0: newest).
    The same answers as a bool :class:`History`, but reading a lag is a shift and a mask per
    synapse (vector code) instead of an index computation and a gather.
    """

    bits: Tensor
    MAX_LENGTH = 31

    def __init__(
        self, batch_size: int, n: int, length: int, *, device: torch.device | str | None = None
    ) -> None:
        super().__init__()
        if not 1 <= length <= self.MAX_LENGTH:
            raise ValueError(f"length must be in [1, {self.MAX_LENGTH}] steps, got {length}")
        self.length = int(length)
        self.mask = (1 << self.length) - 1
        self.register_buffer("bits", torch.zeros(batch_size, n, dtype=torch.int32, device=device))

    def push(self, value: Tensor) -> None:
        """Store spikes ``value [B, N]`` (bool) as the newest entry."""
        self.bits.bitwise_left_shift_(1).bitwise_or_(value.to(torch.int32)).bitwise_and_(self.mask)

    def gather(self, lag: Tensor) -> Tensor:
        """Spikes ``lag[o, i]`` steps ago (0 = newest) of element ``i``: ``[B, O, N]`` bool.

        Stacked replicas: lags ``[R, O, N]`` give ``[R, B, O, N]``.
        """
        if lag.dim() == 3:
            bits = fold(self.bits, lag.shape[0]).unsqueeze(2)
            shifted = bits.bitwise_right_shift(lag.to(torch.int32).unsqueeze(1))
        else:
            shifted = self.bits.unsqueeze(1).bitwise_right_shift(lag.to(torch.int32))
        return shifted.bitwise_and(1).bool()

    def reset_state(self) -> None:
        """No spikes in flight."""
        self.bits.zero_()

    def stack_replicas(self, solos: Sequence[SpikeBits]) -> None:
        """Become the spikes of R replicas side by side, ``[R*B, N]``."""
        self.bits = torch.cat([s.bits for s in solos])


class History(nn.Module):
    """A ring buffer of the last ``length`` values of a ``[B, N]`` state, stored as ``[B, L, N]``.

    The write position is a device tensor, so pushing and reading never sync with the host.
    Slot ``k`` steps ago is read with :meth:`gather` for per-synapse lags ``k [O, N]``.
    """

    data: Tensor
    cursor: Tensor
    _columns: Tensor

    def __init__(
        self,
        batch_size: int,
        n: int,
        length: int,
        *,
        fill: float | bool,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.length = int(length)
        self.fill = fill
        self.register_buffer(
            "data", torch.full((batch_size, self.length, n), fill, device=device, dtype=dtype)
        )
        self.register_buffer("cursor", torch.zeros((), dtype=torch.long, device=device))
        self.register_buffer(
            "_columns", torch.arange(n, device=device, dtype=torch.long), persistent=False
        )

    def push(self, value: Tensor) -> None:
        """Store ``value [B, N]`` as the newest entry."""
        self.cursor.add_(1).remainder_(self.length)
        self.data.index_copy_(1, self.cursor.view(1), value.unsqueeze(1).to(self.data.dtype))

    def gather(self, lag: Tensor) -> Tensor:
        """Entries ``lag[o, i]`` steps ago (0 = newest) of element ``i``: ``[B, O, N]``.

        Stacked replicas: lags ``[R, O, N]`` give ``[R, B, O, N]``.
        """
        slot = torch.remainder(self.cursor - lag, self.length)
        flat = slot * self.data.shape[2] + self._columns
        if lag.dim() == 3:
            replicas = lag.shape[0]
            data = self.data.reshape(replicas, -1, self.data.shape[1] * self.data.shape[2])
            index = flat.reshape(replicas, 1, -1).expand(-1, data.shape[1], -1)
            return data.gather(2, index).view(replicas, data.shape[1], *lag.shape[1:])
        batch = self.data.shape[0]
        picked = self.data.reshape(batch, -1).index_select(1, flat.reshape(-1))
        return picked.view(batch, *lag.shape)

    def reset_state(self) -> None:
        """Refill with the fill value (entries never written read as ``fill``)."""
        self.data.fill_(self.fill)
        self.cursor.zero_()

    def stack_replicas(self, solos: Sequence[History]) -> None:
        """Become the histories of R replicas side by side (they share the write position)."""
        if any(not torch.equal(s.cursor, self.cursor) for s in solos):
            raise ValueError("replicas must have stepped alike: their history positions differ")
        self.data = torch.cat([s.data for s in solos])
