"""Minimal hand-written pure-torch loops doing the arithmetic of the benchmark workloads.

These are the yardstick of ``scripts/bench.py``: the least code that performs the same per-step
arithmetic as the runner for each workload, with no framework around it (no modules, registries,
hooks or trainers), run eagerly or through ``torch.compile``. Given the same input spikes and
initial parameters they produce the runner's weights (and delays) up to float rounding, which
``tests/test_bench.py`` checks.

One step, in the runner's order (``runner/core/network.py``), with ``gain = scale / dt``:

    I     = gain * sum_i W[o, i] * x_arrived[b, o, i]              (dense input, maybe delayed)
    LIF   r <- max(r - dt, 0); a = r < dt/2; D = R I a
          v <- a ? (v - V_rest - D) e^(-dt/tau) + V_rest + D : v;  s = a & v >= V_th (+ theta)
          r <- s ? k dt : r;  v <- s ? V_reset : v
    ages  A_pre <- x ? 0 : A_pre + dt;  A_post <- s ? 0 : A_post + dt   (never-spiked = far)
    Δ     = A_pre[b, i] - A_post[b, o] (- d[o, i] for the delay-adjusted rules)
    K     = Δ >= 0 ? lr_post e^(-|Δ|/tau_post) : lr_pre e^(-|Δ|/tau_pre)   (0 where exp underflows)
    P, N  = mean_b max(K, 0), -mean_b min(K, 0)
    W    <- clamp(W + (W_max - W) P - (W - W_min) N)       (the bounds the workload configures)

"Far" ages stand in for "no spike yet": they are so large that every kernel is exactly 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

FAR_PRE, FAR_POST = 1e30, 3e30
UNDERFLOW = {torch.float32: -80.0, torch.float64: -700.0}


@dataclass(frozen=True)
class LIFSpec:
    """A LIF (or ALIF, with ``adapt_decay``/``spike_increment``) population, in runner units."""

    n: int
    rest_v: float
    reset_v: float
    thresh_v: float
    refrac_steps: int
    decay: float
    resistance: float = 1.0
    adapt_decay: float | None = None
    spike_increment: float = 0.0


@dataclass(frozen=True)
class ExpRule:
    """Exponential kernels of one learning rule: (learning rate, time constant) per side."""

    lr_post: float
    tau_post: float
    lr_pre: float
    tau_pre: float


@dataclass(frozen=True)
class Bounds:
    """Multiplicative soft bounds (``None``: that side is absent) and hard clamps."""

    upper: float | None = None
    lower: float | None = None
    clamp_min: float | None = None
    clamp_max: float | None = None


@dataclass
class Spec:
    """Everything one workload's loop needs (plain numbers, so it can be saved and reloaded)."""

    dt: float
    scale: float
    exc: LIFSpec
    weight_rule: ExpRule
    weight_bounds: Bounds
    max_delay: float | None = None  # learned delays (and the delay rule) when set
    delay_rule: ExpRule | None = None
    delay_bounds: Bounds = field(default_factory=Bounds)
    inh: LIFSpec | None = None  # Diehl & Cook: exc -> inh one-to-one, inh -> exc lateral
    exc_inh_gain: float = 0.0  # scale / dt of exc -> inh
    inh_exc_gain: float = 0.0  # scale / dt of inh -> exc
    normalize: float | None = None  # L1 target of each row of W, after every batch


def _lif_state(spec: LIFSpec, batch: int, dtype: torch.dtype, device: Any) -> dict[str, Tensor]:
    f = {"dtype": dtype, "device": device}
    return {
        "v": torch.full((batch, spec.n), spec.rest_v, **f),
        "r": torch.zeros(batch, spec.n, **f),
        "theta": torch.zeros(spec.n, **f),
    }


def _lif(st: dict[str, Tensor], p: LIFSpec, current: Tensor, dt: float) -> Tensor:
    """One LIF/ALIF step in place on ``st``; returns the spikes ``[B, N]``."""
    v, r = st["v"], st["r"]
    r.sub_(dt).clamp_(min=0.0)
    active = r < 0.5 * dt
    drive = current * active * p.resistance
    vnext = (v - p.rest_v - drive) * p.decay + p.rest_v + drive
    v.copy_(torch.where(active, vnext, v))
    threshold = p.thresh_v if p.adapt_decay is None else st["theta"] + p.thresh_v
    spike = (v >= threshold) & active
    r.masked_fill_(spike, p.refrac_steps * dt)
    v.masked_fill_(spike, p.reset_v)
    if p.adapt_decay is not None:  # theta per sample, then the batch mean (training mode)
        theta = st["theta"]
        per_sample = torch.where(r > 0.5 * dt, theta, theta * p.adapt_decay)
        theta.copy_((per_sample + spike * p.spike_increment).mean(0))
    return spike


