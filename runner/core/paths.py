"""How a cell turns spike ages into one step's ``(pos, neg)``: four exact arithmetic paths.

=========  ===================================================================================
plain      any kernels and reduction: both kernels on every Δ, NaN -> 0, four reductions (the
           reference's arithmetic, SEMANTICS.md)
fused      both kernels declared exponential (``runner.core.kernels.exponential``) and a linear
           reduction: one exponential per synapse, sentinel ages instead of NaN checks
cached     fused, undelayed, number kwargs: the kernel values ``K [B, O, I]`` are kept between
           steps and rewritten only in the rows and columns of neurons that spike now
separable  cached's conditions in a compiled CPU step at batch > 1: the batch sums factorise
           into per-input and per-output factors, with no exponential per synapse
=========  ===================================================================================

Each path is a small stateless unit with one method, ``parts(cell, trainer)``; the cell holds
the state (kwargs, the cache) and chooses its path (:meth:`runner.core.cell.Cell.choose_path`).
``tests/test_fast_paths.py`` runs every path against the plain one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from runner.core.reductions import batch_mean
from runner.core.separable import separable_exp_sums

if TYPE_CHECKING:
    from runner.core.cell import Cell
    from runner.core.reductions import Reduction

#: Exponents below which the fused paths write 0 instead of calling exp (whose result would be
#: subnormal or 0, a slow path on x86); the dropped terms are below 2e-35 (float32).
UNDERFLOW_FLOOR = {torch.float32: -80.0, torch.float64: -700.0}

#: Largest ``age / time constant`` for the factorised path: its factors ``e^(±age/τ)`` stay
#: normal numbers (float32 overflows past e^88) and wrong-side products stay finite.
SEPARABLE_SPAN = {torch.float32: 80.0, torch.float64: 700.0}

#: Stand-ins for "no spike yet" in the fused path: pre and post differ, so Δ is never 0 or NaN.
FAR_PRE_AGE, FAR_POST_AGE = 1e30, 3e30


class TimeDifference(Protocol):
    """What a path asks of its trainer: Δ ``[B, O, I]``, NaN or (``far``) huge where unpaired."""

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor: ...


class UpdatePath(Protocol):
    name: ClassVar[str]

    def parts(self, cell: Cell, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` of shape ``[O, I]`` for this step."""
        ...


def far_ages(age: Tensor, far: float) -> Tensor:
    """Ages with NaN ("no spike yet") replaced by a huge sentinel, for the fused exp path.

    ``age == age`` is False only for NaN; unlike ``nan_to_num`` it compiles to vector code.
    """
    return torch.where(age == age, age, far)


def route_by_sign(parts: list[tuple[Tensor, Any]]) -> tuple[Tensor, Tensor]:
    """``(pos, neg)`` from per-kernel batch sums ``g`` (unsigned) and their learning rates.

    With a number learning rate a kernel has one sign, so ``lr g`` goes whole to ``pos``
    (``lr > 0``) or to ``neg`` as ``|lr| g`` (``lr < 0``); no per-element select is needed.
    Stacked replicas may have per-replica rates (``[R, 1, 1]`` tensors): :func:`route_replicas`.
    """
    if any(isinstance(lr, Tensor) for _, lr in parts):
        return route_replicas(parts)
    pos: Tensor | None = None
    neg: Tensor | None = None
    for g, lr in parts:
        if lr > 0:
            pos = g * lr if pos is None else pos.add(g, alpha=lr)
        elif lr < 0:
            neg = g * -lr if neg is None else neg.sub(g, alpha=lr)
    like = parts[0][0]
    return (
        torch.zeros_like(like) if pos is None else pos,
        torch.zeros_like(like) if neg is None else neg,
    )


def route_replicas(parts: list[tuple[Tensor, Any]]) -> tuple[Tensor, Tensor]:
    """:func:`route_by_sign` with per-replica rates: each sum goes to ``pos`` scaled by
    ``max(lr, 0)`` and to ``neg`` by ``max(-lr, 0)``. The second term is a fused multiply-add,
    as ``Tensor.add(alpha=)`` is, and a zero rate adds an exact zero, so every replica gets the
    numbers of its solo network."""

    def fma(acc: Tensor | None, g: Tensor, rate: Any) -> Tensor:
        if acc is None:
            return g * rate
        return torch.addcmul(acc, g, rate) if isinstance(rate, Tensor) else acc.add(g, alpha=rate)

    pos: Tensor | None = None
    neg: Tensor | None = None
    for g, lr in parts:
        up = lr.clamp_min(0) if isinstance(lr, Tensor) else max(float(lr), 0.0)
        down = lr.neg().clamp_min(0) if isinstance(lr, Tensor) else max(-float(lr), 0.0)
        pos, neg = fma(pos, g, up), fma(neg, g, down)
    assert pos is not None and neg is not None
    return pos, neg


