"""Batch sums of the two exp STDP kernels from per-spike factors (no exponential per synapse).

Without delays, Δ = a_pre - a_post, and the two exp kernels factor into a per-input and a
per-output term:

    Δ >= 0:  lr+ e^(-Δ/τ+) = lr+ · e^(-a_pre/τ+) · e^(a_post/τ+)
    Δ <  0:  lr- e^( Δ/τ-) = lr- · e^( a_pre/τ-) · e^(-a_post/τ-)

so the batch sums ``g_post[o, i] = Σ_b [Δ >= 0] x⁺[b, i] w⁺[b, o]`` and
``g_pre[o, i] = Σ_b [Δ < 0] x⁻[b, i] w⁻[b, o]`` cost a comparison, two products and two sums per
synapse-sample. NaN ages ("no spike yet") give zero factors, and a comparison with NaN is False, so
missing pairs add 0. The factors stay normal numbers while ``age / τ`` stays within the span the
caller guarantees (``SEPARABLE_SPAN`` in :mod:`runner.core.trainers`).

The sums run with the batch as the innermost, contiguous dimension (``[O, I, B]``), where a
compiled kernel reduces in vector registers without materialising ``[O, I, B]``. Inside a compiled
step they are an opaque custom op whose kernel is compiled on its own: inlined into a larger graph,
inductor fuses the factor transposes away and loops over the batch with strided loads, which is
several times slower.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

SumsFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def factors(age: Tensor, scale_post: float, scale_pre: float) -> Tensor:
    """``[3, N, B]``: the ages and ``e^(age * scale)`` for both kernels (0 where NaN), batch last."""
    out = age.new_empty((3, age.shape[1], age.shape[0]))
    out[0].copy_(age.t())
    # exp of NaN (or of an underflowing exponent) takes a slow path several times slower:
    # exponentiate 0 there and zero the result
    missing = age != age
    clean = age.masked_fill(missing, 0.0)
    for row, scale in ((1, scale_post), (2, scale_pre)):
        out[row].copy_(torch.mul(clean, scale).exp_().masked_fill_(missing, 0.0).t())
    return out


def gated_sums(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_post, g_pre)`` ``[O, I]`` from input factors ``x [3, I, B]`` and output ``w [3, O, B]``."""
    causal = x[0].unsqueeze(0) >= w[0].unsqueeze(1)
    g_post = torch.where(causal, x[1].unsqueeze(0) * w[1].unsqueeze(1), 0.0).sum(-1)
    g_pre = torch.where(causal, 0.0, x[2].unsqueeze(0) * w[2].unsqueeze(1)).sum(-1)
    return g_post, g_pre


_compiled: SumsFn | None = None


def _compiled_gated_sums() -> SumsFn:
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(gated_sums, fullgraph=True, dynamic=False)
    return _compiled


@torch.library.custom_op("stdp_run::separable_exp_sums", mutates_args=())
def _separable_exp_sums_op(
    a_pre: Tensor, a_post: Tensor, tau_post: float, tau_pre: float
) -> tuple[Tensor, Tensor]:
    x = factors(a_pre, -1.0 / tau_post, 1.0 / tau_pre)
    w = factors(a_post, 1.0 / tau_post, -1.0 / tau_pre)
    return _compiled_gated_sums()(x, w)


@_separable_exp_sums_op.register_fake
def _(a_pre: Tensor, a_post: Tensor, tau_post: float, tau_pre: float) -> tuple[Tensor, Tensor]:
    shape = (a_post.shape[1], a_pre.shape[1])
    return a_pre.new_empty(shape), a_pre.new_empty(shape)


def separable_exp_sums(
    a_pre: Tensor, a_post: Tensor, tau_post: float, tau_pre: float
) -> tuple[Tensor, Tensor]:
    """``(g_post, g_pre)`` ``[O, I]`` for ages ``a_pre [B, I]``, ``a_post [B, O]`` (ms).

    ``g_post`` is the post kernel without its learning rate, summed over the batch; ``g_pre`` the
    same for the pre kernel. Traced into a compiled step it is one opaque op; eagerly, plain torch.
    """
    if torch.compiler.is_compiling():
        return _separable_exp_sums_op(a_pre, a_post, tau_post, tau_pre)
    x = factors(a_pre, -1.0 / tau_post, 1.0 / tau_pre)
    w = factors(a_post, 1.0 / tau_post, -1.0 / tau_pre)
    return gated_sums(x, w)
