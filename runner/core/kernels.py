"""STDP kernels: plain elementwise functions ``K(diff, **kwargs) -> Tensor``.

``diff`` is the spike-time difference Δ = t_post - t_pre (- d) in ms: a positive value means the
postsynaptic spike came after the (delayed) presynaptic one. Each trainer evaluates *both* its
post and pre kernel on every Δ, so any gating by the sign of Δ lives inside the kernel. A NaN Δ
("no spike yet") gives NaN (or 0 for ``rectangular``); the trainers turn NaN into 0.

Keyword arguments may be Python numbers or tensors that broadcast against ``diff`` (for example
a per-synapse learning rate of shape ``[O, I]``). Every kwarg is declared explicitly (no
``**kwargs``) so that configs can be checked against the signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

Scalar = float | Tensor
Kernel = Callable[..., Tensor]
ExpSide = Literal["post", "pre"]


def exponential(side: ExpSide) -> Callable[[Kernel], Kernel]:
    """Declare a kernel to be exactly ``learning_rate * exp(-|Δ|/time_constant)`` on one side
    of 0 (``post``: Δ >= 0, ``pre``: Δ < 0) and 0 on the other, NaN for a NaN Δ.

    A cell whose post and pre kernels declare the two sides, with a linear batch reduction,
    takes the fused, cached and separable paths (:mod:`runner.core.paths`), which compute that
    formula directly; a plugin kernel that is this formula may declare it too.
    """

    def declare(kernel: Kernel) -> Kernel:
        kernel.exp_side = side  # type: ignore[attr-defined]
        return kernel

    return declare


def exp_side(kernel: Kernel) -> ExpSide | None:
    """The side a kernel declared with :func:`exponential`, or None."""
    side = getattr(kernel, "exp_side", None)
    return side if side in ("post", "pre") else None


@exponential("post")
def exp_stdp_post(diff: Tensor, *, learning_rate: Scalar, time_constant: Scalar) -> Tensor:
    """Causal exponential kernel: ``learning_rate * exp(-|Δ|/time_constant) * [Δ >= 0]``."""
    mask = (diff >= 0).to(diff.dtype)
    return torch.exp(diff.abs() / (-time_constant)) * (learning_rate * mask)


@exponential("pre")
def exp_stdp_pre(diff: Tensor, *, learning_rate: Scalar, time_constant: Scalar) -> Tensor:
    """Anti-causal exponential kernel: ``learning_rate * exp(-|Δ|/time_constant) * [Δ < 0]``."""
    mask = (diff < 0).to(diff.dtype)
    return torch.exp(diff.abs() / (-time_constant)) * (learning_rate * mask)


def gaussian(diff: Tensor, *, amplitude: Scalar, center: Scalar, width: Scalar) -> Tensor:
    """Gaussian window, both signs of Δ: ``amplitude * exp(-0.5 * ((Δ - center)/width)**2)``."""
    u = (diff - center) / width
    return amplitude * torch.exp(-0.5 * u**2)


def rectangular(diff: Tensor, *, amplitude: Scalar, low: Scalar, high: Scalar) -> Tensor:
    """Rectangular window: ``amplitude`` where ``low <= Δ <= high`` (inclusive), else 0 (NaN -> 0)."""
    inside = (diff >= low) & (diff <= high)
    return inside.to(diff.dtype) * amplitude


def mexican_hat(diff: Tensor, *, amplitude: Scalar, center: Scalar, width: Scalar) -> Tensor:
    """Ricker wavelet: ``amplitude * (1 - u**2) * exp(-u**2 / 2)`` with ``u = (Δ - center)/width``."""
    u2 = ((diff - center) / width) ** 2
    return amplitude * (1 - u2) * torch.exp(-0.5 * u2)


KERNELS: dict[str, Kernel] = {
    "exp_stdp_post": exp_stdp_post,
    "exp_stdp_pre": exp_stdp_pre,
    "gaussian": gaussian,
    "rectangular": rectangular,
    "mexican_hat": mexican_hat,
}
