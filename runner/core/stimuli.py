r"""Input spike trains: Poisson rate coding, a pattern hidden in noise, pairings, npz files.

All generators return bool spikes ``[steps, B, N]`` (time first, then batch) and draw from an
optional ``torch.Generator`` that must live on the device of the result; they never touch the
global RNG when a generator is given.

Poisson rate coding with a refractory period (``poisson_encode``). An intensity x, clipped to
[0, 1], gives the rate f = max_rate_hz * x. Spike times form a renewal process with intervals

    interval = rho + Exp(mean = 1000 / f - rho)    (ms)

so the mean rate is exactly f. rho is refrac_ms rounded up to whole steps and at least one step
(a step holds at most one spike); two spikes are therefore never closer than rho, also after
binning (unlike inferno, whose encoder ignores its refrac argument). When 1000 / f < rho the
requested rate cannot be reached: the exponential part is dropped and the train is regular at
the clipped rate 1000 / rho. The first spike time is drawn from the stationary
(forward-recurrence) distribution, uniform on [0, rho) with probability rho / mean interval and
rho + Exp otherwise, so the expected count in any window of T ms is f T / 1000 from step 0 on.
A spike at time t (ms) falls in step floor(t / dt). To keep memory and time down, each train
draws K = min(T, ceil(L + 10 sqrt(L) + 10)) spike times, L = T dt max_rate_hz / 1000 being the
expected count at x = 1; a train would need more than K spikes with a probability below 1e-15.
"""

from __future__ import annotations

import functools
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

_GRID_RTOL = 1e-6


def _whole_steps(duration_ms: float, dt: float) -> int:
    """ceil(duration / dt), a ratio within a relative 1e-6 of an integer counting as it."""
    ratio = duration_ms / dt
    nearest = round(ratio)
    if abs(ratio - nearest) <= _GRID_RTOL * max(1.0, abs(ratio)):
        return int(nearest)
    return math.ceil(ratio)


def _check_number(name: str, value: float, *, low: float, strict: bool, unit: str) -> float:
    ok = isinstance(value, int | float) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '>='} {low} {unit}, got {value!r}"
        )
    return float(value)


def _check_steps(steps: int) -> int:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return steps


def _rates_hz(intensity: Tensor, max_rate_hz: float) -> Tensor:
    """Rates ``[B, N]`` (Hz) from intensities ``[B, ...]`` clipped to [0, 1] (NaN stays NaN)."""
    if intensity.ndim < 1:
        raise ValueError("intensity must have a batch dimension, got a 0-d tensor")
    x = intensity.reshape(intensity.shape[0], -1)
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    return x.to(dtype).clamp(0.0, 1.0).mul_(max_rate_hz)


