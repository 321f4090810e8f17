"""Kernel STDP trainers: KernelSTDP, DelayAdjustedKernelSTDP and DelayAdjustedKernelSTDPD.

Every step (not only at spike events) each trainer pairs the most recent presynaptic spike with
the most recent postsynaptic spike of every synapse and evaluates its two kernels on their time
difference Δ (ms, positive when post follows pre):

    KernelSTDP                 Δ = a_pre_eff - a_post           (the delay is inside a_pre_eff)
    DelayAdjustedKernelSTDP    Δ = a_pre_raw - a_post - d       -> trains the weights
    DelayAdjustedKernelSTDPD   Δ = a_pre_raw - a_post - d       -> trains the delays

with ``a`` the spike ages. For KernelSTDP on a connection with active delays, ``a_pre_eff`` is the
age of the last *arrival* (delays rounded up to whole steps, ``delayed=False``) or the age of the
last raw spike seen at the exact continuous time ``now - d`` (``delayed=True``). The kernel outputs
are split by sign, NaN ("no pair yet") counts as 0, and each of the four parts is reduced over the
batch separately:

    pos = R(max(Kpost, 0)) + R(max(Kpre, 0))       neg = -(R(min(Kpost, 0)) + R(min(Kpre, 0)))

``(pos, neg)`` is pushed to the updater of the trained parameter of the connection, which applies
it when the loop says so (:mod:`runner.core.updater`).

A trainer holds defaults; each registered cell (a connection with the ages of its postsynaptic
population) can override any of them. Tensor kwargs (e.g. per-synapse learning rates) become
buffers of the cell, so they appear in ``state_dict`` and move with ``.to()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.kernels import KERNELS, Kernel, exp_stdp_post, exp_stdp_pre
from runner.core.reductions import LINEAR_REDUCTIONS, REDUCTIONS, Reduction, batch_mean
from runner.core.separable import separable_exp_sums

KernelSpec = str | Kernel
ReductionSpec = str | Reduction | None


def resolve_kernel(kernel: KernelSpec) -> Kernel:
    """A kernel function from a registered name or a callable."""
    if callable(kernel):
        return kernel
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")
    return KERNELS[kernel]


def resolve_reduction(reduction: ReductionSpec) -> Reduction:
    """A batch reduction from a registered name, a callable, or ``None`` (the mean)."""
    if reduction is None:
        return REDUCTIONS["mean"]
    if callable(reduction):
        return reduction
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown batch reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    return REDUCTIONS[reduction]


#: Exponents below which the fused path writes 0 instead of calling exp (whose result would be
#: subnormal or 0, a slow path on x86); the dropped terms are below 2e-35 (float32).
UNDERFLOW_FLOOR = {torch.float32: -80.0, torch.float64: -700.0}

#: Largest ``age / time constant`` for the factorised path: its factors ``e^(±age/τ)`` stay
#: normal numbers (float32 overflows past e^88) and wrong-side products stay finite.
SEPARABLE_SPAN = {torch.float32: 80.0, torch.float64: 700.0}

#: Stand-ins for "no spike yet" in the fused path: pre and post differ, so Δ is never 0 or NaN.
FAR_PRE_AGE, FAR_POST_AGE = 1e30, 3e30


def route_by_sign(parts: list[tuple[Tensor, float]]) -> tuple[Tensor, Tensor]:
    """``(pos, neg)`` from per-kernel batch sums ``g`` (unsigned) and their learning rates.

    With a number learning rate a kernel has one sign, so ``lr g`` goes whole to ``pos``
    (``lr > 0``) or to ``neg`` as ``|lr| g`` (``lr < 0``); no per-element select is needed.
    """
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


def far_ages(age: Tensor, far: float) -> Tensor:
    """Ages with NaN ("no spike yet") replaced by a huge sentinel, for the fused exp path.

    ``age == age`` is False only for NaN; unlike ``nan_to_num`` it compiles to vector code.
    """
    return torch.where(age == age, age, far)


class KernelArgs(nn.Module):
    """The kwargs of one kernel: numbers in a dict, tensors as buffers (they follow ``.to()``)."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        super().__init__()
        self.numbers: dict[str, Any] = {}
        for key, value in kwargs.items():
            if isinstance(value, Tensor):
                self.register_buffer(key, value)
            else:
                self.numbers[key] = value

    def as_dict(self) -> dict[str, Any]:
        return {**self.numbers, **dict(self.named_buffers(recurse=False))}


