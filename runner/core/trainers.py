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
it when the loop says so (:mod:`runner.core.updater`). How a cell computes it (plain, fused,
cached or separable arithmetic, all exact) is its path: :mod:`runner.core.cell` and
:mod:`runner.core.paths`.

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
from runner.core.cell import Cell, KernelSpec, ReductionSpec, resolve_kernel, resolve_reduction
from runner.core.dense import DenseConnection
from runner.core.paths import FAR_POST_AGE, FAR_PRE_AGE, far_ages


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
        cell = Cell(connection, post_ages, settings, name=name)
        self._prepare(cell)
        connection.updater(self.target)
        self.cells[name] = cell
        return cell

    def _prepare(self, cell: Cell) -> None:
        """Ask the connection to track what :meth:`time_difference` reads."""
        cell.connection.track_pre_ages()

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor:
        """Δ ``[B, O, I]`` (ms; ``[R, B, O, I]`` for stacked replicas); NaN where a spike is
        missing, or huge with ``far``."""
        raise NotImplementedError

    def forward(self) -> None:
        """Push one ``(pos, neg)`` pair per cell to its connection's updater (training only)."""
        if not self.training:
            return
        for cell in self.cells.values():
            assert isinstance(cell, Cell)
            pos, neg = cell.update_parts(self)
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
        if cell.path.name == "fused" and cell.numbers_only and not conn.delays_active:
            cell.enable_cache()

    def time_difference(self, cell: Cell, *, far: bool = False) -> Tensor:
        conn = cell.connection
        fold, per_synapse = conn.fold, conn.per_synapse  # identities unless stacked
        a_post = fold(cell.post_ages.age).unsqueeze(-1)
        if far:
            a_post = far_ages(a_post, FAR_POST_AGE)
        if conn.delays_active and cell.delayed:
            assert conn.age_history is not None
            upper = conn.dt * (conn.history_length - 1)
            lag = conn.lag(tol=cell.interp_tolerance, upper=upper)
            seen = conn.age_history.gather(lag.steps) + per_synapse(lag.extra)
            a_pre = torch.where(per_synapse(lag.valid), seen, torch.full_like(seen, math.nan))
        elif conn.delays_active:
            assert conn.arrival_ages is not None
            a_pre = fold(conn.arrival_ages.age)
        else:
            assert conn.pre_ages is not None
            a_pre = fold(conn.pre_ages.age).unsqueeze(-2)
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
        a_pre = conn.fold(conn.pre_ages.age).unsqueeze(-2)
        a_post = conn.fold(cell.post_ages.age).unsqueeze(-1)
        if far:
            a_pre, a_post = far_ages(a_pre, FAR_PRE_AGE), far_ages(a_post, FAR_POST_AGE)
        return (a_pre - a_post).sub_(conn.per_synapse(conn.delay))


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
