"""The compiled step: ``torch.compile`` of one step, or of ``k`` unrolled steps per call, and
what it needs (the inductor cache folder, the trained-synapse count that sizes its chunks).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from runner.core.dense import DenseConnection
from runner.core.network import Network
from runner.loop_types import LoopState, StepFn

log = logging.getLogger("runner.loop")


def inductor_cache_dir() -> str:
    """Where torch.compile keeps the compiled step: ``$TORCHINDUCTOR_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/stdp-run/torchinductor`` (``~/.cache/...``), which survives reboots
    (torch's own default is under /tmp). Sets the variable, so torch uses the same folder."""
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "stdp-run", "torchinductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def _marker(key: str) -> str:
    return os.path.join(inductor_cache_dir(), "stdp-run-steps", key)


def step_cached(key: str | None) -> bool:
    """Whether the step of ``key`` (``runner.build.step_key``) compiled before into the inductor
    cache: a marker file beside the cache, written after its first compilation (deleting the
    cache deletes the markers; with inductor's caches disabled nothing is cached). A wrong
    answer costs time, never a result."""
    if key is None or os.environ.get("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "0") == "1":
        return False
    return os.path.exists(_marker(key))


def mark_step_cached(key: str) -> None:
    """Record that the step of ``key`` compiled into the inductor cache (best effort)."""
    try:
        os.makedirs(os.path.dirname(_marker(key)), exist_ok=True)
        with open(_marker(key), "a", encoding="ascii"):
            pass
    except OSError:
        log.debug("could not mark step %s as cached", key)


def _device(network: Network) -> torch.device:
    """Where the network's tensors live (the CPU for a network without any)."""
    for tensor in itertools.chain(network.parameters(), network.buffers()):
        return tensor.device
    return torch.device("cpu")


def synchronize(network: Network) -> None:
    """Wait for the network's device (timings of asynchronous CUDA work need it)."""
    device = _device(network)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CompiledStep:
    """A compiled step (``StepFn``) that can also run ``steps_per_call`` steps in one call.

    A compiled call costs ~80 us of fixed overhead (guards, wrappers) on the CPU, as much as the
    arithmetic of a 784 x 100 step, hence the chunks for small steps.
    :meth:`run_chunk` unrolls ``k`` steps (with the spike counting of :func:`run_batch`) into one
    graph, so the fixed cost of a compiled call is paid once per ``k`` steps. Stale trainer
    caches are rebuilt eagerly before each call, so the graphs never branch on them.
    """

    def __init__(self, network: Network, steps_per_call: int, key: str | None = None) -> None:
        self.network = network
        self.steps_per_call = steps_per_call
        self.key = key  # marked cached after the first compilation (``run.compile=auto`` reads it)
        #: seconds spent in calls that compiled a graph (the first call of each specialisation)
        self.compile_s = 0.0
        self._seen: set[tuple[Any, ...]] = set()
        # Inductor recomputes a cheap value inside every loop that reads it unless it has more
        # than ``realize_reads_threshold`` readers; the ages and spikes of a step are read by
        # per-synapse loops, where recomputing them (mask loads) costs more than storing them.
        options: dict[str, Any] = {"realize_reads_threshold": 1}
        # On the CPU the graph's wrapper (the code that calls its kernels) is C++ rather than
        # Python: the same kernels and numbers, less fixed cost per call. Alternating runs of
        # the default experiment (9,000 calls): 25 % more training steps/s, 2.7 s (11 %) less
        # start to exit with a warm cache, weights bit-identical (docs/PERFORMANCE.md).
        if _device(network).type == "cpu":
            options["cpp_wrapper"] = True
        self._step = torch.compile(self._one, fullgraph=True, dynamic=False, options=options)
        self._chunk = torch.compile(self._many, fullgraph=True, dynamic=False, options=options)

    def _one(self, drive: dict[str, Tensor], apply: bool) -> None:
        self.network.step(drive)
        if apply:
            self.network.apply_updates()

    def _many(
        self,
        drive: dict[str, Tensor],
        apply: tuple[bool, ...],
        counts: dict[str, Tensor],
        raster: dict[str, Tensor],
    ) -> None:
        for j, flag in enumerate(apply):
            self._one({name: d[j] for name, d in drive.items()}, flag)
            for p, count in counts.items():
                spk = self.network.spikes(p)
                count.add_(spk)
                if p in raster:
                    raster[p][j].copy_(spk)

    def _float(self, drive: dict[str, Tensor]) -> dict[str, Tensor]:
        # Imposed spikes as 0/1 floats (populations accept them): compiled loops that re-read
        # the spikes inside per-synapse loops load floats much faster than bools.
        dtype = self.network._float_dtype()
        return {name: d.to(dtype) for name, d in drive.items()}

    def __call__(self, drive: dict[str, Tensor], apply: bool) -> None:
        self.network.refresh_caches()
        self._timed(("one", apply), self._step, self._float(drive), apply)

    def run_chunk(
        self,
        drive: dict[str, Tensor],
        apply: tuple[bool, ...],
        counts: dict[str, Tensor],
        raster: dict[str, Tensor],
    ) -> None:
        """Run ``len(apply)`` steps; ``drive`` and ``raster`` hold ``[k, B, N]`` slices."""
        self.network.refresh_caches()
        self._timed(("many", apply), self._chunk, self._float(drive), apply, counts, raster)

    def _timed(self, key: tuple[Any, ...], fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn``; the first call of each specialisation compiles it and counts as compile
        time (its few simulated steps are negligible next to the compilation)."""
        key = (*key, self.network.batch_size, self.network.training)
        if key in self._seen:
            fn(*args)
            return
        if not self._seen:
            log.info("compiling the step (once per process; cached in %s for the next run)",
                     inductor_cache_dir())  # fmt: skip
        start = time.perf_counter()
        fn(*args)
        synchronize(self.network)
        self.compile_s += time.perf_counter() - start
        self._seen.add(key)
        if self.key is not None:
            mark_step_cached(self.key)


def trained_synapses(network: Network) -> int:
    """Batch size x the number of synapses of the trained dense connections."""
    total = 0
    for conn in network.connections.values():
        if isinstance(conn, DenseConnection) and len(conn.updaters) > 0:
            total += conn.batch_size * conn.n_in * conn.n_out
    return total


class TrainClock:
    """Training simulation time, in segments between the learning-free phases: wall time
    (after the device finished) minus the compilation inside the segment."""

    def __init__(self, network: Network, step: StepFn) -> None:
        self.network, self.step = network, step
        self.compiled = getattr(step, "compile_s", 0.0)
        self.start = time.perf_counter()
        self.segment_compiled = 0.0

    def restart(self) -> None:
        self.start = time.perf_counter()
        self.segment_compiled = 0.0

    def note_compile(self, state: LoopState) -> None:
        """Move the compilation done since the last call into ``state.compile_s`` (so that the
        progress line excludes it while the epoch runs)."""
        total = getattr(self.step, "compile_s", 0.0)
        state.compile_s += total - self.compiled
        self.segment_compiled += total - self.compiled
        self.compiled = total

    def stop(self, state: LoopState) -> None:
        """Add the segment since the last (re)start to ``state.train_s`` and ``compile_s``."""
        synchronize(self.network)
        self.note_compile(state)
        state.train_s += time.perf_counter() - self.start - self.segment_compiled