class Cell(nn.Module):
    """One connection trained by one trainer, with its resolved hyperparameters."""

    connection: DenseConnection
    post_ages: SpikeAges

    def __init__(self, connection: DenseConnection, post_ages: SpikeAges, settings: dict[str, Any]):
        super().__init__()
        # references, not submodules: the network owns them (and moves them)
        object.__setattr__(self, "connection", connection)
        object.__setattr__(self, "post_ages", post_ages)
        self.kernel_post = resolve_kernel(settings["kernel_post"])
        self.kernel_pre = resolve_kernel(settings["kernel_pre"])
        self.kernel_post_kwargs = KernelArgs(settings["kernel_post_kwargs"])
        self.kernel_pre_kwargs = KernelArgs(settings["kernel_pre_kwargs"])
        self.batch_reduction = resolve_reduction(settings["batch_reduction"])
        self.delayed = bool(settings.get("delayed", False))
        self.interp_tolerance = float(settings.get("interp_tolerance", 0.0))
        self.numbers_only = not any(True for _ in self.kernel_post_kwargs.buffers()) and not any(
            True for _ in self.kernel_pre_kwargs.buffers()
        )
        self.fused = (
            self.kernel_post is exp_stdp_post
            and self.kernel_pre is exp_stdp_pre
            and self.batch_reduction in LINEAR_REDUCTIONS
        )
        # the incremental kernel cache (see enable_cache); off until a trainer enables it
        self.register_buffer("kernel_cache", None, persistent=False)
        self.cache_valid = False
        # the factorised batch path (see separable_parts); chosen per batch by plan_batch
        self.separable = False

    def update_parts(self, delta: Tensor) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` of shape ``[O, I]`` from the time differences ``delta [B, O, I]``."""
        if self.fused:
            return self._fused_exp_parts(delta)
        k_post = self.kernel_post(delta, **self.kernel_post_kwargs.as_dict())
        k_pre = self.kernel_pre(delta, **self.kernel_pre_kwargs.as_dict())
        reduce = self.batch_reduction

        def part(x: Tensor) -> Tensor:
            return reduce(x.nan_to_num(nan=0.0, posinf=math.inf, neginf=-math.inf), 0)

        pos = part(k_post.clamp_min(0)) + part(k_pre.clamp_min(0))
        neg = -(part(k_post.clamp_max(0)) + part(k_pre.clamp_max(0)))
        return pos, neg

    def _fused_exp_parts(self, delta: Tensor) -> tuple[Tensor, Tensor]:
        """The same result for the two exp kernels and a linear reduction, in one pass.

        The post kernel is zero for Δ < 0 and the pre kernel for Δ >= 0, so their sum needs one
        exponential per element, and with a linear reduction ``R(a) + R(b) == R(a + b)``.
        ``delta`` must come from sentinel ages (:func:`far_ages`): no NaN, and every pair with a
        missing spike lies so far from 0 that both kernels are exactly 0 there.
        """
        if self.numbers_only:
            return self._fused_exp_routed(delta)
        return self._split(self._fused_exp_values(delta), scratch=True)

    def _fused_exp_routed(self, delta: Tensor) -> tuple[Tensor, Tensor]:
        """The fused path for number kwargs: each kernel's batch sum goes whole to one part.

        With number learning rates each kernel has one sign, so ``max(K, 0)`` and ``min(K, 0)``
        need no per-element select: the two kernels' unscaled values ``e^(-|Δ|/τ)`` are split by
        the causal mask ``c`` (``e c`` and ``e - e c``, both exact), reduced, and scaled by their
        learning rates. In eager mode this avoids ``torch.where`` over ``[B, O, I]`` (slow on the
        CPU) and one temporary. ``delta`` is overwritten.
        """
        post, pre = self.kernel_post_kwargs.numbers, self.kernel_pre_kwargs.numbers
        # 1 where Δ >= 0 (post kernel), else 0: sign + 1 clamped at 1, three cheap vector passes
        # (a bool mask and its conversion, torch.heaviside or torch.where are several times slower)
        causal = delta.sign().add_(1.0).clamp_max_(1.0)
        inv_post, inv_pre = 1.0 / float(post["time_constant"]), 1.0 / float(pre["time_constant"])
        e = delta.abs_()
        if inv_post == inv_pre:
            e.mul_(-inv_post)
        else:  # exponent scale -1/τ- + c (1/τ- - 1/τ+)
            e.mul_(causal * (inv_pre - inv_post) - inv_pre)
        floor = UNDERFLOW_FLOOR.get(delta.dtype, -math.inf)
        if math.isfinite(floor):  # as in _fused_exp_values: underflowing terms are dropped
            nn.functional.threshold(e.clamp_min_(floor).exp_(), math.exp(floor), 0.0, True)
        else:
            e.exp_()
        e_post = e * causal
        e_pre = e.sub_(e_post)
        reduce = self.batch_reduction
        return route_by_sign(
            [
                (reduce(e_post, 0), float(post["learning_rate"])),
                (reduce(e_pre, 0), float(pre["learning_rate"])),
            ]
        )

    def _split(self, k: Tensor, *, scratch: bool = False) -> tuple[Tensor, Tensor]:
        """``(R(max(k, 0)), -R(min(k, 0)))`` over the batch (the first dimension).

        With ``scratch`` ``k`` is overwritten (one [B, O, I] buffer fewer in eager mode).
        """
        if k.shape[0] == 1:  # the mean or sum of one sample is that sample (no division)
            return k[0].clamp_min(0), k[0].clamp_max(0).neg()
        reduce = self.batch_reduction
        pos = reduce(k.clamp_min(0), 0)
        return pos, reduce(k.clamp_max_(0) if scratch else k.clamp_max(0), 0).neg()

    def _fused_exp_values(self, delta: Tensor) -> Tensor:
        """Kpost + Kpre for the two exp kernels, ``[B, O, I]`` (one exp per element).

        Computed in place on one new buffer (eager mode allocates and touches less memory).
        """
        post = self.kernel_post_kwargs.as_dict()
        pre = self.kernel_pre_kwargs.as_dict()
        causal = delta >= 0

        def pick(a: Any, b: Any) -> Tensor:  # keep delta's dtype even for two Python numbers
            one = a if isinstance(a, Tensor) else delta.new_full((), a)
            if not isinstance(a, Tensor) and not isinstance(b, Tensor) and a == b:
                return one  # where(causal, x, x) == x
            return torch.where(causal, one, b)

        k = delta.abs().div_(pick(-post["time_constant"], -pre["time_constant"]))  # exponent
        # exp is ~10x slower where its result underflows; such terms (exponent <= floor) are
        # below 1e-34 and dropped: zeroed before scaling, as exp(floor) * scale is subnormal
        floor = UNDERFLOW_FLOOR.get(delta.dtype, -math.inf)
        if math.isfinite(floor):
            nn.functional.threshold(k.clamp_min_(floor).exp_(), math.exp(floor), 0.0, True)
        else:
            k.exp_()
        return k.mul_(pick(post["learning_rate"], pre["learning_rate"]))

    # -------------------------------------------------------------- incremental kernel cache
    def enable_cache(self) -> None:
        """Keep the kernel values ``K [B, O, I]`` between steps (undelayed exp KernelSTDP).

        Without delays Δ = a_pre - a_post is constant between spikes (both ages grow by dt), so
        K changes only in the rows of neurons that spike now (Δ = a_pre: post kernel) and the
        columns of inputs that spike now (Δ = -a_post: pre kernel, post kernel if both spike):
        O(I) + O(O) exponentials per sample and step instead of O(O I). It equals recomputing
        up to the rounding of the repeated age additions. Needs number kernel kwargs.

        Caution: the cache follows the ages only if the trainer sees every step; it is rebuilt
        after ``load_state_dict``, a switch back from eval mode and ``set_batch_size``.
        """
        conn = self.connection
        shape = (conn.batch_size, conn.n_out, conn.n_in)
        self.kernel_cache = conn.weight.new_zeros(shape)
        self.cache_valid = False  # built from the ages on the first step

    @property
    def cached(self) -> bool:
        return self.kernel_cache is not None

    def refresh_cache(self) -> None:
        """Recompute the whole cache from the ages if it is stale (host-side check)."""
        if self.kernel_cache is None or self.cache_valid or self.separable or not self.training:
            return  # fresh, unused this batch, or not trained (train() marks it stale again)
        assert self.connection.pre_ages is not None
        batch = self.post_ages.age.shape[0]
        if self.kernel_cache.shape[0] != batch:  # allocated lazily (see set_batch_size)
            conn = self.connection
            self.kernel_cache = conn.weight.new_zeros((batch, conn.n_out, conn.n_in))
        a_pre = far_ages(self.connection.pre_ages.age, FAR_PRE_AGE).unsqueeze(1)
        a_post = far_ages(self.post_ages.age, FAR_POST_AGE).unsqueeze(2)
        self.kernel_cache.copy_(self._fused_exp_values(a_pre - a_post))
        self.cache_valid = True

    def cached_parts(self) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` from the cache, advanced by this step's spikes (ages == 0)."""
        if not self.cache_valid:
            self.refresh_cache()  # already includes this step's spikes
            assert self.kernel_cache is not None
            return self._split(self.kernel_cache)
        assert self.kernel_cache is not None and self.connection.pre_ages is not None
        k, a_pre, a_post = self.kernel_cache, self.connection.pre_ages.age, self.post_ages.age
        post, pre = self.kernel_post_kwargs.numbers, self.kernel_pre_kwargs.numbers
        floor = UNDERFLOW_FLOOR.get(k.dtype, -math.inf)

        def kernel(age: Tensor, kw: dict[str, Any]) -> Tensor:  # lr e^(-age/tau), NaN age -> 0
            exponent = age / -kw["time_constant"]
            value = torch.where(exponent >= floor, torch.exp(exponent.clamp_min(floor)), 0.0)
            return value * kw["learning_rate"]

        row = kernel(a_pre, post).unsqueeze(1)  # [B, 1, I]: a post spike now, Δ = a_pre >= 0
        col = torch.where(a_post == 0, float(post["learning_rate"]), kernel(a_post, pre))
        seen = (a_pre == a_pre).unsqueeze(1) & (a_post == a_post).unsqueeze(2)  # not NaN
        new = torch.where((a_post == 0).unsqueeze(2), row, torch.where(seen, k, 0.0))
        k.copy_(torch.where((a_pre == 0).unsqueeze(1), col.unsqueeze(2), new))
        return self._split(k)

    # ------------------------------------------------------------ factorised (separable) path
    def plan_batch(self, steps: int, *, compiled: bool) -> None:
        """Choose the factorised path for the next batch of ``steps`` steps (ages start at NaN).

        Taken on the CPU for batches of several samples in a compiled step, when the ages (at most
        ``steps * dt`` after the reset at the batch start) keep every factor a normal number:
        ``steps * dt <= SEPARABLE_SPAN * tau`` for both time constants. Otherwise the kernel cache
        is used, which is rebuilt from the ages when the factorised path was used before.
        """
        conn = self.connection
        taus = (self.kernel_post_kwargs.numbers, self.kernel_pre_kwargs.numbers)
        span = SEPARABLE_SPAN.get(conn.weight.dtype, 0.0)
        self.separable = (
            self.kernel_cache is not None
            and compiled
            and conn.weight.device.type == "cpu"  # untimed on GPUs so far: the cache path there
            and conn.batch_size > 1
            and all(steps * conn.dt <= span * float(kw["time_constant"]) for kw in taus)
        )
        if self.separable:
            self.cache_valid = False  # not advanced while the factorised path runs

    def separable_parts(self) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` of the undelayed exp kernels without an exponential per synapse.

        See :mod:`runner.core.separable`. Each kernel's sign is that of its learning rate (a
        number here), so its batch sum goes whole to ``pos`` or to ``neg``.
        """
        assert self.connection.pre_ages is not None
        a_pre, a_post = self.connection.pre_ages.age, self.post_ages.age
        post, pre = self.kernel_post_kwargs.numbers, self.kernel_pre_kwargs.numbers
        sums = separable_exp_sums(
            a_pre, a_post, float(post["time_constant"]), float(pre["time_constant"])
        )
        scale = 1.0 / a_pre.shape[0] if self.batch_reduction is batch_mean else 1.0
        rates = (float(post["learning_rate"]) * scale, float(pre["learning_rate"]) * scale)
        return route_by_sign(list(zip(sums, rates, strict=True)))

    def set_batch_size(self, batch_size: int) -> None:
        """Drop the cache; the first training step at the new size reallocates and rebuilds it.

        Lazy, so that learning-free phases at a large batch never allocate ``[B, O, I]``.
        """
        if self.kernel_cache is not None:
            conn = self.connection
            self.kernel_cache = conn.weight.new_zeros((0, conn.n_out, conn.n_in))
            self.cache_valid = False

    def train(self, mode: bool = True) -> Cell:
        if mode and not self.training:  # the trainer skipped the eval steps
            self.cache_valid = False
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.cache_valid = False  # the ages may have changed
        super()._load_from_state_dict(*args, **kwargs)


class KernelTrainer(nn.Module):
    """Common machinery of the three kernel trainers: defaults, cells, the per-step push."""

    target: ClassVar[str] = "weight"
    extra_defaults: ClassVar[dict[str, Any]] = {}
    #: True for rules that read the learned delay ``d`` (the connection needs ``max_delay``).
    needs_delays: ClassVar[bool] = False

    def __init__(
        self,
        kernel_post: KernelSpec = "exp_stdp_post",
        kernel_pre: KernelSpec = "exp_stdp_pre",
        kernel_post_kwargs: Mapping[str, Any] | None = None,
        kernel_pre_kwargs: Mapping[str, Any] | None = None,
        batch_reduction: ReductionSpec = None,
        **extra: Any,
    ) -> None:
        super().__init__()
        unknown = set(extra) - set(self.extra_defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown argument(s) {sorted(unknown)}")
        self.defaults: dict[str, Any] = {
            "kernel_post": resolve_kernel(kernel_post),
            "kernel_pre": resolve_kernel(kernel_pre),
            "kernel_post_kwargs": dict(kernel_post_kwargs or {}),
            "kernel_pre_kwargs": dict(kernel_pre_kwargs or {}),
            "batch_reduction": resolve_reduction(batch_reduction),
            **{**self.extra_defaults, **extra},
        }
        self._check_settings(self.defaults)
        self.cells = nn.ModuleDict()

    def _check_settings(self, settings: Mapping[str, Any]) -> None:
        tol = settings.get("interp_tolerance", 0.0)
        if tol < 0:
            raise ValueError(f"interp_tolerance must be >= 0 ms, got {tol}")

    def register_cell(
        self, name: str, connection: DenseConnection, post_ages: SpikeAges, **overrides: Any
    ) -> Cell:
        """Train ``connection`` (with postsynaptic ``post_ages``); ``overrides`` beat defaults.

        Default kwargs dicts are copied per cell (tensors cloned); an override dict is used as
        given and replaces the default dict as a whole.
        """
        if name in self.cells:
            raise ValueError(f"cell {name!r} is already registered")
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"unknown override(s) {sorted(unknown)} for cell {name!r}; "
                f"valid: {', '.join(self.defaults)}"
            )
        settings = {
            key: (
                {k: v.clone().detach() if isinstance(v, Tensor) else v for k, v in val.items()}
                if key.endswith("_kwargs")
                else val
            )
            for key, val in self.defaults.items()
        }
        settings.update(overrides)
        self._check_settings(settings)
        if tuple(post_ages.age.shape) != (connection.batch_size, connection.n_out):
            raise ValueError(
                f"post ages have shape {tuple(post_ages.age.shape)}, expected "
                f"{(connection.batch_size, connection.n_out)} for cell {name!r}"
            )
        cell = Cell(connection, post_ages, settings)
        self._prepare(cell)
        connection.updater(self.target)
        self.cells[name] = cell
        return cell

    def _prepare(self, cell: Cell) -> None:
        """Ask the connection to track what :meth:`time_difference` reads."""
        cell.connection.track_pre_ages()

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor:
        """Δ ``[B, O, I]`` (ms); NaN where a spike is missing, or huge with ``far``."""
        raise NotImplementedError

    def forward(self) -> None:
        """Push one ``(pos, neg)`` pair per cell to its connection's updater (training only)."""
        if not self.training:
            return
        for cell in self.cells.values():
            assert isinstance(cell, Cell)
            if cell.separable:
                pos, neg = cell.separable_parts()
            elif cell.cached:
                pos, neg = cell.cached_parts()
            else:
                pos, neg = cell.update_parts(self.time_difference(cell, far=cell.fused))
            cell.connection.updater(self.target).push(pos, neg)

    def refresh_caches(self) -> None:
        """Rebuild stale kernel caches now (outside a compiled step; a no-op when fresh)."""
        for cell in self.cells.values():
            assert isinstance(cell, Cell)
            cell.refresh_cache()

    def plan_batch(self, steps: int, *, compiled: bool) -> None:
        """Let each cell pick its fastest exact path for a batch of ``steps`` steps."""
        for cell in self.cells.values():
            assert isinstance(cell, Cell)
            cell.plan_batch(steps, compiled=compiled)

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate the cells' per-sample caches for ``batch_size`` samples."""
        for cell in self.cells.values():
            assert isinstance(cell, Cell)
            cell.set_batch_size(batch_size)


class KernelSTDP(KernelTrainer):
    """Weights from Δ = t_post - t_pre, the pre spike seen through the synapse's delay.

    Args:
        delayed: read presynaptic ages at the exact continuous delay (``True``) or use the age
            of the last arrival with delays rounded up to steps (``False``). Only matters on a
            connection with active delays.
        interp_tolerance: delays within this many ms of a step multiple snap onto it
            (``delayed=True`` only). A delay outside ``[0, dt*ceil(max_delay/dt)]`` gives no pair.
    """

    target = "weight"
    extra_defaults: ClassVar[dict[str, Any]] = {"delayed": False, "interp_tolerance": 0.0}

    def _prepare(self, cell: Cell) -> None:
        conn = cell.connection
        conn.track_pre_ages()
        if conn.delays_active and cell.delayed:
            conn.track_age_history()
        elif conn.delays_active:
            conn.track_arrival_ages()
        if cell.fused and cell.numbers_only and not conn.delays_active:
            cell.enable_cache()

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor:
        conn = cell.connection
        a_post = cell.post_ages.age.unsqueeze(2)
        if far:
            a_post = far_ages(a_post, FAR_POST_AGE)
        if conn.delays_active and cell.delayed:
            assert conn.age_history is not None
            upper = conn.dt * (conn.history_length - 1)
            lag = conn.lag(tol=cell.interp_tolerance, upper=upper)
            seen = conn.age_history.gather(lag.steps) + lag.extra
            a_pre = torch.where(lag.valid, seen, torch.full_like(seen, math.nan))
        elif conn.delays_active:
            assert conn.arrival_ages is not None
            a_pre = conn.arrival_ages.age
        else:
            assert conn.pre_ages is not None
            a_pre = conn.pre_ages.age.unsqueeze(1)
        if far:
            a_pre = far_ages(a_pre, FAR_PRE_AGE)
        return a_pre - a_post


class _DelayAdjusted(KernelTrainer):
    """Δ = a_pre_raw - a_post - d: the latest raw pre spike shifted by the current delay."""

    needs_delays = True

    def _prepare(self, cell: Cell) -> None:
        if cell.connection.delay is None:
            raise ValueError(
                f"{type(self).__name__} needs a connection with delays: set max_delay on it"
            )
        cell.connection.track_pre_ages()

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor:
        conn = cell.connection
        assert conn.pre_ages is not None and conn.delay is not None
        a_pre = conn.pre_ages.age.unsqueeze(1)
        a_post = cell.post_ages.age.unsqueeze(2)
        if far:
            a_pre, a_post = far_ages(a_pre, FAR_PRE_AGE), far_ages(a_post, FAR_POST_AGE)
        return (a_pre - a_post).sub_(conn.delay)


class DelayAdjustedKernelSTDP(_DelayAdjusted):
    """Weights trained on the delay-adjusted difference (Nadafian & Ganjtabesh 2024)."""

    target = "weight"


class DelayAdjustedKernelSTDPD(_DelayAdjusted):
    """Delays trained on the delay-adjusted difference: ``d += pos - neg`` (kernel signs as given).

    With Hebbian-signed exp kernels a delay grows when the post spike follows ``pre + d`` and
    shrinks when it precedes it; "causal sync" (shorten the delay when post follows the arrival)
    uses a negative post learning rate and a positive pre learning rate.
    """

    target = "delay"


TRAINERS: dict[str, Callable[..., KernelTrainer]] = {
    "KernelSTDP": KernelSTDP,
    "DelayAdjustedKernelSTDP": DelayAdjustedKernelSTDP,
    "DelayAdjustedKernelSTDPD": DelayAdjustedKernelSTDPD,
}
