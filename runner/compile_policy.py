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

from dataclasses import dataclass

#: seconds per step: fixed part and per trained synapse-sample, without and with active delays
EAGER = {"overhead": 0.70e-3, "synapse": 10e-9, "synapse_delays": 37e-9}
COMPILED = {"overhead": 0.035e-3, "synapse": 1.5e-9, "synapse_delays": 6.5e-9}
#: a cold compilation of the step (seconds); a warm cache makes it a few seconds
COLD_COMPILE_S = 30.0


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
    mode: str, *, train_steps: int, synapse_samples: int, delays: bool
) -> CompileChoice:
    """``mode`` ``true``/``false`` as given; ``auto``: compile when the estimated eager time of
    the ``train_steps`` training steps exceeds the compiled time plus a cold compilation."""
    if mode in ("true", "false"):
        return CompileChoice(mode == "true", f"run.compile={mode}")
    eager = train_steps * step_seconds(EAGER, synapse_samples, delays)
    compiled = COLD_COMPILE_S + train_steps * step_seconds(COMPILED, synapse_samples, delays)
    verdict = "compiling the step" if compiled < eager else "eager step"
    reason = (
        f"run.compile=auto: {verdict} ({train_steps:,} training steps: about {eager:.0f} s "
        f"eager against {compiled:.0f} s compiled, {COLD_COMPILE_S:.0f} s of it compiling)"
    )
    return CompileChoice(compiled < eager, reason)
