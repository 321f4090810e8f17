r"""Lateral (all-to-all without self-connections) and direct (one-to-one) connections.

Both use a delta-current synapse: a presynaptic spike s (0 or 1) carries the charge ``scale``
(pC) delivered within one step, so its current is s * scale / dt (nA), and

    lateral: I[b, o] = sum_i (s[b, i] * scale / dt) * W[o, i],   W[o, o] = 0
    direct:  I[b, n] = (s[b, n] * scale / dt) * W[n]

There are no delays and no per-sample state (the dense connection with learned delays is
``runner.core.dense.DenseConnection``). ``weight`` is an ``nn.Parameter(requires_grad=False)``;
``delay`` is registered as None so that code can ask any connection for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from runner.core.stacking import fold, replica_matmul


def _check_args(n: int, dt: float, scale: float, batch_size: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not (isinstance(dt, int | float) and dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a finite number > 0 ms, got {dt!r}")
    if not (isinstance(scale, int | float) and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite number (pC per spike), got {scale!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def _initial_weight(
    weight: Tensor | float,
    shape: tuple[int, ...],
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> Tensor:
    """A new tensor of ``shape`` filled with a number, or a checked copy of a given tensor."""
    if isinstance(weight, Tensor):
        if tuple(weight.shape) != shape:
            raise ValueError(f"weight must have shape {list(shape)}, got {list(weight.shape)}")
        return weight.detach().to(device=device, dtype=dtype or torch.get_default_dtype()).clone()
    if not (isinstance(weight, int | float) and math.isfinite(weight)):
        raise ValueError(f"weight must be a finite number or a tensor of shape {list(shape)}")
    return torch.full(shape, float(weight), device=device, dtype=dtype)


class _StatelessConnection(nn.Module):
    """What the lateral and direct connections share: fixed weights, no per-sample state."""

    weight: nn.Parameter

    def __init__(
        self,
        n: int,
        *,
        dt: float,
        weight: Tensor | float,
        scale: float = 1.0,
        batch_size: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_args(n, dt, scale, batch_size)
        self.n = self.n_in = self.n_out = n
        self.dt = float(dt)
        self.scale = float(scale)
        self.batch_size = batch_size
        w = _initial_weight(weight, self.weight_shape(n), device, dtype)
        self.weight = nn.Parameter(w, requires_grad=False)
        self.register_parameter("delay", None)
        self.replicas, self.stacked = 1, False

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[_StatelessConnection]) -> None:
        """Become the R connections ``solos`` side by side (weights ``[R, ...]``)."""
        self.replicas, self.stacked = len(solos), True
        self.batch_size = sum(s.batch_size for s in solos)
        self.weight.data = torch.stack([s.weight.data for s in solos])

    @staticmethod
    def weight_shape(n: int) -> tuple[int, ...]:
        raise NotImplementedError

    def set_batch_size(self, batch_size: int) -> None:
        """Record the new batch size (there is no per-sample state; stacked: rows)."""
        _check_args(self.n, self.dt, self.scale, batch_size)
        self.batch_size = batch_size

    def reset_state(self) -> None:
        """No per-sample state: nothing to reset."""

    def _drive(self, spikes: Tensor) -> Tensor:
        """The presynaptic currents ``spikes * scale / dt`` (nA), a new tensor."""
        return spikes.to(self.weight.dtype, copy=True).mul_(self.scale / self.dt)

    def extra_repr(self) -> str:
        return f"n={self.n}, dt={self.dt}, scale={self.scale}"


class LateralConnection(_StatelessConnection):
    """All-to-all connection within one population of N neurons, without self-connections.

    Used for lateral inhibition (negative weights). The diagonal of ``weight`` is set to 0 at
    construction and by ``set_weight``; code that writes ``weight`` another way must call
    ``zero_diagonal_()`` afterwards (Caution: ``forward`` does not mask the diagonal).

    Args:
        n: number of neurons N (presynaptic = postsynaptic).
        dt: step length (ms), > 0.
        batch_size: number of samples B (no per-sample state; kept for a uniform signature).
        weight: ``[N, N]`` (out, in) tensor or one number for every off-diagonal synapse.
        scale: charge per spike (pC); the current of a spike is scale / dt (nA).

    Shape:
        forward: spikes ``[B, N]`` bool -> current ``[B, N]`` (nA, module dtype).
    """

    def __init__(
        self,
        n: int,
        *,
        dt: float,
        weight: Tensor | float,
        scale: float = 1.0,
        batch_size: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            n, dt=dt, weight=weight, scale=scale, batch_size=batch_size, device=device, dtype=dtype
        )
        self.zero_diagonal_()

    @staticmethod
    def weight_shape(n: int) -> tuple[int, ...]:
        return (n, n)

    @torch.no_grad()
    def zero_diagonal_(self) -> None:
        """Force the self-connections W[o, o] to 0 (of every replica when stacked)."""
        self.weight.diagonal(dim1=-2, dim2=-1).zero_()

    @torch.no_grad()
    def set_weight(self, weight: Tensor | float) -> None:
        """Copy new weights in (a number or an ``[N, N]`` tensor) and zero the diagonal."""
        if isinstance(weight, Tensor) and tuple(weight.shape) != (self.n, self.n):
            raise ValueError(
                f"weight must have shape [{self.n}, {self.n}], got {list(weight.shape)}"
            )
        if isinstance(weight, Tensor):
            self.weight.copy_(weight)
        else:
            self.weight.fill_(float(weight))
        self.zero_diagonal_()

    @torch.no_grad()
    def forward(self, spikes: Tensor) -> Tensor:
        """Current ``(spikes * scale / dt) @ W.T`` (nA), shape ``[B, N]``."""
        if self.stacked:  # [R, B, N] @ [R, N, N]
            x = fold(self._drive(spikes), self.replicas)
            return replica_matmul(x, self.weight.transpose(1, 2)).view(spikes.shape)
        return self._drive(spikes) @ self.weight.t()


class DirectConnection(_StatelessConnection):
    """One-to-one connection between two populations of the same size N.

    Args:
        n: number of neurons N on each side.
        dt: step length (ms), > 0.
        weight: ``[N]`` tensor or one number for every synapse.
        scale: charge per spike (pC); the current of a spike is scale / dt (nA).
        batch_size: number of samples B (no per-sample state; kept for a uniform signature).

    Shape:
        forward: spikes ``[B, N]`` bool -> current ``[B, N]`` (nA, module dtype).
    """

    @staticmethod
    def weight_shape(n: int) -> tuple[int, ...]:
        return (n,)

    @torch.no_grad()
    def forward(self, spikes: Tensor) -> Tensor:
        """Current ``spikes * scale / dt * W`` (nA), shape ``[B, N]``."""
        if self.stacked:  # [R, B, N] * [R, 1, N]
            x = self._drive(spikes)
            fold(x, self.replicas).mul_(self.weight.unsqueeze(1))
            return x
        return self._drive(spikes).mul_(self.weight)


# name -> class, for the registries (``dense`` lives in runner.core.dense)
CONNECTIONS: dict[str, type[nn.Module]] = {
    "lateral": LateralConnection,
    "direct": DirectConnection,
}
