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


def factors(age: Tensor, scale_post: float, scale_pre: float) -> Tensor:
    """``[3, N, B]``: the ages and ``e^(age * scale)`` for both kernels (0 where NaN), batch last."""
    seen = age == age
    clean = torch.where(seen, age, 0.0)  # exp of NaN takes a slow path: exponentiate 0 instead
    post = torch.where(seen, torch.exp(clean * scale_post), 0.0)
    pre = torch.where(seen, torch.exp(clean * scale_pre), 0.0)
    return torch.stack([age, post, pre]).transpose(1, 2).contiguous()


def factor_pair(
    a_pre: Tensor, a_post: Tensor, tau_post: float, tau_pre: float
) -> tuple[Tensor, Tensor]:
    """Input factors ``[3, I, B]`` and output factors ``[3, O, B]`` for :func:`gated_sums`."""
    inv_post, inv_pre = 1.0 / tau_post, 1.0 / tau_pre
    return factors(a_pre, -inv_post, inv_pre), factors(a_post, inv_post, -inv_pre)


def gated_sums(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_post, g_pre)`` ``[O, I]`` from input factors ``x [3, I, B]`` and output ``w [3, O, B]``."""
    causal = x[0].unsqueeze(0) >= w[0].unsqueeze(1)
    g_post = torch.where(causal, x[1].unsqueeze(0) * w[1].unsqueeze(1), 0.0).sum(-1)
    g_pre = torch.where(causal, 0.0, x[2].unsqueeze(0) * w[2].unsqueeze(1)).sum(-1)
    return g_post, g_pre


_compiled: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {}


def _compiled_fn(fn: Callable[..., tuple[Tensor, Tensor]]) -> Callable[..., tuple[Tensor, Tensor]]:
    """``fn`` compiled on its own (once per process; shapes and time constants specialise)."""
    if fn.__name__ not in _compiled:
        _compiled[fn.__name__] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _compiled[fn.__name__]


@torch.library.custom_op("stdp_run::separable_exp_sums", mutates_args=())
def _separable_exp_sums_op(
    a_pre: Tensor, a_post: Tensor, tau_post: float, tau_pre: float
) -> tuple[Tensor, Tensor]:
    x, w = _compiled_fn(factor_pair)(a_pre, a_post, tau_post, tau_pre)
    return _compiled_fn(gated_sums)(x, w)


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
    return gated_sums(*factor_pair(a_pre, a_post, tau_post, tau_pre))