def split(
    reduce: Reduction, k: Tensor, *, scratch: bool = False, dim: int = 0
) -> tuple[Tensor, Tensor]:
    """``(R(max(k, 0)), -R(min(k, 0)))`` over the batch (dimension ``dim``).

    With ``scratch`` ``k`` is overwritten (one [B, O, I] buffer fewer in eager mode).
    """
    if k.shape[dim] == 1:  # the mean or sum of one sample is that sample (no division)
        one = k.select(dim, 0)
        return one.clamp_min(0), one.clamp_max(0).neg()
    pos = reduce(k.clamp_min(0), dim)
    return pos, reduce(k.clamp_max_(0) if scratch else k.clamp_max(0), dim).neg()


def without_batch(value: Any) -> Any:
    """A stacked kwarg ``[R, 1, 1, 1]`` as ``[R, 1, 1]`` (against ``[R, O, I]`` or ``[R, B, N]``)."""
    return value.select(1, 0) if isinstance(value, Tensor) else value


def _drop_underflow_and_exp(e: Tensor) -> None:
    """``exp`` in place, with exponents at or below the floor written as 0: exp is ~10x slower
    where its result underflows, and ``exp(floor) * scale`` would be subnormal."""
    floor = UNDERFLOW_FLOOR.get(e.dtype, -math.inf)
    if math.isfinite(floor):
        nn.functional.threshold(e.clamp_min_(floor).exp_(), math.exp(floor), 0.0, True)
    else:
        e.exp_()


def fused_exp_values(cell: Cell, delta: Tensor) -> Tensor:
    """Kpost + Kpre for the two exp kernels, ``[B, O, I]`` (one exp per element).

    Computed in place on one new buffer (eager mode allocates and touches less memory).
    """
    post = cell.kernel_post_kwargs.as_dict()
    pre = cell.kernel_pre_kwargs.as_dict()
    causal = delta >= 0

    def pick(a: Any, b: Any) -> Tensor:  # keep delta's dtype even for two Python numbers
        one = a if isinstance(a, Tensor) else delta.new_full((), a)
        if not isinstance(a, Tensor) and not isinstance(b, Tensor) and a == b:
            return one  # where(causal, x, x) == x
        return torch.where(causal, one, b)

    k = delta.abs().div_(pick(-post["time_constant"], -pre["time_constant"]))  # exponent
    _drop_underflow_and_exp(k)
    return k.mul_(pick(post["learning_rate"], pre["learning_rate"]))