def _parts(delta: Tensor, rule: ExpRule) -> tuple[Tensor, Tensor]:
    """Batch-mean positive and negative parts of the two exp kernels on ``delta [B, O, I]``."""
    causal = delta >= 0
    pair = delta.new_tensor  # two Python numbers would make a default-dtype (float32) where
    exponent = delta.abs() / torch.where(causal, pair(-rule.tau_post), pair(-rule.tau_pre))
    floor = UNDERFLOW[delta.dtype]  # exp is slow where it underflows: write 0 there instead
    k = torch.where(exponent < floor, 0.0, torch.exp(exponent.clamp_min(floor)))
    k = k * torch.where(causal, pair(rule.lr_post), pair(rule.lr_pre))
    return k.clamp_min(0).mean(0), k.clamp_max(0).mean(0).neg()


def _exp(age: Tensor, tau: float, lr: float) -> Tensor:
    """``lr e^(-age/tau)``, 0 where exp underflows (far ages)."""
    exponent = age / -tau
    floor = UNDERFLOW[age.dtype]
    return torch.where(exponent < floor, 0.0, torch.exp(exponent.clamp_min(floor))) * lr


def _apply(param: Tensor, pos: Tensor, neg: Tensor, b: Bounds) -> None:
    up = pos if b.upper is None else (b.upper - param) * pos
    down = neg if b.lower is None else (param - b.lower) * neg
    param.add_(up - down)
    if b.clamp_min is not None or b.clamp_max is not None:
        param.clamp_(b.clamp_min, b.clamp_max)


def delay_steps(delay: Tensor, dt: float, max_steps: int, upper: float) -> tuple[Tensor, Tensor]:
    """Whole-step lags ``k = ceil(1 + d/dt) - 1`` (rounded up) and validity ``0 <= d <= upper``."""
    s = delay / dt
    r = torch.round(s)
    s = torch.where(dt * r - delay == 0, r, s)
    valid = (delay >= 0) & (delay <= upper)
    k = (torch.ceil(1 + s) - 1).clamp_(0, max_steps)
    return torch.where(valid, k, torch.zeros_like(k)).long(), valid


