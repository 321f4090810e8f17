"""Given spike trains (:class:`SpikeTrainTask`) and the pairing-protocol measurement."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from runner.loop import Batch, Record


class SpikeTrainTask:
    """Recorded spike trains: ``pre [T, B, I]`` drives the input, optional ``post`` is imposed.

    With ``measure`` (the connection ``input -> output`` and the trainer cell that trains its
    weights) the task reports after training how far the weights moved and, for a pairing
    protocol (``delta_t_ms``), the measured learning window (:func:`pairing_metrics`).
    """

    record_raster = False

    def __init__(
        self,
        *,
        pre: Tensor,
        post: Tensor | None,
        input: str,
        output: str | None,
        watch: tuple[str, ...] = (),
        dt: float = 1.0,
        measure: Any = None,
        delta_t_ms: float | None = None,
    ) -> None:
        self.pre, self.post = pre, post
        self.input, self.output = input, output
        self.watch = watch
        self.dt, self.delta_t_ms = dt, delta_t_ms
        self.measure = measure  # (connection, cell) or None
        self.start = None if measure is None else measure[0].weight.detach().clone()

    def n_batches(self, phase: str) -> int:
        return 1 if phase == "train" else 0

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train" and start == 0:
            drive = {self.output: self.post} if self.post is not None and self.output else {}
            yield Batch(self.pre, drive=drive)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        pass

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        if phase != "train" or self.measure is None or self.post is None:
            return {}
        connection, cell = self.measure
        delta_w = (connection.weight.detach() - self.start).double().cpu()
        if cell is None:
            return {"delta_w": float(delta_w.mean())}
        return pairing_metrics(
            self.pre, self.post, delta_w, cell, dt=self.dt, delta_t_ms=self.delta_t_ms
        )

    def state_dict(self) -> dict[str, Any]:
        return {} if self.start is None else {"start_weight": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "start_weight" in state and self.start is not None:
            self.start = state["start_weight"].to(self.start)


def pair_differences(pre: Tensor, post: Tensor, dt: float) -> Tensor:
    """Δ = t_post - t_pre (ms) of the most recent pair at every step, ``[T, B, O, I]`` float64.

    ``pre [T, B, I]`` and ``post [T, B, O]`` are bool spike trains; Δ is NaN until both sides
    have spiked. This is what the kernel trainers evaluate every step on an undelayed synapse
    (SEMANTICS section 0), computed here independently of the engine.
    """
    steps = pre.shape[0]
    t = torch.arange(steps, dtype=torch.float64).view(steps, 1, 1)

    def last(spikes: Tensor) -> Tensor:
        marked = torch.where(spikes.cpu(), t, -math.inf).cummax(0).values
        return marked.masked_fill(marked == -math.inf, math.nan)

    return (last(post).unsqueeze(3) - last(pre).unsqueeze(2)) * dt


def pairing_metrics(
    pre: Tensor, post: Tensor, delta_w: Tensor, cell: Any, *, dt: float, delta_t_ms: float | None
) -> dict[str, float]:
    """The measured weight change of a pairing protocol against the kernel, in float64.

    Every step the trainer adds ``K(Δ)`` (both kernels) for the most recent pair; with one pair
    programmed at ``delta_t_ms`` the steps whose Δ equals it are the ``contributing_steps``, and
    the few steps after the next pairing's first spike pair across pairings (``cross_terms``, of
    order ``K(±(period - |Δt|))``). So

        window = (delta_w - cross_terms) / contributing_steps        should equal K(delta_t).

    Returns ``delta_w`` (mean over synapses), ``expected_delta_w`` (the sum of the kernels over
    :func:`pair_differences`, batch-averaged), and with ``delta_t_ms`` also
    ``contributing_steps``, ``cross_terms``, ``window``, ``kernel`` and ``window_rel_error``
    (the largest over synapses).
    """
    delta = pair_differences(pre, post, dt)  # [T, B, O, I]

    def kernel(x: Tensor) -> Tensor:
        x = x.to(device=cell.connection.weight.device)
        post_k = cell.kernel_post(x, **cell.kernel_post_kwargs.as_dict())
        pre_k = cell.kernel_pre(x, **cell.kernel_pre_kwargs.as_dict())
        return (post_k + pre_k).double().cpu().nan_to_num(nan=0.0)

    k = kernel(delta)
    out = {"delta_w": float(delta_w.mean()), "expected_delta_w": float(k.sum(0).mean(0).mean())}
    if delta_t_ms is None:
        return out
    main = (delta - delta_t_ms).abs() <= 1e-9 * max(1.0, abs(delta_t_ms))
    steps = main.sum(0).double().mean(0)  # [O, I]
    cross = torch.where(main, 0.0, k).sum(0).mean(0)
    value = float(kernel(torch.tensor([float(delta_t_ms)], dtype=torch.float64))[0])
    window = (delta_w - cross) / steps
    error = (window - value).abs() / max(abs(value), 1e-300)
    out.update(
        {
            "contributing_steps": float(steps.mean()),
            "cross_terms": float(cross.mean()),
            "window": float(window.mean()),
            "kernel": value,
            "window_rel_error": float(error.max()),
        }
    )
    return out


# -- figures (matplotlib's object API on the Agg canvas, no pyplot) ------------------------------
