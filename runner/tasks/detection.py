"""Pattern detection and arrival-time measures on host arrays (used by :class:`PatternTask`)."""

from __future__ import annotations

import math

import numpy as np


def select_afferents(weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pattern afferents (``mask``) whose weight is at least half the largest pattern weight."""
    if not mask.any():
        return mask
    return mask & (weight >= 0.5 * weight[mask].max())


def detection_stats(onsets: np.ndarray, fired: np.ndarray, window: int) -> np.ndarray:
    """``[presentations, hits, latency_sum_steps, false_alarm_steps, outside_steps]``.

    ``onsets`` and ``fired`` are ``[T, B]`` bool; a presentation occupies ``window`` steps from
    its onset.
    """
    steps, batch = onsets.shape
    inside = np.zeros_like(fired)
    presentations = hits = latency = 0
    for b in range(batch):
        for t0 in np.flatnonzero(onsets[:, b]):
            end = min(t0 + window, steps)
            inside[t0:end, b] = True
            presentations += 1
            spikes = np.flatnonzero(fired[t0:end, b])
            if spikes.size:
                hits += 1
                latency += int(spikes[0])
    outside = ~inside
    return np.array(
        [presentations, hits, latency, (fired & outside).sum(), outside.sum()], dtype=np.float64
    )


def stats_to_metrics(stats: np.ndarray, dt: float) -> dict[str, float]:
    presentations, hits, latency, false_alarms, outside = stats
    return {
        "hit_rate": float(hits / presentations) if presentations else 0.0,
        "false_alarms_per_s": float(false_alarms / (outside * dt / 1000.0)) if outside else 0.0,
        "latency_ms": float(latency * dt / hits) if hits else math.nan,
        "presentations": float(presentations),
    }


def arrival_times(
    pattern: np.ndarray,
    selected: np.ndarray,
    delay: np.ndarray,
    dt: float,
    before: float | None = None,
) -> np.ndarray:
    """Arrival times (ms after the onset) of the pattern spikes of the selected afferents.

    ``pattern`` is ``[P, N]`` bool, ``selected`` ``[N]`` bool and ``delay`` ``[N]`` (ms, towards
    one output): a spike of afferent i at step t arrives at ``t * dt + delay[i]``. With ``before``
    only the latest arrival of each afferent at or before that time is kept (the one that can
    have driven an output spike at latency ``before``); afferents without one are left out.
    """
    index = np.flatnonzero(selected)
    spikes = pattern[:, index]
    arrivals = np.arange(pattern.shape[0])[:, None] * dt + delay[index][None, :]
    if before is None:
        return arrivals[spikes]
    latest = np.where(spikes & (arrivals <= before + 1e-9), arrivals, -np.inf).max(
        0, initial=-np.inf
    )
    return latest[np.isfinite(latest)]
