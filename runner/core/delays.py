"""Mapping continuous delays (ms) onto the step grid, as the reference synapse does.

For a delay ``d`` and step ``dt``: ``s = d/dt``; if ``|dt*round(s) - d| <= tol`` snap ``s`` to the
grid; ``o = 1 + s``. On the grid (``ceil(o) == floor(o)``) the lag is ``k = o - 1`` whole steps and
the sub-step remainder is 0; otherwise ``k = ceil(o) - 1`` (a non-integer delay is rounded *up*)
and the remainder is ``extra = dt - dt*(s - floor(s))``, the time from the older grid point to the
continuous sample time ``now - d``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class Lag(NamedTuple):
    """Whole-step lag ``k`` (long), sub-step remainder ``extra`` (ms) and validity mask."""

    steps: Tensor
    extra: Tensor
    valid: Tensor


def delay_lag(
    delay: Tensor,
    *,
    dt: float,
    tol: float,
    max_steps: int,
    upper: float,
    dtype: torch.dtype = torch.long,
) -> Lag:
    """Lags for delays ``[O, I]``; ``valid`` is False outside ``[-tol, upper + tol]``.

    Invalid entries get lag 0 so that they can still be used as indices; callers mask them.
    ``dtype`` of the steps: ``torch.int32`` converts in vector code on AVX2 CPUs (int64 does
    not), so compiled per-synapse loops prefer it where the lags are small.
    """
    exact = tol == 0 and math.frexp(dt)[0] == 0.5  # dt a power of two: d / dt is exact
    s = delay * (1.0 / dt) if exact else delay / dt  # the same number when exact
    if not exact:  # (when exact, dt * round(s) == d only if s is already an integer)
        r = torch.round(s)
        s = torch.where((dt * r - delay).abs() <= tol, r, s)
    o = 1 + s
    up = torch.ceil(o)
    on_grid = up == torch.floor(o)
    steps = up - 1  # == where(on_grid, o, up) - 1, as up == o on the grid
    extra = torch.where(on_grid, torch.zeros_like(s), dt - dt * (s - torch.floor(s)))
    valid = (delay >= -tol) & (delay <= upper + tol)
    steps = torch.where(valid, steps, torch.zeros_like(steps)).clamp_(0, max_steps)
    return Lag(steps.to(dtype), extra, valid)
