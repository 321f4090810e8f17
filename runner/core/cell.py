"""A cell: one connection trained by one trainer, with its resolved hyperparameters, its state
(kernel kwargs, the kernel cache) and the arithmetic path it takes (:mod:`runner.core.paths`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.kernels import KERNELS, Kernel, exp_side
from runner.core.paths import (
    FAR_POST_AGE,
    FAR_PRE_AGE,
    PATHS,
    SEPARABLE_SPAN,
    TimeDifference,
    UpdatePath,
    far_ages,
    fused_exp_values,
)
from runner.core.reductions import LINEAR_REDUCTIONS, REDUCTIONS, Reduction
from runner.core.stacking import replica_numbers

log = logging.getLogger(__name__)

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


class KernelArgs(nn.Module):
    """The kwargs of one kernel: numbers in a dict, tensors as buffers (they follow ``.to()``)."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        super().__init__()
        self.numbers: dict[str, Any] = {}
        #: stacked replicas: numbers that differ between them, exact (float64) ``[R, 1, 1, 1]``;
        #: the same in the network's dtype are buffers
        self.exact: dict[str, Tensor] = {}
        for key, value in kwargs.items():
            if isinstance(value, Tensor):
                self.register_buffer(key, value)
            else:
                self.numbers[key] = value

    def as_dict(self) -> dict[str, Any]:
        return {**self.numbers, **dict(self.named_buffers(recurse=False))}

    def number(self, key: str, *, exact: bool = False) -> Any:
        """A number kwarg: as given, or the replicas' ``[R, 1, 1, 1]`` (float64 with ``exact``)."""
        if key in self.numbers:
            return self.numbers[key]
        return self.exact[key] if exact else getattr(self, key)

    @torch.no_grad()
    def stack_from(self, solos: Sequence[KernelArgs], like: Tensor) -> None:
        """Take R replicas' kwargs: equal numbers stay numbers, differing ones become
        ``[R, 1, 1, 1]`` tensors, tensors ``[R, 1, ...]`` (to meet ``[R, B, O, I]``)."""
        for key, first in solos[0].as_dict().items():
            values = [s.as_dict()[key] for s in solos]
            if not isinstance(first, Tensor):
                stacked = replica_numbers(values, like=like, exact=True)
                if isinstance(stacked, Tensor):
                    del self.numbers[key]
                    self.exact[key] = stacked.view(-1, 1, 1, 1)
                    self.register_buffer(key, self.exact[key].to(like.dtype))
                continue
            both = torch.stack([torch.as_tensor(v, device=like.device) for v in values])
            pad = [1] * (3 - both.dim())
            self.register_buffer(key, both.view(both.shape[0], 1, *pad, *both.shape[1:]))


