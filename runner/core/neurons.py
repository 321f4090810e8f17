r"""Batched spiking neuron populations: LIF, ALIF (adaptive threshold) and a forced population.

Leaky integrate-and-fire, integrated exactly for an input current held constant over one step:

    v(t + dt) = V_rest + (v(t) - V_rest - R I) exp(-dt / tau) + R I

with v the membrane voltage (mV), V_rest the rest voltage (mV), R the membrane resistance (MOhm),
I the input current (nA), tau the membrane time constant (ms) and dt the step (ms). For a constant
sub-threshold I from rest this gives v(t) = V_rest + R I (1 - exp(-t / tau)).

One step (SEMANTICS 8.1), with r the remaining refractory time (ms):
  1. r <- max(r - dt, 0); active = r < dt / 2   (the half-step tolerance absorbs float error)
  2. I_m = I * active; v' = V_rest + (v - V_rest - R I_m) exp(-dt / tau) + R I_m; v <- active ? v' : v
  3. spike = active & (v >= threshold)
  4. r <- spike ? k dt : r;  v <- spike ? V_reset : v

Refractory rule: refrac_t is rounded up to whole steps, k = ceil(refrac_t / dt), where a ratio within
1e-6 of an integer counts as that integer. A neuron that spikes at step s ignores its input (its
voltage stays at V_reset) and cannot spike at steps s+1 .. s+k-1, which is k-1 steps and none when
k <= 1; it integrates again from step s+k. So the shortest interval between two spikes is max(k, 1)
steps, i.e. refrac_t rounded up to the step grid. For refrac_t a multiple of dt this is inferno's
count of ceil(refrac_t / dt) - 1 blocked steps. Unlike inferno, ``spike`` holds the real output of
the last step, so refrac_t = 0 does not make every neuron spike on every step.

All populations return their ``spike`` buffer from ``forward``: it is overwritten by the next step,
so clone it to keep it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from runner.core.stacking import Value, broadcast, fold, per_row, replica_numbers

_GRID_RTOL = 1e-6


def whole_steps(duration_ms: float, dt: float) -> int:
    """Number of whole steps covering ``duration_ms``: ceil(duration / dt), where a ratio within a
    relative 1e-6 of an integer counts as that integer (so 0.3 ms at dt 0.1 is 3 steps, not 4)."""
    ratio = duration_ms / dt
    nearest = round(ratio)
    if abs(ratio - nearest) <= _GRID_RTOL * max(1.0, abs(ratio)):
        return int(nearest)
    return math.ceil(ratio)


def _check_common(n: int, batch_size: int, dtype: torch.dtype | None) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point dtype, got {dtype}")


def _check_positive(name: str, value: float, unit: str) -> float:
    if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0 {unit}, got {value!r}")
    return float(value)


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons (equations in the module docstring).

    Args:
        n: number of neurons N.
        dt: step length (ms), > 0.
        rest_v: rest voltage V_rest (mV), < thresh_v.
        reset_v: voltage after a spike V_reset (mV), < thresh_v.
        thresh_v: firing threshold (mV).
        refrac_t: absolute refractory period (ms), >= 0, rounded up to whole steps.
        time_constant: membrane time constant tau (ms), > 0.
        resistance: membrane resistance R (MOhm), > 0.
        batch_size: number of independent samples B.

    Shape:
        forward: current ``[B, N]`` (nA, module dtype) -> spikes ``[B, N]`` bool.

    Attributes:
        voltage: ``[B, N]`` membrane voltage (mV), starts at rest_v.
        refrac: ``[B, N]`` remaining refractory time (ms), starts at 0.
        spike: ``[B, N]`` bool, the output of the last step.
    """

    voltage: Tensor
    refrac: Tensor
    spike: Tensor
    _active: Tensor
    #: the parameters that may differ between stacked replicas
    REPLICA_VALUES: tuple[str, ...] = ("rest_v", "reset_v", "thresh_v", "decay", "resistance")
    _drive: Tensor
    _vnext: Tensor

    def __init__(
        self,
        n: int,
        *,
        dt: float,
        rest_v: float,
        reset_v: float,
        thresh_v: float,
        refrac_t: float,
        time_constant: float,
        resistance: float = 1.0,
        batch_size: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_common(n, batch_size, dtype)
        self.dt = _check_positive("dt", dt, "ms")
        if not rest_v < thresh_v:
            raise ValueError(f"rest_v must be < thresh_v={thresh_v!r} mV, got {rest_v!r}")
        if not reset_v < thresh_v:
            raise ValueError(f"reset_v must be < thresh_v={thresh_v!r} mV, got {reset_v!r}")
        if not (isinstance(refrac_t, int | float) and refrac_t >= 0 and math.isfinite(refrac_t)):
            raise ValueError(f"refrac_t must be a finite number >= 0 ms, got {refrac_t!r}")
        self.time_constant = _check_positive("time_constant", time_constant, "ms")
        self.resistance = _check_positive("resistance", resistance, "MOhm")
        self.n = n
        self.batch_size = batch_size
        self.rest_v = float(rest_v)
        self.reset_v = float(reset_v)
        self.thresh_v = float(thresh_v)
        self.refrac_t = float(refrac_t)
        self.refrac_steps = whole_steps(self.refrac_t, self.dt)
        self.decay = math.exp(-self.dt / self.time_constant)
        self._dtype = dtype
        #: replicas simulated side by side (``runner.core.replicas``); 1 and False when solo
        self.replicas, self.stacked = 1, False
        self._per_replica: dict[str, Tensor] = {}  # parameters that differ between replicas, [R]
        self._rows: dict[str, Tensor] = {}  # the same per sample row, [R*B, 1]
        self._allocate(batch_size, device)

    def _allocate(self, batch_size: int, device: torch.device | str | None) -> None:
        shape = (batch_size, self.n)
        dtype = self._dtype
        self.register_buffer("voltage", torch.full(shape, self.rest_v, device=device, dtype=dtype))
        self.register_buffer("refrac", torch.zeros(shape, device=device, dtype=dtype))
        self.register_buffer("spike", torch.zeros(shape, device=device, dtype=torch.bool))
        self.register_buffer("_active", torch.ones(shape, device=device, dtype=torch.bool), False)
        self.register_buffer("_drive", torch.zeros(shape, device=device, dtype=dtype), False)
        self.register_buffer("_vnext", torch.zeros(shape, device=device, dtype=dtype), False)
        self._rows = {k: per_row(v, batch_size) for k, v in self._per_replica.items()}

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate the per-sample state for ``batch_size`` samples (at rest, not refractory).

        Stacked: ``batch_size`` counts rows (replicas x samples), a multiple of ``replicas``.
        """
        _check_common(self.n, batch_size, None)
        if batch_size % self.replicas:
            raise ValueError(
                f"batch_size {batch_size} is not a multiple of {self.replicas} replicas"
            )
        self.batch_size = batch_size
        self._allocate(batch_size, self.voltage.device)

    def _value(self, name: str) -> Value:
        """Parameter ``name``: a float, or ``[R*B, 1]`` where the replicas differ."""
        return self._rows.get(name, getattr(self, name))

    @torch.no_grad()
    def reset_state(self) -> None:
        """Return every sample to rest: v = rest_v, r = 0, no spike."""
        rest = self._value("rest_v")
        if isinstance(rest, Tensor):
            self.voltage.copy_(rest.expand_as(self.voltage))
        else:
            self.voltage.fill_(rest)
        self.refrac.zero_()
        self.spike.zero_()

    def _step(self, current: Tensor, threshold: float | Tensor) -> None:
        """Steps 1-4 of the module docstring, in place on the state buffers."""
        r, v, active = self.refrac, self.voltage, self._active
        drive, vnext = self._drive, self._vnext
        rest, decay = self._value("rest_v"), self._value("decay")
        r.sub_(self.dt).clamp_(min=0.0)
        torch.lt(r, 0.5 * self.dt, out=active)
        torch.mul(current, active, out=drive)
        drive.mul_(self._value("resistance"))  # R I_m
        torch.sub(v, rest, out=vnext)
        vnext.sub_(drive).mul_(decay).add_(rest).add_(drive)
        torch.where(active, vnext, v, out=v)
        torch.ge(v, threshold, out=self.spike)
        self.spike.logical_and_(active)
        _fill(r, self.spike, self._rows.get("refrac_fill", self.refrac_steps * self.dt))
        _fill(v, self.spike, self._value("reset_v"))

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[LIF]) -> None:
        """Become the R replicas ``solos`` side by side (their parameters and state)."""
        self.replicas, self.stacked = len(solos), True
        values = {key: [getattr(s, key) for s in solos] for key in self.REPLICA_VALUES}
        values["refrac_fill"] = [s.refrac_steps * s.dt for s in solos]
        for key, numbers in values.items():
            value = replica_numbers(numbers, like=solos[0].voltage)
            if isinstance(value, Tensor):
                self._per_replica[key] = value
        self.batch_size = sum(s.batch_size for s in solos)
        self._allocate(self.batch_size, self.voltage.device)
        for name in ("voltage", "refrac", "spike"):
            getattr(self, name).copy_(torch.cat([getattr(s, name) for s in solos]))

    @torch.no_grad()
    def forward(self, current: Tensor) -> Tensor:
        """One step with input current ``[B, N]`` (nA); returns the ``spike`` buffer."""
        self._step(current, self._value("thresh_v"))
        return self.spike

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, batch_size={self.batch_size}, dt={self.dt}, rest_v={self.rest_v}, "
            f"reset_v={self.reset_v}, thresh_v={self.thresh_v}, refrac_t={self.refrac_t}, "
            f"time_constant={self.time_constant}, resistance={self.resistance}"
        )


def _fill(t: Tensor, mask: Tensor, value: Value) -> None:
    """``t[mask] = value`` in place, for a number or a per-row ``[R*B, 1]`` tensor."""
    if isinstance(value, Tensor):
        torch.where(mask, value, t, out=t)
    else:
        t.masked_fill_(mask, value)


class ALIF(LIF):
    r"""LIF with an adaptive threshold theta per neuron (Diehl & Cook 2015).

    The threshold is thresh_v + theta. In training mode (``self.training``), after each step and
    for every sample b (as inferno's ALIF does):

        theta_b = theta * exp(-dt / tc_adaptation), except that a neuron still refractory after the
                  step (r > 0, which includes a neuron that just spiked when refrac_t > 0) keeps
                  theta
        theta_b = theta_b + spike_increment * spike_b
        theta  <- mean over b of theta_b

    In eval mode theta is frozen. theta is shared by the batch (shape ``[N]``), persistent, and
    not reset by ``reset_state`` because it is learned across samples; ``reset_adaptation`` zeros it.

    Args (besides LIF's):
        tc_adaptation: time constant of the decay of theta (ms), > 0.
        spike_increment: growth of theta per spike (mV), >= 0.

    Attributes:
        theta: ``[N]`` threshold adaptation (mV), starts at 0.
    """

    theta: Tensor
    _threshold: Tensor
    _theta_decayed: Tensor
    _theta_batch: Tensor
    REPLICA_VALUES = (*LIF.REPLICA_VALUES, "spike_increment", "adapt_decay")

    def __init__(
        self,
        n: int,
        *,
        dt: float,
        rest_v: float,
        reset_v: float,
        thresh_v: float,
        refrac_t: float,
        time_constant: float,
        tc_adaptation: float,
        spike_increment: float,
        resistance: float = 1.0,
        batch_size: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            n,
            dt=dt,
            rest_v=rest_v,
            reset_v=reset_v,
            thresh_v=thresh_v,
            refrac_t=refrac_t,
            time_constant=time_constant,
            resistance=resistance,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
        )
        self.tc_adaptation = _check_positive("tc_adaptation", tc_adaptation, "ms")
        ok = isinstance(spike_increment, int | float) and math.isfinite(spike_increment)
        if not (ok and spike_increment >= 0):
            raise ValueError(
                f"spike_increment must be a finite number >= 0 mV, got {spike_increment!r}"
            )
        self.spike_increment = float(spike_increment)
        self.adapt_decay = math.exp(-self.dt / self.tc_adaptation)
        self.register_buffer("theta", torch.zeros(n, device=device, dtype=dtype))
        self.register_buffer("_threshold", torch.zeros(n, device=device, dtype=dtype), False)
        self.register_buffer("_theta_decayed", torch.zeros(n, device=device, dtype=dtype), False)

    def _allocate(self, batch_size: int, device: torch.device | str | None) -> None:
        super()._allocate(batch_size, device)
        shape = (batch_size, self.n)
        work = torch.zeros(shape, device=device, dtype=self._dtype)
        self.register_buffer("_theta_batch", work, False)

    @torch.no_grad()
    def reset_adaptation(self) -> None:
        """Zero the learned threshold adaptation theta."""
        self.theta.zero_()

    @torch.no_grad()
    def forward(self, current: Tensor) -> Tensor:
        """One step with input current ``[B, N]`` (nA); adapts theta in training mode."""
        if self.stacked:
            return self._forward_stacked(current)
        torch.add(self.theta, self.thresh_v, out=self._threshold)
        self._step(current, self._threshold)
        if self.training:
            torch.mul(self.theta, self.adapt_decay, out=self._theta_decayed)
            refractory = torch.gt(self.refrac, 0.5 * self.dt, out=self._active)  # reuse scratch
            torch.where(refractory, self.theta, self._theta_decayed, out=self._theta_batch)
            self._theta_batch.add_(self.spike, alpha=self.spike_increment)
            torch.mean(self._theta_batch, dim=0, out=self.theta)
        return self.spike

    def _replica_value(self, name: str) -> Value:
        """Parameter ``name``: a float, or ``[R, 1]`` (against ``theta [R, N]``)."""
        value = self._per_replica.get(name)
        return getattr(self, name) if value is None else broadcast(value, 2)

    def _forward_stacked(self, current: Tensor) -> Tensor:
        """:meth:`forward` of R replicas: ``theta [R, N]``, each the mean over its own samples."""
        rows = self.spike.shape[0]
        torch.add(self.theta, self._replica_value("thresh_v"), out=self._threshold)
        self._step(current, per_row(self._threshold, rows))
        if self.training:
            torch.mul(self.theta, self._replica_value("adapt_decay"), out=self._theta_decayed)
            refractory = torch.gt(self.refrac, 0.5 * self.dt, out=self._active)
            theta, decayed = per_row(self.theta, rows), per_row(self._theta_decayed, rows)
            torch.where(refractory, theta, decayed, out=self._theta_batch)
            increment = self._value("spike_increment")
            if isinstance(increment, Tensor):  # spike * increment is exact: as the fused add
                self._theta_batch.add_(self.spike.to(increment.dtype) * increment)
            else:
                self._theta_batch.add_(self.spike, alpha=increment)
            torch.mean(fold(self._theta_batch, self.replicas), dim=1, out=self.theta)
        return self.spike

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[LIF]) -> None:
        """Become the R replicas ``solos``: ``theta`` becomes ``[R, N]``."""
        super().stack_replicas(solos)
        theta = torch.stack([cast(ALIF, s).theta for s in solos])
        self.theta = theta
        self._threshold = torch.zeros_like(theta)
        self._theta_decayed = torch.zeros_like(theta)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, tc_adaptation={self.tc_adaptation}, "
            f"spike_increment={self.spike_increment}"
        )


class ForcedPopulation(nn.Module):
    """A population that emits the spikes it is given (inputs, replay, pairing protocols).

    Args:
        n: number of neurons N.
        batch_size: number of samples B.
        dt: step length (ms); unused, accepted so every population takes the same arguments.

    Shape:
        forward: spikes ``[B, N]`` (bool, or numbers where nonzero means a spike) -> ``[B, N]``
        bool, the ``spike`` buffer.
    """

    spike: Tensor

    def __init__(
        self,
        n: int,
        *,
        batch_size: int = 1,
        dt: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_common(n, batch_size, dtype)
        if dt is not None:
            _check_positive("dt", dt, "ms")
        self.n = n
        self.batch_size = batch_size
        self.dt = dt
        self.replicas, self.stacked = 1, False
        self.register_buffer("spike", torch.zeros(batch_size, n, device=device, dtype=torch.bool))

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate ``spike`` for ``batch_size`` samples."""
        _check_common(self.n, batch_size, None)
        self.batch_size = batch_size
        self.spike = torch.zeros(batch_size, self.n, device=self.spike.device, dtype=torch.bool)

    @torch.no_grad()
    def reset_state(self) -> None:
        """Clear the last output."""
        self.spike.zero_()

    @torch.no_grad()
    def stack_replicas(self, solos: Sequence[ForcedPopulation]) -> None:
        """Become the R populations ``solos`` side by side (``spike [R*B, N]``)."""
        self.replicas, self.stacked = len(solos), True
        self.batch_size = sum(s.batch_size for s in solos)
        self.spike = torch.cat([s.spike for s in solos])

    @torch.no_grad()
    def forward(self, spikes: Tensor) -> Tensor:
        """Copy ``spikes`` into the ``spike`` buffer and return it."""
        self.spike.copy_(spikes)
        return self.spike

    def extra_repr(self) -> str:
        return f"n={self.n}, batch_size={self.batch_size}"


# name -> class, for the registries (config ``kind``)
NEURONS: dict[str, type[nn.Module]] = {"lif": LIF, "alif": ALIF, "forced": ForcedPopulation}