def poisson_encode(
    intensity: Tensor,
    *,
    steps: int,
    dt: float,
    max_rate_hz: float,
    refrac_ms: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Homogeneous Poisson spike trains with an honoured refractory period (module docstring).

    Args:
        intensity: ``[B, ...]`` in [0, 1]; values outside are clipped, NaN gives no spikes.
        steps: number of steps T.
        dt: step length (ms).
        max_rate_hz: rate of an intensity of 1 (Hz), >= 0.
        refrac_ms: refractory period (ms), >= 0; rounded up to whole steps, at least one step.
        generator: random source on ``intensity.device``.

    Returns:
        ``[T, B, N]`` bool with N the product of the trailing dimensions of ``intensity``.
        Memory while drawing: about 12 bytes per train and drawn spike time (K in the module
        docstring).
    """
    _check_steps(steps)
    dt = _check_number("dt", dt, low=0.0, strict=True, unit="ms")
    max_rate_hz = _check_number("max_rate_hz", max_rate_hz, low=0.0, strict=False, unit="Hz")
    refrac_ms = _check_number("refrac_ms", refrac_ms, low=0.0, strict=False, unit="ms")
    rate = _rates_hz(intensity, max_rate_hz)
    batch, n = rate.shape
    rho = max(_whole_steps(refrac_ms, dt), 1) * dt
    flat = rate.reshape(-1)
    draw = functools.partial(
        _renewal_trains, steps=steps, dt=dt, rho=rho, max_rate_hz=max_rate_hz, generator=generator
    )
    if rate.device.type != "cpu":  # all trains at once: selecting would sync with the host
        return draw(flat)[:steps].view(steps, batch, n)
    # on the CPU draw only for the trains that fire (most pixels of a digit are blank)
    active = torch.nonzero(flat > 0).squeeze(1)
    out = torch.zeros((steps + 1, batch * n), device=rate.device, dtype=torch.bool)
    if active.numel() > 0:
        out[:, active] = draw(flat[active])
    return out[:steps].view(steps, batch, n)


def _renewal_trains(
    rate: Tensor,
    *,
    steps: int,
    dt: float,
    rho: float,
    max_rate_hz: float,
    generator: torch.Generator | None,
) -> Tensor:
    """``[T + 1, M]`` bool spike trains for ``M`` rates >= 0 (Hz); row T collects the spikes
    beyond the end (the caller drops it). Intervals as in the module docstring."""
    firing = rate > 0
    mean = torch.where(firing, 1000.0 / rate, math.inf).clamp_min_(rho)  # mean interval (ms)
    extra = mean - rho  # mean of the exponential part, inf for silent trains
    expected = steps * dt * max_rate_hz / 1000.0
    draws = min(steps, math.ceil(expected + 10.0 * math.sqrt(expected) + 10.0))
    # Exp(1) as -log(1 - U): several times faster than exponential_ on the CPU
    shape = (draws, rate.shape[0])
    intervals = torch.rand(shape, generator=generator, device=rate.device, dtype=rate.dtype)
    intervals.neg_().log1p_().neg_().mul_(extra).add_(rho)
    u = torch.rand(rate.shape, generator=generator, device=rate.device, dtype=rate.dtype)
    q = rho / mean  # probability that the first spike falls within the first rho ms
    intervals[0] = torch.where(u < q, u / q * rho, intervals[0])
    times = torch.cumsum(intervals, dim=0)
    times = torch.where(firing, times, math.inf)  # also removes NaN from 0 * inf
    index = torch.floor(times.div_(dt)).clamp_(max=steps).long()
    trains = torch.zeros((steps + 1, rate.shape[0]), device=rate.device, dtype=torch.bool)
    return trains.scatter_(0, index, True)


def bernoulli_encode(
    intensity: Tensor,
    *,
    steps: int,
    dt: float,
    max_rate_hz: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Independent per-step spikes with probability p = min(f dt / 1000, 1), f = max_rate_hz * x.

    Shapes and arguments as ``poisson_encode``; there is no refractory period, and the rate
    saturates at one spike per step.
    """
    _check_steps(steps)
    dt = _check_number("dt", dt, low=0.0, strict=True, unit="ms")
    max_rate_hz = _check_number("max_rate_hz", max_rate_hz, low=0.0, strict=False, unit="Hz")
    p = _rates_hz(intensity, max_rate_hz).mul_(dt / 1000.0).clamp_(max=1.0)
    draw = torch.rand((steps, *p.shape), generator=generator, device=p.device, dtype=p.dtype)
    return draw < p


# name -> encoder of intensities ``[B, ...]`` into spikes ``[T, B, N]``, for the registries
ENCODERS = {"poisson": poisson_encode, "bernoulli": bernoulli_encode}


class PatternInNoise(nn.Module):
    """A frozen spatio-temporal pattern inserted at random times into Poisson noise.

    After Masquelier, Guyonneau & Thorpe (2008). Each afferent i fires as a Poisson process at
    its own rate r_i (``background_hz``: one rate, or a (low, high) range from which each r_i is
    drawn uniformly once). A random subset of round(pattern_fraction * N) afferents takes part in
    the pattern: a Poisson snippet of P = pattern_ms / dt steps (rounded up) drawn once, at the
    same rates r_i, so an afferent's mean rate is the same inside and outside the pattern.

    ``sample`` copies the pattern in at random onsets, replacing the background of the pattern
    afferents during the P steps; the other afferents keep their background. The first onset
    comes G + X_0 steps after the start and onset k+1 comes P + G + X_k steps after onset k,
    with G = min_gap_ms / dt (rounded up) and X_k geometric with mean
    1000 / (pattern_rate_hz * dt) - P - G, so the mean interval between onsets is
    1000 / pattern_rate_hz ms. Only patterns that fit entirely in the stream are inserted.

    Args:
        n_afferents: number of afferents N.
        dt: step length (ms).
        pattern_fraction: fraction of afferents in the pattern, in (0, 1].
        pattern_ms: pattern length (ms), > 0.
        background_hz: Poisson rate (Hz) > 0, or a (low, high) range with 0 <= low <= high.
        pattern_rate_hz: mean number of insertions per second (Hz), > 0.
        min_gap_ms: least background time between two patterns and before the first (ms).
        generator: random source on ``device`` (used at construction and by ``sample``).

    Attributes:
        rates: ``[N]`` background rate of each afferent (Hz).
        pattern_mask: ``[N]`` bool, the afferents taking part.
        pattern: ``[P, N]`` bool, the frozen pattern (False outside ``pattern_mask``).
    """

    rates: Tensor
    pattern_mask: Tensor
    pattern: Tensor

    def __init__(
        self,
        n_afferents: int,
        *,
        dt: float,
        pattern_fraction: float = 0.5,
        pattern_ms: float = 50.0,
        background_hz: float | Sequence[float] = 20.0,
        pattern_rate_hz: float = 5.0,
        min_gap_ms: float = 50.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(n_afferents, int) or isinstance(n_afferents, bool) or n_afferents < 1:
            raise ValueError(f"n_afferents must be an integer >= 1, got {n_afferents!r}")
        self.dt = _check_number("dt", dt, low=0.0, strict=True, unit="ms")
        if not (isinstance(pattern_fraction, int | float) and 0 < pattern_fraction <= 1):
            raise ValueError(f"pattern_fraction must be in (0, 1], got {pattern_fraction!r}")
        pattern_ms = _check_number("pattern_ms", pattern_ms, low=0.0, strict=True, unit="ms")
        rate = _check_number("pattern_rate_hz", pattern_rate_hz, low=0.0, strict=True, unit="Hz")
        min_gap_ms = _check_number("min_gap_ms", min_gap_ms, low=0.0, strict=False, unit="ms")
        low, high = self._rate_range(background_hz)
        self.n = n_afferents
        self.pattern_steps = _whole_steps(pattern_ms, self.dt)
        self.gap_steps = _whole_steps(min_gap_ms, self.dt)
        extra_ms = 1000.0 / rate - (self.pattern_steps + self.gap_steps) * self.dt
        if extra_ms < -_GRID_RTOL * 1000.0 / rate:
            limit = 1000.0 / ((self.pattern_steps + self.gap_steps) * self.dt)
            raise ValueError(
                f"pattern_rate_hz={pattern_rate_hz!r} is too high for pattern_ms + min_gap_ms = "
                f"{(self.pattern_steps + self.gap_steps) * self.dt} ms: at most {limit:g} Hz"
            )
        # geometric extra steps floor(Exp(m) / dt) have mean extra_ms / dt when m is this:
        self.extra_mean_ms = max(extra_ms, 0.0)
        self._exp_mean = self.dt / math.log1p(self.dt / extra_ms) if extra_ms > 0 else 0.0
        self.generator = generator
        if device is None and generator is not None:
            device = generator.device
        rates = torch.full((n_afferents,), low, device=device, dtype=dtype)
        if high > low:
            spread = torch.rand(n_afferents, generator=generator, device=device, dtype=dtype)
            rates.add_(spread.mul_(high - low))
        self.max_rate_hz = high
        n_pattern = max(1, round(pattern_fraction * n_afferents))
        chosen = torch.randperm(n_afferents, generator=generator, device=device)[:n_pattern]
        mask = torch.zeros(n_afferents, device=device, dtype=torch.bool)
        mask[chosen] = True
        intensity = (rates / high).unsqueeze(0)
        snippet = poisson_encode(
            intensity, steps=self.pattern_steps, dt=self.dt, max_rate_hz=high, generator=generator
        )[:, 0, :]
        self.register_buffer("rates", rates)
        self.register_buffer("pattern_mask", mask)
        self.register_buffer("pattern", snippet & mask)

    @staticmethod
    def _rate_range(background_hz: float | Sequence[float]) -> tuple[float, float]:
        if isinstance(background_hz, int | float):
            value = _check_number("background_hz", background_hz, low=0.0, strict=True, unit="Hz")
            return value, value
        values = list(background_hz)
        ok = len(values) == 2 and all(isinstance(v, int | float) for v in values)
        if not (ok and 0 <= values[0] <= values[1] and 0 < values[1] < math.inf):
            raise ValueError(
                f"background_hz must be a rate > 0 or a range [low, high] with 0 <= low <= high "
                f"(Hz), got {background_hz!r}"
            )
        return float(values[0]), float(values[1])

    @torch.no_grad()
    def sample(
        self, steps: int, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw a stream: spikes ``[steps, B, N]`` bool and onsets ``[steps, B]`` bool.

        ``onsets[t, b]`` is True where a copy of the pattern starts; then
        ``spikes[t:t+P, b][:, pattern_mask] == pattern[:, pattern_mask]``.
        ``generator`` defaults to the one given at construction.
        """
        _check_steps(steps)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        gen = self.generator if generator is None else generator
        device = self.rates.device
        big_p, gap = self.pattern_steps, self.gap_steps
        intensity = (self.rates / self.max_rate_hz).expand(batch_size, self.n)
        spikes = poisson_encode(
            intensity, steps=steps, dt=self.dt, max_rate_hz=self.max_rate_hz, generator=gen
        )
        # onsets: start_0 = G + X_0, start_k = start_{k-1} + P + G + X_k
        n_draws = steps // (big_p + gap) + 1
        extra = torch.empty((n_draws, batch_size), device=device, dtype=torch.float64)
        extra.exponential_(generator=gen).mul_(self._exp_mean / self.dt).floor_()
        starts = torch.cumsum(extra.long() + (big_p + gap), dim=0) - big_p
        fits = starts + big_p <= steps
        index = torch.where(fits, starts, steps)
        onsets = torch.zeros((steps + 1, batch_size), device=device, dtype=torch.bool)
        onsets.scatter_(0, index, True)
        onsets = onsets[:steps]
        # steps since the latest onset, then copy the matching pattern row in
        time = torch.arange(steps, device=device).unsqueeze(1).expand(steps, batch_size)
        latest = torch.where(onsets, time, -big_p).cummax(dim=0).values
        phase = time - latest
        inside = (phase < big_p).unsqueeze(-1) & self.pattern_mask
        rows = self.pattern[phase.clamp(max=big_p - 1)]
        return torch.where(inside, rows, spikes), onsets

    def extra_repr(self) -> str:
        return (
            f"n_afferents={self.n}, dt={self.dt}, pattern_steps={self.pattern_steps}, "
            f"gap_steps={self.gap_steps}, n_pattern={int(self.pattern_mask.sum())}"
        )


def pairing_protocol(
    *,
    dt: float,
    delta_t_ms: float,
    n_pairings: int,
    frequency_hz: float,
    offset_ms: float = 10.0,
) -> tuple[Tensor, Tensor]:
    """Pre/post spike pairs at a fixed time difference (Bi & Poo 1998).

    Pre spike k (k = 0 .. n_pairings-1) falls in step round((offset_ms + k * 1000 / frequency_hz)
    / dt) and its post spike exactly delta_t_ms / dt steps later (delta_t_ms may be negative:
    post before pre). The trains last until one period after the last spike.

    Args:
        dt: step length (ms).
        delta_t_ms: t_post - t_pre (ms); must be a whole number of steps.
        n_pairings: number of pairs, >= 1.
        frequency_hz: pairing frequency (Hz), > 0.
        offset_ms: time of the first pre spike (ms), >= 0, with offset_ms + delta_t_ms >= 0.

    Returns:
        (pre, post), each ``[T, 1, 1]`` bool (one sample, one neuron).
    """
    dt = _check_number("dt", dt, low=0.0, strict=True, unit="ms")
    frequency_hz = _check_number("frequency_hz", frequency_hz, low=0.0, strict=True, unit="Hz")
    offset_ms = _check_number("offset_ms", offset_ms, low=0.0, strict=False, unit="ms")
    if not isinstance(n_pairings, int) or isinstance(n_pairings, bool) or n_pairings < 1:
        raise ValueError(f"n_pairings must be an integer >= 1, got {n_pairings!r}")
    if not (isinstance(delta_t_ms, int | float) and math.isfinite(delta_t_ms)):
        raise ValueError(f"delta_t_ms must be a finite number (ms), got {delta_t_ms!r}")
    shift = round(delta_t_ms / dt)
    if abs(delta_t_ms / dt - shift) > _GRID_RTOL * max(1.0, abs(shift)):
        raise ValueError(f"delta_t_ms must be a multiple of dt={dt!r} ms, got {delta_t_ms!r}")
    period_ms = 1000.0 / frequency_hz
    pre_idx = [round((offset_ms + k * period_ms) / dt) for k in range(n_pairings)]
    if pre_idx[0] + shift < 0:
        raise ValueError(
            f"offset_ms + delta_t_ms must be >= 0 (the first post spike), got {offset_ms + delta_t_ms!r}"
        )
    post_idx = [i + shift for i in pre_idx]
    total = max(pre_idx[-1], post_idx[-1]) + max(1, round(period_ms / dt))
    pre = torch.zeros((total, 1, 1), dtype=torch.bool)
    post = torch.zeros((total, 1, 1), dtype=torch.bool)
    pre[pre_idx] = True
    post[post_idx] = True
    return pre, post


def load_spike_trains(
    path: str | Path, *, device: torch.device | str | None = None
) -> dict[str, Tensor]:
    """Read spike trains from an npz file, without unpickling anything.

    Keys: ``pre_spikes`` ``[T, B, I]`` bool (required) and ``post_spikes`` ``[T, B, O]`` bool
    (optional, with the same T and B); other keys are ignored.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not an npz file, a missing key, a wrong dtype or shape, or an array that
            would need pickle; the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spike train file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError(f"{str(path)!r} is a .npy array, expected an .npz archive")
            arrays = {k: data[k] for k in ("pre_spikes", "post_spikes") if k in data.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{str(path)!r} is not a readable npz file ({err})") from None
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(
                f"{str(path)!r} holds an object array that needs pickle, which is not allowed; "
                "store plain bool arrays"
            ) from None
        raise
    if "pre_spikes" not in arrays:
        raise ValueError(f"{str(path)!r} has no 'pre_spikes' array (expected [T, B, I] bool)")
    for key, array in arrays.items():
        if array.dtype != np.bool_ or array.ndim != 3:
            raise ValueError(
                f"{str(path)!r}: '{key}' must be a 3-d bool array [T, B, N], "
                f"got dtype {array.dtype} with shape {list(array.shape)}"
            )
    if "post_spikes" in arrays:
        pre_tb, post_tb = arrays["pre_spikes"].shape[:2], arrays["post_spikes"].shape[:2]
        if pre_tb != post_tb:
            raise ValueError(
                f"{str(path)!r}: 'pre_spikes' and 'post_spikes' must share [T, B], "
                f"got {list(pre_tb)} and {list(post_tb)}"
            )
    return {key: torch.from_numpy(array).to(device) for key, array in arrays.items()}