class Cell(nn.Module):
    """One connection trained by one trainer, with its resolved hyperparameters.

    The path is chosen from declared properties: ``fused`` when both kernels declare their
    exponential side and the reduction is linear, else ``plain``; the trainer may then enable
    the kernel cache (``cached``), and :meth:`plan_batch` picks ``separable`` or ``cached`` per
    batch. Each change is logged at debug level.
    """

    connection: DenseConnection
    post_ages: SpikeAges
    kernel_cache: Tensor | None

    def __init__(
        self,
        connection: DenseConnection,
        post_ages: SpikeAges,
        settings: dict[str, Any],
        name: str = "cell",
    ) -> None:
        super().__init__()
        # references, not submodules: the network owns them (and moves them)
        object.__setattr__(self, "connection", connection)
        object.__setattr__(self, "post_ages", post_ages)
        self.name = name
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
        # the incremental kernel cache (see enable_cache); off until a trainer enables it
        self.register_buffer("kernel_cache", None, persistent=False)
        self.cache_valid = False
        self.stacked = False  # replicas side by side (runner.core.replicas): Δ is [R, B, O, I]
        self.path: UpdatePath = PATHS["plain"]
        self.choose_path("fused" if self.exp_kernels else "plain")

    # ------------------------------------------------------------------------ path selection
    @property
    def exp_kernels(self) -> bool:
        """Both kernels declared exponential (post and pre sides) and a linear reduction."""
        return (
            exp_side(self.kernel_post) == "post"
            and exp_side(self.kernel_pre) == "pre"
            and self.batch_reduction in LINEAR_REDUCTIONS
        )

    def path_refusal(self, name: str) -> str | None:
        """Why path ``name`` would not be exact for this cell, or None if it is."""
        if name not in PATHS:
            return f"unknown path {name!r}; valid: {', '.join(PATHS)}"
        if name != "plain" and not self.exp_kernels:
            return "needs kernels declared exponential (post, pre) and a linear reduction"
        if name in ("cached", "separable") and self.kernel_cache is None:
            return "needs the kernel cache (undelayed KernelSTDP with number kwargs)"
        return None

    def choose_path(self, name: str) -> None:
        """Take path ``name`` from the next step on (ValueError where it would not be exact)."""
        refusal = self.path_refusal(name)
        if refusal is not None:
            raise ValueError(f"cell {self.name!r} cannot take the {name} path: {refusal}")
        if name != self.path.name:
            log.debug("cell %s: %s path", self.name, name)
        self.path = PATHS[name]

    @property
    def batch_dim(self) -> int:
        """The dimension of Δ ``[B, O, I]`` (solo) or ``[R, B, O, I]`` (stacked) reduced over."""
        return 1 if self.stacked else 0

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[Cell]) -> None:
        """Become the cells of R replicas side by side (their kwargs and kernel caches)."""
        self.stacked = True
        weight = self.connection.weight
        self.kernel_post_kwargs.stack_from([s.kernel_post_kwargs for s in solos], weight)
        self.kernel_pre_kwargs.stack_from([s.kernel_pre_kwargs for s in solos], weight)
        caches = [s.kernel_cache for s in solos]
        if all(c is not None and c.shape[0] > 0 for c in caches):
            self.kernel_cache = torch.cat([c for c in caches if c is not None])
            self.cache_valid = all(s.cache_valid for s in solos)
        elif self.kernel_cache is not None:
            self.set_batch_size(0)  # allocated and built on the first training step

    @property
    def separable(self) -> bool:
        return self.path.name == "separable"

    @property
    def cached(self) -> bool:
        """The kernel cache is enabled (the cached or separable path)."""
        return self.kernel_cache is not None

    def update_parts(self, trainer: TimeDifference) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` of shape ``[O, I]`` for this step, by the chosen path."""
        return self.path.parts(self, trainer)

    # -------------------------------------------------------------- incremental kernel cache
    def enable_cache(self) -> None:
        """Keep the kernel values ``K [B, O, I]`` between steps (undelayed exp KernelSTDP with
        number kwargs: :class:`runner.core.paths.CachedPath`).

        Caution: the cache follows the ages only if the trainer sees every step; it is rebuilt
        after ``load_state_dict``, a switch back from eval mode and ``set_batch_size``.
        """
        conn = self.connection
        self.kernel_cache = conn.weight.new_zeros((conn.batch_size, conn.n_out, conn.n_in))
        self.cache_valid = False  # built from the ages on the first step
        self.choose_path("cached")

    def refresh_cache(self) -> None:
        """Recompute the whole cache from the ages if it is stale (host-side check)."""
        if self.path.name != "cached" or self.cache_valid or not self.training:
            return  # not in use, fresh, or not trained (train() marks it stale again)
        assert self.connection.pre_ages is not None and self.kernel_cache is not None
        batch = self.post_ages.age.shape[0]
        if self.kernel_cache.shape[0] != batch:  # allocated lazily (see set_batch_size)
            conn = self.connection
            self.kernel_cache = conn.weight.new_zeros((batch, conn.n_out, conn.n_in))
        fold = self.connection.fold  # [R, B, ...] when stacked
        a_pre = far_ages(fold(self.connection.pre_ages.age), FAR_PRE_AGE).unsqueeze(-2)
        a_post = far_ages(fold(self.post_ages.age), FAR_POST_AGE).unsqueeze(-1)
        fold(self.kernel_cache).copy_(fused_exp_values(self, a_pre - a_post))
        self.cache_valid = True

    def plan_batch(self, steps: int, *, compiled: bool) -> None:
        """Choose the factorised path for the next batch of ``steps`` steps (ages start at NaN).

        Taken on the CPU for batches of several samples in a compiled step, when the ages (at most
        ``steps * dt`` after the reset at the batch start) keep every factor a normal number:
        ``steps * dt <= SEPARABLE_SPAN * tau`` for both time constants. Otherwise the kernel cache
        is used, which is rebuilt from the ages when the factorised path was used before.
        """
        if self.path.name not in ("cached", "separable"):
            return
        conn = self.connection
        taus = [
            kw.number("time_constant") for kw in (self.kernel_post_kwargs, self.kernel_pre_kwargs)
        ]
        span = SEPARABLE_SPAN.get(conn.weight.dtype, 0.0)
        separable = (
            compiled
            and conn.weight.device.type == "cpu"  # untimed on GPUs so far: the cache path there
            and conn.batch_size > 1
            and all(
                steps * conn.dt <= span * float(tau) for tau in taus if not isinstance(tau, Tensor)
            )
        )
        if separable and self.stacked:
            log.debug(
                "cell %s: stacked replicas take the cached path, not the separable one", self.name
            )
            separable = False
        self.choose_path("separable" if separable else "cached")
        if separable:
            self.cache_valid = False  # not advanced while the factorised path runs

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
