"""Dense (all-to-all) connection with optional learned per-synapse delays.

Transmission (delta-current synapse): a presynaptic spike of input ``i`` at step ``t`` reaches
output ``o`` at step ``t + k(d[o, i])``, where ``k`` rounds a continuous delay *up* to whole steps
(:mod:`runner.core.delays`). The current is ``y[b, o] = sum_i arrived[b, o, i] * W[o, i] * scale/dt``.
A delay outside ``[0, max_delay]`` transmits nothing. Without delays (``max_delay`` None or 0)
``y = x @ W.T * scale/dt``.

The connection also keeps what its learning rules read on the presynaptic side, each enabled only
when a trainer asks for it and advanced only in training mode (in eval mode nothing learns, and
every batch starts from rest): the ages of the raw presynaptic spikes, a history of those ages (for
``KernelSTDP(delayed=True)``, which reads them at the exact continuous delay) and per-synapse ages
of the last *arrival* (for ``KernelSTDP(delayed=False)`` on a delayed connection).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from runner.core.ages import History, SpikeAges, SpikeBits
from runner.core.delays import Lag, delay_lag
from runner.core.stacking import fold, replica_matmul
from runner.core.updater import ParameterUpdater


class DenseConnection(nn.Module):
    """All-to-all connection ``I -> O`` with weights ``[O, I]`` and optional delays ``[O, I]`` (ms).

    Args:
        n_in, n_out: sizes of the pre- and postsynaptic populations.
        dt: step length (ms).
        batch_size: number of independent samples simulated together.
        weight: initial weights ``[O, I]``.
        delay: initial delays ``[O, I]`` in ms (zeros if omitted); only with ``max_delay``.
        max_delay: the longest delay the spike history can serve (ms); ``None`` means the
            connection has no delay parameter, 0 means delays exist but are inactive.
        scale: the charge of one spike (delta-current synapse): current = spike * scale / dt.
    """

    weight: nn.Parameter
    delay: nn.Parameter | None

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        dt: float,
        batch_size: int = 1,
        weight: Tensor,
        delay: Tensor | None = None,
        max_delay: float | None = None,
        scale: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dt <= 0:
            raise ValueError(f"dt must be > 0 ms, got {dt}")
        if max_delay is not None and max_delay < 0:
            raise ValueError(f"max_delay must be >= 0 ms or None, got {max_delay}")
        if tuple(weight.shape) != (n_out, n_in):
            raise ValueError(f"weight must have shape {(n_out, n_in)}, got {tuple(weight.shape)}")
        self.n_in, self.n_out, self.batch_size = int(n_in), int(n_out), int(batch_size)
        self.dt, self.scale = float(dt), float(scale)
        self.max_delay = None if max_delay is None else float(max_delay)
        dtype = dtype or weight.dtype
        self.weight = nn.Parameter(
            weight.detach().to(device=device, dtype=dtype).clone(), requires_grad=False
        )
        if max_delay is None:
            if delay is not None:
                raise ValueError("delay given but max_delay is None: set max_delay to learn delays")
            self.register_parameter("delay", None)
        else:
            init = torch.zeros(n_out, n_in) if delay is None else delay.detach()
            if tuple(init.shape) != (n_out, n_in):
                raise ValueError(f"delay must have shape {(n_out, n_in)}, got {tuple(init.shape)}")
            self.delay = nn.Parameter(
                init.to(device=device, dtype=dtype).clone(), requires_grad=False
            )
        # history of raw input spikes, long enough for the longest delay (ceil(maxd/dt) + 1 steps)
        self.history_length = math.ceil(self.max_delay / self.dt) + 1 if self.max_delay else 1
        self.spikes = self._spike_history(device) if self.delays_active else None
        self.pre_ages: SpikeAges | None = None
        self.age_history: History | None = None
        self.arrival_ages: SpikeAges | None = None
        self.updaters = nn.ModuleDict()
        self._frozen_weight: Tensor | None = None  # eval mode: stacked per-lag weights
        #: replicas side by side (``runner.core.replicas``): weights ``[R, O, I]``, state ``[R*B, ...]``
        self.replicas, self.stacked = 1, False

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[DenseConnection]) -> None:
        """Become the R connections ``solos`` side by side (their state modules stack themselves)."""
        self.replicas, self.stacked = len(solos), True
        self.batch_size = sum(s.batch_size for s in solos)
        self.weight.data = torch.stack([s.weight.data for s in solos])
        if self.delay is not None:
            self.delay.data = torch.stack([s.delay.data for s in solos if s.delay is not None])
        self._frozen_weight = None

    def fold(self, t: Tensor) -> Tensor:
        """Per-sample ``[R*B, ...]`` as ``[R, B, ...]`` when stacked (else ``t`` itself)."""
        return fold(t, self.replicas) if self.stacked else t

    def per_synapse(self, t: Tensor) -> Tensor:
        """Per-synapse ``[R, O, I]`` as ``[R, 1, O, I]`` when stacked, to meet folded samples."""
        return t.unsqueeze(1) if self.stacked else t

    # ----------------------------------------------------------------------------------- setup
    def _spike_history(self, device: torch.device | str | None) -> History | SpikeBits:
        """Input spikes of the last ``history_length`` steps: bits when they fit in 31."""
        if self.history_length <= SpikeBits.MAX_LENGTH:
            return SpikeBits(self.batch_size, self.n_in, self.history_length, device=device)
        return History(
            self.batch_size,
            self.n_in,
            self.history_length,
            fill=False,
            device=device,
            dtype=torch.bool,
        )

    @property
    def delays_active(self) -> bool:
        """True when spikes are routed through per-synapse delays (``max_delay`` set and > 0)."""
        return bool(self.max_delay)

    def track_pre_ages(self) -> SpikeAges:
        """Keep ages of the raw presynaptic spikes ``[B, I]`` (used by all kernel trainers)."""
        if self.pre_ages is None:
            self.pre_ages = SpikeAges(
                (self.batch_size, self.n_in),
                dt=self.dt,
                device=self.weight.device,
                dtype=self.weight.dtype,
            )
        return self.pre_ages

    def track_age_history(self) -> History:
        """Keep the last ``ceil(max_delay/dt) + 1`` presynaptic ages (for delayed KernelSTDP)."""
        self.track_pre_ages()
        if self.age_history is None:
            self.age_history = History(
                self.batch_size,
                self.n_in,
                self.history_length,
                fill=math.nan,
                device=self.weight.device,
                dtype=self.weight.dtype,
            )
        return self.age_history

    def track_arrival_ages(self) -> SpikeAges:
        """Keep per-synapse ages of the last delayed arrival ``[B, O, I]``."""
        if self.arrival_ages is None:
            self.arrival_ages = SpikeAges(
                (self.batch_size, self.n_out, self.n_in),
                dt=self.dt,
                device=self.weight.device,
                dtype=self.weight.dtype,
            )
        return self.arrival_ages

    def updater(self, name: str) -> ParameterUpdater:
        """The updater of parameter ``name`` (``weight`` or ``delay``), created on first use."""
        if name not in self.updaters:
            param = getattr(self, name, None)
            if not isinstance(param, nn.Parameter):
                raise ValueError(f"connection has no parameter {name!r} to update")
            self.updaters[name] = ParameterUpdater(param)
        updater = self.updaters[name]
        assert isinstance(updater, ParameterUpdater)
        return updater

    # ------------------------------------------------------------------------------------ step
    def lag(
        self, tol: float = 0.0, upper: float | None = None, dtype: torch.dtype = torch.long
    ) -> Lag:
        """Whole-step lags of the current delays (valid within ``[0, upper]``, default max_delay)."""
        assert self.delay is not None and self.max_delay is not None
        return delay_lag(
            self.delay,
            dt=self.dt,
            tol=tol,
            max_steps=self.history_length - 1,
            upper=self.max_delay if upper is None else upper,
            dtype=dtype,
        )

    def forward(self, spikes: Tensor) -> Tensor:
        """One step: push input spikes ``[B, I]`` (bool), return the current ``[B, O]``."""
        gain = self.scale / self.dt
        if self.spikes is None:
            x = spikes.to(self.weight.dtype)  # a float copy: compiled loops read it fast
            if self.training:  # ages feed learning only (a batch starts from rest anyway)
                self._observe_pre(x != 0)
            if self.stacked:  # [R, B, I] @ [R, I, O]
                out = replica_matmul(fold(x, self.replicas), self.weight.transpose(1, 2))
                return out.view(x.shape[0], self.n_out) * gain
            return (x @ self.weight.t()) * gain
        self.spikes.push(spikes)
        if not self.training and isinstance(self.spikes, SpikeBits):
            return self._frozen_delayed_current(gain)
        lag = self.lag(dtype=torch.int32 if isinstance(self.spikes, SpikeBits) else torch.long)
        arrived = self.spikes.gather(lag.steps) & self.per_synapse(lag.valid)
        if self.training:
            self._observe_pre(spikes)
            if self.arrival_ages is not None:
                self.arrival_ages.observe(arrived.view(self.arrival_ages.age.shape))
        if self.stacked:  # [R, B, O, I] with [R, O, I]
            current = torch.einsum("rboi,roi->rbo", arrived.to(self.weight.dtype), self.weight)
            return current.reshape(spikes.shape[0], self.n_out) * gain
        return torch.einsum("boi,oi->bo", arrived.to(self.weight.dtype), self.weight) * gain

    def _frozen_delayed_current(self, gain: float) -> Tensor:
        """The delayed current in eval mode, as one matrix product over the spike history.

        With the parameters fixed (nothing learns in eval mode), ``W_k = W * (lag == k)`` is
        stacked once into ``[L * I, O]`` and the last ``L`` steps of input spikes ``[B, L * I]``
        meet it in one product: a few flops per synapse and step instead of a gather of
        ``[B, O, I]``. Equal to the training path up to the order of the summation.
        """
        assert isinstance(self.spikes, SpikeBits)
        if self._frozen_weight is None:
            lag = self.lag()
            shape = (-1, *([1] * lag.steps.dim()))
            steps = torch.arange(self.history_length, device=lag.steps.device).view(shape)
            picked = (lag.steps.unsqueeze(0) == steps) & lag.valid.unsqueeze(0)  # [L, (R,) O, I]
            stacked = torch.where(picked, self.weight.unsqueeze(0), 0.0)
            if self.stacked:  # [R, L * I, O]
                stacked = stacked.permute(1, 0, 3, 2).reshape(self.replicas, -1, self.n_out)
                self._frozen_weight = stacked.contiguous()
            else:
                self._frozen_weight = stacked.transpose(1, 2).reshape(-1, self.n_out).contiguous()
        bits = self.spikes.bits
        history = self.weight.new_empty((bits.shape[0], self.history_length, self.n_in))
        bit = torch.empty_like(bits)
        for k in range(self.history_length):  # per lag: contiguous [B, I] passes, vector code
            torch.bitwise_right_shift(bits, k, out=bit)
            history[:, k].copy_(bit.bitwise_and_(1))
        if self.stacked:
            flat = history.view(self.replicas, -1, self.history_length * self.n_in)
            return torch.bmm(flat, self._frozen_weight).view(bits.shape[0], -1) * gain
        return (history.reshape(bits.shape[0], -1) @ self._frozen_weight) * gain

    def train(self, mode: bool = True) -> DenseConnection:
        self._frozen_weight = None  # rebuilt from the current parameters in the next eval
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._frozen_weight = None
        super()._load_from_state_dict(*args, **kwargs)

    def observe(self, spikes: Tensor) -> None:
        """One step without transmission: the state changes exactly as in :meth:`forward`.

        For replays, where the postsynaptic spikes are imposed and the current is never read:
        skips the ``[B, O, I]`` delayed delivery and the weighted sum (the arrivals are still
        gathered when a trainer tracks their ages).
        """
        if self.spikes is None:
            self._observe_pre(spikes)
            return
        self.spikes.push(spikes)
        self._observe_pre(spikes)
        if self.arrival_ages is not None:
            lag = self.lag(dtype=torch.int32 if isinstance(self.spikes, SpikeBits) else torch.long)
            arrived = self.spikes.gather(lag.steps) & self.per_synapse(lag.valid)
            self.arrival_ages.observe(arrived.view(self.arrival_ages.age.shape))

    def _observe_pre(self, spikes: Tensor) -> None:
        if self.pre_ages is not None:
            ages = self.pre_ages.observe(spikes)
            if self.age_history is not None:
                self.age_history.push(ages)

    def apply_updates(self) -> None:
        """Apply and clear every parameter's accumulated update (weights before delays)."""
        for name in ("weight", "delay"):
            if name in self.updaters:
                self.updater(name).apply_pending()

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate the per-sample state (spikes in flight, ages) for ``batch_size`` samples."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        had = (self.pre_ages, self.age_history, self.arrival_ages)
        self.pre_ages = self.age_history = self.arrival_ages = None
        if self.spikes is not None:
            self.spikes = self._spike_history(self.weight.device)
        if had[0] is not None:
            self.track_pre_ages()
        if had[1] is not None:
            self.track_age_history()
        if had[2] is not None:
            self.track_arrival_ages()

    def reset_state(self) -> None:
        """Forget all spikes in flight and all ages (between samples); parameters are kept."""
        for module in (self.spikes, self.pre_ages, self.age_history, self.arrival_ages):
            if module is not None:
                module.reset_state()

    def extra_repr(self) -> str:
        return (
            f"n_in={self.n_in}, n_out={self.n_out}, dt={self.dt}, scale={self.scale}, "
            f"max_delay={self.max_delay}, batch_size={self.batch_size}"
        )
