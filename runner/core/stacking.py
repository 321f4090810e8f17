"""Small helpers shared by the modules that can hold several replicas (``runner.core.replicas``).

A stacked module simulates R independent replicas of one solo module. Its per-sample state is
folded replica-major, ``[R*B, ...]`` (rows ``r*B:(r+1)*B`` are replica r), and its parameters
carry a leading replica axis, ``[R, ...]``. A hyperparameter that is the same number in every
replica stays a Python float (the arithmetic, and a compiled graph, stay those of the solo
module); one that differs becomes a tensor of the R values, shaped to broadcast where it is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Value = float | Tensor


def replica_numbers(
    values: Sequence[float], *, like: Tensor, exact: bool = False
) -> float | Tensor:
    """One float when every replica has the same value, else the values as an ``[R]`` tensor.

    The tensor has ``like``'s dtype and device (each value rounded once from the Python float,
    as a scalar operand is), or float64 with ``exact``.
    """
    first = float(values[0])
    if all(float(v) == first for v in values):
        return first
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=like.device)
    return t if exact else t.to(like.dtype)


def broadcast(value: Value, ndim: int) -> Value:
    """An ``[R]`` tensor viewed as ``[R, 1, ..., 1]`` (``ndim`` dims); a float as is."""
    if isinstance(value, Tensor):
        return value.reshape(value.shape[0], *([1] * (ndim - 1)))
    return value


def per_row(value: Tensor, rows: int) -> Tensor:
    """An ``[R, ...]`` tensor repeated for the ``rows // R`` samples of each replica: ``[rows, 1]``
    for ``[R]`` values, ``[rows, N]`` for ``[R, N]`` ones."""
    out = value.repeat_interleave(rows // value.shape[0], dim=0)
    return out.unsqueeze(1) if value.dim() == 1 else out


def replica_matmul(x: Tensor, w_t: Tensor) -> Tensor:
    """``x [R, B, I] @ w_t [R, I, O]`` per replica: ``torch.bmm``, or in a compiled step the
    equal ``baddbmm`` with ``beta=0``.

    Why: inductor turns a CPU bmm with one row per replica (batch 1) into a loop over ``[R, O]``
    that reduces over ``I`` and recomputes ``x`` in every iteration; ``x`` made from bool spikes
    costs a scalar mask conversion per element there (~10x slower than the product itself).
    ``baddbmm`` is left to the BLAS kernel, which reads ``x`` stored once as numbers.
    """
    if torch.compiler.is_compiling():
        return torch.baddbmm(x.new_zeros((1, 1, 1)), x, w_t, beta=0.0)
    return torch.bmm(x, w_t)


def fold(t: Tensor, replicas: int) -> Tensor:
    """``[R*B, ...]`` viewed as ``[R, B, ...]``."""
    return t.view(replicas, -1, *t.shape[1:])