class PlainPath:
    """Both kernels on every Δ as the reference evaluates them; NaN counts as 0."""

    name: ClassVar[str] = "plain"

    def parts(self, cell: Cell, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        delta = trainer.time_difference(cell)
        k_post = cell.kernel_post(delta, **cell.kernel_post_kwargs.as_dict())
        k_pre = cell.kernel_pre(delta, **cell.kernel_pre_kwargs.as_dict())
        reduce, dim = cell.batch_reduction, cell.batch_dim

        def part(x: Tensor) -> Tensor:
            return reduce(x.nan_to_num(nan=0.0, posinf=math.inf, neginf=-math.inf), dim)

        pos = part(k_post.clamp_min(0)) + part(k_pre.clamp_min(0))
        neg = -(part(k_post.clamp_max(0)) + part(k_pre.clamp_max(0)))
        return pos, neg


class FusedPath:
    """The two exp kernels and a linear reduction in one pass.

    The post kernel is zero for Δ < 0 and the pre kernel for Δ >= 0, so their sum needs one
    exponential per element, and with a linear reduction ``R(a) + R(b) == R(a + b)``. Δ comes
    from sentinel ages (:func:`far_ages`): no NaN, and every pair with a missing spike lies so far
    from 0 that both kernels are exactly 0 there.
    """

    name: ClassVar[str] = "fused"

    def parts(self, cell: Cell, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        delta = trainer.time_difference(cell, far=True)
        if cell.numbers_only:
            return self._routed(cell, delta)
        values = fused_exp_values(cell, delta)
        return split(cell.batch_reduction, values, scratch=True, dim=cell.batch_dim)

    @staticmethod
    def _routed(cell: Cell, delta: Tensor) -> tuple[Tensor, Tensor]:
        """Number kwargs: each kernel's batch sum goes whole to one part.

        With number learning rates each kernel has one sign, so ``max(K, 0)`` and ``min(K, 0)``
        need no per-element select: the two kernels' unscaled values ``e^(-|Δ|/τ)`` are split by
        the causal mask ``c`` (``e c`` and ``e - e c``, both exact), reduced, and scaled by their
        learning rates. In eager mode this avoids ``torch.where`` over ``[B, O, I]`` (slow on the
        CPU) and one temporary. ``delta`` is overwritten.
        """
        post, pre = cell.kernel_post_kwargs, cell.kernel_pre_kwargs
        # 1 where Δ >= 0 (post kernel), else 0: sign + 1 clamped at 1, three cheap vector passes
        # (a bool mask and its conversion, torch.heaviside or torch.where are several times slower)
        causal = delta.sign().add_(1.0).clamp_max_(1.0)
        tau_post = post.number("time_constant", exact=True)
        tau_pre = pre.number("time_constant", exact=True)
        e = delta.abs_()
        if isinstance(tau_post, Tensor) or isinstance(tau_pre, Tensor):  # stacked replicas
            # the solo formula below with the inverses taken in float64 as Python takes them;
            # where a replica's two time constants are equal, c * 0 - 1/τ is -1/τ exactly
            inv_post, inv_pre = 1.0 / tau_post, 1.0 / tau_pre
            e.mul_(causal * _cast(inv_pre - inv_post, e) - _cast(inv_pre, e))
        else:
            inv_post, inv_pre = 1.0 / float(tau_post), 1.0 / float(tau_pre)
            if inv_post == inv_pre:
                e.mul_(-inv_post)
            else:  # exponent scale -1/τ- + c (1/τ- - 1/τ+)
                e.mul_(causal * (inv_pre - inv_post) - inv_pre)
        _drop_underflow_and_exp(e)
        e_post = e * causal
        e_pre = e.sub_(e_post)
        reduce, dim = cell.batch_reduction, cell.batch_dim
        return route_by_sign(
            [
                (reduce(e_post, dim), _rate(post.number("learning_rate"))),
                (reduce(e_pre, dim), _rate(pre.number("learning_rate"))),
            ]
        )


def _cast(value: Any, like: Tensor) -> Any:
    """A float64 per-replica tensor in ``like``'s dtype (one rounding, as a Python scalar's)."""
    return value.to(like.dtype) if isinstance(value, Tensor) else value


def _rate(value: Any) -> Any:
    """A learning rate for :func:`route_by_sign`: a float, or ``[R, 1, 1]`` per replica."""
    return without_batch(value) if isinstance(value, Tensor) else float(value)


class CachedPath:
    """Undelayed exp KernelSTDP with the kernel values kept between steps.

    Without delays Δ = a_pre - a_post is constant between spikes (both ages grow by dt), so K
    changes only in the rows of neurons that spike now (Δ = a_pre: post kernel) and the columns
    of inputs that spike now (Δ = -a_post: pre kernel, post kernel if both spike): O(I) + O(O)
    exponentials per sample and step instead of O(O I). It equals recomputing up to the rounding
    of the repeated age additions.
    """

    name: ClassVar[str] = "cached"

    def parts(self, cell: Cell, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        reduce, dim = cell.batch_reduction, cell.batch_dim
        fold = cell.connection.fold  # [R, B, ...] when stacked
        if not cell.cache_valid:
            cell.refresh_cache()  # already includes this step's spikes
            assert cell.kernel_cache is not None
            return split(reduce, fold(cell.kernel_cache), dim=dim)
        assert cell.kernel_cache is not None and cell.connection.pre_ages is not None
        k, a_pre = fold(cell.kernel_cache), fold(cell.connection.pre_ages.age)
        a_post = fold(cell.post_ages.age)
        post, pre = cell.kernel_post_kwargs, cell.kernel_pre_kwargs
        floor = UNDERFLOW_FLOOR.get(k.dtype, -math.inf)

        def kernel(age: Tensor, kw: Any) -> Tensor:  # lr e^(-age/tau), NaN age -> 0
            exponent = age / -without_batch(kw.number("time_constant"))
            value = torch.where(exponent >= floor, torch.exp(exponent.clamp_min(floor)), 0.0)
            return value * without_batch(kw.number("learning_rate"))

        row = kernel(a_pre, post).unsqueeze(-2)  # [B, 1, I]: a post spike now, Δ = a_pre >= 0
        col = torch.where(a_post == 0, _rate(post.number("learning_rate")), kernel(a_post, pre))
        seen = (a_pre == a_pre).unsqueeze(-2) & (a_post == a_post).unsqueeze(-1)  # not NaN
        new = torch.where((a_post == 0).unsqueeze(-1), row, torch.where(seen, k, 0.0))
        k.copy_(torch.where((a_pre == 0).unsqueeze(-2), col.unsqueeze(-1), new))
        return split(reduce, k, dim=dim)


class SeparablePath:
    """The undelayed exp kernels' batch sums without an exponential per synapse.

    See :mod:`runner.core.separable`. Each kernel's sign is that of its learning rate (a number
    here), so its batch sum goes whole to ``pos`` or to ``neg``.
    """

    name: ClassVar[str] = "separable"

    def parts(self, cell: Cell, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        assert cell.connection.pre_ages is not None
        a_pre, a_post = cell.connection.pre_ages.age, cell.post_ages.age
        post, pre = cell.kernel_post_kwargs.numbers, cell.kernel_pre_kwargs.numbers
        sums = separable_exp_sums(
            a_pre, a_post, float(post["time_constant"]), float(pre["time_constant"])
        )
        scale = 1.0 / a_pre.shape[0] if cell.batch_reduction is batch_mean else 1.0
        rates = (float(post["learning_rate"]) * scale, float(pre["learning_rate"]) * scale)
        return route_by_sign(list(zip(sums, rates, strict=True)))


PATHS: dict[str, UpdatePath] = {
    path.name: path for path in (PlainPath(), FusedPath(), CachedPath(), SeparablePath())
}