class MinimalLoop:
    """State and step of one workload. ``step(x [B, I] bool)``; ``W`` (and ``D``) are public."""

    def __init__(
        self,
        spec: Spec,
        weight: Tensor,
        delay: Tensor | None,
        batch: int,
        incremental: bool = False,
    ) -> None:
        self.spec, self.batch = spec, batch
        # KernelSTDP without delays: keep K between steps, update only spiking rows/columns
        self.K = None
        if incremental:
            assert spec.delay_rule is None and not spec.max_delay, "incremental: W1 only"
            self.K = weight.new_zeros(batch, *weight.shape)
        f = {"dtype": weight.dtype, "device": weight.device}
        self.W = weight.clone()
        self.D = None if delay is None else delay.clone()
        n_out, n_in = weight.shape
        self.exc = _lif_state(spec.exc, batch, weight.dtype, weight.device)
        self.inh = (
            None if spec.inh is None else _lif_state(spec.inh, batch, weight.dtype, weight.device)
        )
        self.inh_spike = torch.zeros(batch, n_out, dtype=torch.bool, device=weight.device)
        self.a_pre = torch.full((batch, n_in), FAR_PRE, **f)
        self.a_post = torch.full((batch, n_out), FAR_POST, **f)
        if spec.max_delay:
            self.L = math.ceil(spec.max_delay / spec.dt) + 1
            self.hist = torch.zeros(batch, self.L, n_in, dtype=torch.bool, device=weight.device)
            self.cursor = torch.zeros(1, dtype=torch.long, device=weight.device)
            self.cols = torch.arange(n_in, device=weight.device)
        self.lateral = None
        if spec.inh is not None:  # constant lateral weights are set by the caller
            self.lateral = torch.zeros(n_out, n_out, **f)
            self.direct = torch.zeros(n_out, **f)

    def reset(self) -> None:
        """Back to rest between samples (parameters and ALIF theta are kept)."""
        for st in (self.exc, self.inh):
            if st is not None:
                p = self.spec.exc if st is self.exc else self.spec.inh
                assert p is not None
                st["v"].fill_(p.rest_v)
                st["r"].zero_()
        self.inh_spike.zero_()
        self.a_pre.fill_(FAR_PRE)
        self.a_post.fill_(FAR_POST)
        if self.K is not None:
            self.K.zero_()
        if self.spec.max_delay:
            self.hist.zero_()
            self.cursor.zero_()

    def step(self, x: Tensor) -> None:
        sp, dt = self.spec, self.spec.dt
        gain = sp.scale / dt
        xf = x.to(self.W.dtype)  # compiled loops read float spikes much faster than bool ones
        if not sp.max_delay:  # undelayed dense input
            current = (xf @ self.W.t()) * gain
        else:  # ring buffer of input spikes, gathered at each synapse's lag
            assert self.D is not None
            self.cursor.add_(1).remainder_(self.L)
            self.hist.index_copy_(1, self.cursor, x.unsqueeze(1))
            k, valid = delay_steps(self.D, dt, self.L - 1, sp.max_delay)
            flat = torch.remainder(self.cursor - k, self.L) * x.shape[1] + self.cols
            arrived = self.hist.view(self.batch, -1).index_select(1, flat.view(-1))
            arrived = arrived.view(self.batch, *k.shape) & valid
            current = torch.einsum("boi,oi->bo", arrived.to(self.W.dtype), self.W) * gain
        if self.lateral is not None:  # inhibition from the previous step's inh spikes
            current = (
                current + (self.inh_spike.to(self.W.dtype) * sp.inh_exc_gain) @ self.lateral.t()
            )
        spike = _lif(self.exc, sp.exc, current, dt)
        if self.inh is not None and sp.inh is not None:
            inh_current = spike.to(self.W.dtype) * sp.exc_inh_gain * self.direct
            self.inh_spike.copy_(_lif(self.inh, sp.inh, inh_current, dt))
        self.a_pre.add_(dt).masked_fill_(xf != 0, 0.0)
        self.a_post.add_(dt).masked_fill_(spike, 0.0)
        if self.K is not None:  # Δ is constant between spikes: new values in spiking rows/cols
            r = sp.weight_rule
            row = _exp(self.a_pre, r.tau_post, r.lr_post).unsqueeze(1)  # post spike: Δ = a_pre
            col = torch.where(spike, r.lr_post, _exp(self.a_post, r.tau_pre, r.lr_pre))
            k = torch.where(spike.unsqueeze(2), row, self.K)
            self.K.copy_(torch.where((xf != 0).unsqueeze(1), col.unsqueeze(2), k))
            pos, neg = self.K.clamp_min(0).mean(0), self.K.clamp_max(0).mean(0).neg()
            _apply(self.W, pos, neg, sp.weight_bounds)
            return
        delta = self.a_pre.unsqueeze(1) - self.a_post.unsqueeze(2)
        if sp.delay_rule is None:  # KernelSTDP on the weights
            pos, neg = _parts(delta, sp.weight_rule)
            _apply(self.W, pos, neg, sp.weight_bounds)
            return
        assert self.D is not None  # DelayAdjustedKernelSTDP (W) + DelayAdjustedKernelSTDPD (D)
        delta = delta - self.D
        w_pos, w_neg = _parts(delta, sp.weight_rule)
        d_pos, d_neg = _parts(delta, sp.delay_rule)
        _apply(self.W, w_pos, w_neg, sp.weight_bounds)
        _apply(self.D, d_pos, d_neg, sp.delay_bounds)

    def after_batch(self) -> None:
        if self.spec.normalize is not None:
            self.W.mul_(self.spec.normalize / self.W.abs().sum(-1, keepdim=True).clamp_min(1e-12))


def make_step(loop: MinimalLoop, compile: bool) -> Callable[[Tensor], None]:
    """The loop's step, eager or compiled as one graph (inductor)."""
    if not compile:
        return loop.step
    return torch.compile(loop.step, fullgraph=True, dynamic=False)  # type: ignore[return-value]


def run_batch(
    loop: MinimalLoop, step: Callable[[Tensor], None], spikes: Tensor
) -> tuple[float, float]:
    """Run ``spikes [T, B, I]`` from rest, then the batch hook; returns wall and CPU time (s)."""
    if spikes.is_cuda:
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    loop.reset()
    with torch.no_grad():
        for t in range(spikes.shape[0]):
            step(spikes[t])
        loop.after_batch()
    if spikes.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu
