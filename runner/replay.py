"""Replay recorded spike trains through the learning rules (``stdp-run replay``).

A case (:mod:`runner.replay_case`) holds presynaptic and postsynaptic spike trains
``[T, B, I]`` / ``[T, B, O]`` (the postsynaptic spikes are imposed), initial weights and delays,
and the case parameters as JSON (``params_json``). Its trainers and updaters are built from
specs by the run's own builders (:mod:`runner.rules`). The learning rules run step by step and
the weight and delay trajectories ``[T, O, I]`` (values after each step) are written to
``--out``. If the case stores reference trajectories, the largest differences from them are
reported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.replay_case import (
    MAX_HISTORY_STEPS,
    ReplayInputError,
    load_case,
    trainer_specs,
    updater_spec,
)
from runner.rules import build_trainer, builtin_names, configure_updater

__all__ = ["MAX_HISTORY_STEPS", "ReplayInputError", "ReplayResult", "load_case", "replay_case"]


@dataclass
class ReplayResult:
    weight: np.ndarray
    delay: np.ndarray
    applied: np.ndarray
    max_abs_diff: dict[str, float]
    max_rel_diff: dict[str, float]


def replay_case(path: Path) -> ReplayResult:
    """Run the learning rules of a case and return the trajectories and differences."""
    arrays, params = load_case(path)
    dtype = getattr(torch, params.get("dtype", "float64"))
    pre = torch.from_numpy(arrays["pre_spikes"])
    post = torch.from_numpy(arrays["post_spikes"])
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    max_delay = params.get("max_delay")
    delay_init = arrays.get("delay_init")
    conn = DenseConnection(
        n_in,
        n_out,
        dt=float(params["dt"]),
        batch_size=batch,
        weight=torch.from_numpy(arrays["weight_init"]).to(dtype),
        delay=None
        if max_delay is None or delay_init is None
        else torch.from_numpy(delay_init).to(dtype),
        max_delay=max_delay,
        dtype=dtype,
    )
    post_ages = SpikeAges((batch, n_out), dt=conn.dt, dtype=dtype)
    trainers = []
    names = builtin_names()
    for spec in trainer_specs(params):
        trainer, cells = build_trainer(spec, names)
        for name, settings in cells.items():
            trainer.register_cell(name, conn, post_ages, **settings)
        trainers.append(trainer)
    for name in ("weight", "delay"):
        if name in conn.updaters:
            configure_updater(conn, name, updater_spec(params, name))
    every = int(params.get("update_every", 1))
    weight = torch.empty(steps, n_out, n_in, dtype=dtype)
    delay = torch.zeros(steps, n_out, n_in, dtype=dtype)
    applied = np.zeros(steps, dtype=bool)
    with torch.no_grad():
        for n in range(steps):
            conn.observe(pre[n])  # the post spikes are imposed: no current is needed
            post_ages.observe(post[n])
            for trainer in trainers:
                trainer()
            if (n + 1) % every == 0:
                conn.apply_updates()
                applied[n] = True
            weight[n].copy_(conn.weight)
            if conn.delay is not None:
                delay[n].copy_(conn.delay)
    result = ReplayResult(weight.numpy(), delay.numpy(), applied, {}, {})
    for key, ours in (("weight", result.weight), ("delay", result.delay)):
        if key in arrays and arrays[key].shape == ours.shape:
            ref = arrays[key].astype(np.float64)
            diff = np.abs(ours.astype(np.float64) - ref)
            result.max_abs_diff[key] = float(diff.max(initial=0.0))
            result.max_rel_diff[key] = float(
                (diff / np.maximum(1.0, np.abs(ref).max(initial=0.0))).max(initial=0.0)
            )
    return result


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks instead of returning them to the system.

    Each step allocates and frees temporaries of ``[B, O, I]`` (5 MB for 16 x 100 x 784 float32).
    With glibc's adaptive defaults such blocks are mmapped or trimmed off the heap on every free,
    so every step page-faults them in again (about 0.8 million faults in the 100-step case,
    10x fewer with this). Sets the mmap threshold to 32 MiB (glibc's own upper bound for the
    adaptive one) and the trim threshold to 1 GiB, process-wide: ``stdp-run replay`` calls it,
    a short-lived process.
    Returns False (changing nothing) where there is no glibc ``mallopt``.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # musl and other libcs without mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def main(case: Path, out: Path) -> None:
    """Replay ``case`` and write ``weight``, ``delay`` and ``applied`` to ``out`` (npz)."""
    result = replay_case(case)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, weight=result.weight, delay=result.delay, applied=result.applied)
    tmp.replace(out)
    print(f"replayed {case.name}: {result.weight.shape[0]} steps -> {out}")
    for key in result.max_abs_diff:
        print(
            f"  {key}: max abs diff {result.max_abs_diff[key]:.3e}, "
            f"max rel diff {result.max_rel_diff[key]:.3e} (vs stored trajectory)"
        )
