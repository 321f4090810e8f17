"""``run.compile=auto``: compile the step only where the time it saves pays for compiling it.

A step's cost is a fixed overhead (Python and operator dispatch, about 100 small operations) plus
a cost per trained synapse-sample (batch x inputs x outputs of the trained dense connections,
several passes over them). ``torch.compile`` fuses the step into a few loops: the overhead drops
about 20-fold and the per-synapse cost 5-7-fold, but a cold compilation costs about 30 s (a few
seconds once the inductor cache is warm). The constants below were measured on one core of the
development machine (AMD EPYC, torch 2.13; ``scripts/bench.py`` and docs/PERFORMANCE.md) for the
shipped networks at batch 1; a GPU pays a similar per-launch overhead in eager mode, so the same
rule is used there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: seconds per step: fixed part and per trained synapse-sample, without and with active delays
EAGER = {"overhead": 0.70e-3, "synapse": 10e-9, "synapse_delays": 37e-9}
COMPILED = {"overhead": 0.035e-3, "synapse": 1.5e-9, "synapse_delays": 6.5e-9}
#: a cold compilation of the step (seconds); a warm cache makes it a few seconds
COLD_COMPILE_S = 30.0
#: compiling a step that compiled before, from the warm inductor cache (seconds): tracing it
#: again, loading its code, importing dynamo and inductor; 4-7 s for the shipped presets on the
#: CPU (``compile_s`` in summary.json, docs/EXPERIMENTS.md)
WARM_COMPILE_S = 6.0


@dataclass(frozen=True)
class CompileChoice:
    """Whether to compile, and the one-line reason logged with it."""

    compile: bool
    reason: str


def step_seconds(costs: dict[str, float], synapse_samples: int, delays: bool) -> float:
    """Estimated seconds per training step."""
    per = costs["synapse_delays" if delays else "synapse"]
    return costs["overhead"] + per * synapse_samples


def choose_compile(
    mode: str, *, train_steps: int, synapse_samples: int, delays: bool, cached: bool = False
) -> CompileChoice:
    """``mode`` ``true``/``false`` as given; ``auto``: compile when the estimated eager time of
    the ``train_steps`` training steps exceeds the compiled time plus the compilation: a cold
    one, or with ``cached`` (the same step compiled before) one from the warm cache."""
    if mode in ("true", "false"):
        return CompileChoice(mode == "true", f"run.compile={mode}")
    compile_s = WARM_COMPILE_S if cached else COLD_COMPILE_S
    eager = train_steps * step_seconds(EAGER, synapse_samples, delays)
    compiled = compile_s + train_steps * step_seconds(COMPILED, synapse_samples, delays)
    verdict = "compiling the step" if compiled < eager else "eager step"
    reason = (
        f"run.compile=auto: {verdict} ({train_steps:,} training steps: about {eager:.0f} s "
        f"eager against {compiled:.0f} s compiled, {compile_s:.0f} s of it compiling"
        f"{' from the cache' if cached else ''})"
    )
    return CompileChoice(compiled < eager, reason)


#: seconds a compiled call costs beyond its arithmetic (guards over the network's many small
#: state tensors, wrappers, the loop's per-call bookkeeping), and seconds of tracing (dynamo
#: traces every unrolled step again in every process, also with a warm inductor cache) per step
#: unrolled into a chunk graph; measured on the default experiment's network, one core, from
#: 5- against 10-step chunks (docs/PERFORMANCE.md)
CALL_OVERHEAD_S = 400e-6
TRACE_PER_STEP_S = 0.5
#: at most this many steps per compiled call, and none for large steps (their arithmetic
#: dwarfs the call overhead, while the unrolled graph would multiply the compile time)
MAX_STEPS_PER_CALL = 10
MAX_CHUNKED_SYNAPSES = 1_000_000


def steps_per_call(
    *, train_steps: int, steps_per_sample: int, synapse_samples: int, log_every: int = 0
) -> int:
    """Steps unrolled into one compiled call: the common divisor ``k`` of ``steps_per_sample``
    and ``log_every`` (so that no one-step graph is compiled for the steps left before a sample
    ends or a log line is due) up to ``MAX_STEPS_PER_CALL`` that minimises the tracing (``k``
    unrolled steps) plus the call overheads (``train_steps / k``).

    Long runs take the longest chunk; short runs take shorter ones (200 steps: 1), and the
    default experiment (65,000 steps) sits where 5 and 10 cost the same (10 is taken)."""
    if synapse_samples > MAX_CHUNKED_SYNAPSES or steps_per_sample < 1:
        return 1
    period = math.gcd(steps_per_sample, max(log_every, 0))
    divisors = [k for k in range(1, MAX_STEPS_PER_CALL + 1) if period % k == 0]
    return min(divisors, key=lambda k: k * TRACE_PER_STEP_S + train_steps / k * CALL_OVERHEAD_S)
