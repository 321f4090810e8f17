"""The replica section of ``scripts/bench.py``: R replicas in one stacked network against R solo
networks stepped one after another (``runner.core.replicas``).

    python scripts/bench.py --workloads replicas              # R = 1, 4, 16; eager and compiled

The default experiment's network at batch 1, replica r built with ``seed=r`` (its own initial
weights and Poisson digits), trained through ``runner.loop.run_batch`` exactly as a run trains
it. Timed in one process: one untimed batch (it compiles), then ``repeats`` timed batches of one
digit (50 steps) each, median. Reported: replica-steps/s (R x steps / wall s) of both sides and
their ratio (stacked / solo, > 1: the stacked network is faster). Solo eager steps R built
networks one after another; solo compiled times one compiled network and counts it R times (the
R graphs would be the same graph, each compiled once).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

REPLICAS = (1, 4, 16)
QUICK_REPLICAS = (1, 2)


def _experiments(n: int, quick: bool) -> list[Any]:
    import torch
    from hydra import compose, initialize_config_module

    import runner.config.schema  # noqa: F401  (registers the schema)
    from runner.build import build_experiment

    extra = ["run.steps_per_sample=10", "run.n_train=8"] if quick else ["run.n_train=64"]
    out = []
    with initialize_config_module("runner.conf", version_base="1.3"):
        for r in range(n):
            cfg = compose("config", overrides=[f"seed={r}", "device=cpu", *extra])
            out.append(build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32))
    return out


def _timer(nets: list[Any], exps: list[Any], batches: list[list[Any]], step: Any) -> Any:
    """A function running batch ``i`` through every network in turn (seconds)."""
    import torch

    from runner.loop import Callbacks, LoopState, run_batch

    state = LoopState()

    def once(i: int) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for net, exp, batch in zip(nets, exps, batches, strict=True):
                run_batch(net, exp.task, batch[i], exp.plan, state, train=True, probe=None,
                          callbacks=Callbacks(), step=step(net))  # fmt: skip
                net.after_batch()
        return time.perf_counter() - start

    return once


def measure(repeats: int, quick: bool) -> dict[str, Any]:
    """replica-steps/s of stacked and solo networks for each R and compile mode."""
    import copy

    from runner.core.replicas import stack_networks
    from runner.loop import Batch, make_step

    sizes = QUICK_REPLICAS if quick else REPLICAS
    exps = _experiments(max(sizes), quick)
    per_exp = [list(e.task.batches("train", 0))[: repeats + 1] for e in exps]
    steps = int(per_exp[0][0].spikes.shape[0])
    results: dict[str, Any] = {"steps_per_batch": steps, "repeats": repeats, "rows": []}
    for compiled in (False, True):
        for r in sizes:
            solo_nets = [copy.deepcopy(e.network) for e in exps[:r]]
            stacked = stack_networks([copy.deepcopy(e.network) for e in exps[:r]])
            group = [
                Batch(torch_cat([b[i].spikes for b in per_exp[:r]])) for i in range(repeats + 1)
            ]
            steppers: dict[int, Any] = {}

            def step(
                net: Any, compiled: bool = compiled, steppers: dict[int, Any] = steppers
            ) -> Any:
                if id(net) not in steppers:
                    steppers[id(net)] = make_step(net, compile=compiled) if compiled else None
                return steppers[id(net)]

            # stacked first (make_step(compile=True) resets dynamo's caches for each network)
            stacked_once = _timer([stacked], exps[:1], [group], step)
            stacked_once(0)
            stacked_s = statistics.median(stacked_once(i) for i in range(1, repeats + 1))
            if compiled:  # one compiled solo network, counted r times
                solo_once = _timer(solo_nets[:1], exps[:1], per_exp[:1], step)
                solo_once(0)
                solo_s = r * statistics.median(solo_once(i) for i in range(1, repeats + 1))
            else:
                solo_once = _timer(solo_nets, exps[:r], per_exp[:r], step)
                solo_once(0)
                solo_s = statistics.median(solo_once(i) for i in range(1, repeats + 1))
            results["rows"].append(
                {
                    "replicas": r,
                    "compiled": compiled,
                    "stacked_steps_per_s": r * steps / stacked_s,
                    "solo_steps_per_s": r * steps / solo_s,
                    "speedup": solo_s / stacked_s,
                }
            )
    return results


def torch_cat(parts: list[Any]) -> Any:
    import torch

    return torch.cat(parts, dim=1)


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    if "error" in result:
        Console().print(f"[red]replicas: {result['error']}")
        return
    table = Table(
        title=f"replicas of the default network at batch 1 ({result['steps_per_batch']} steps "
        f"per batch, median of {result['repeats']}); replica-steps/s"
    )
    for col in ("R", "mode", "stacked", "R solo in turn", "speedup"):
        table.add_column(col, justify="right")
    for row in result["rows"]:
        table.add_row(
            str(row["replicas"]),
            "compiled" if row["compiled"] else "eager",
            f"{row['stacked_steps_per_s']:,.0f}",
            f"{row['solo_steps_per_s']:,.0f}",
            f"{row['speedup']:.2f}x",
        )
    Console(width=120).print(table)
