"""The replica section of ``scripts/bench.py``: R replicas in one stacked network against R solo
networks stepped one after another (``runner.core.replicas``).

    python scripts/bench.py --workloads replicas   # default: R = 1, 4, 16; mnist: R = 4, 16

The default experiment's network (64 x 100) and, in full runs, mnist_stdp_cpu's (784 x 100, its
samples cut to 50 steps), at batch 1, replica r built with ``seed=r`` (its own initial
weights and Poisson digits), trained through ``runner.loop.run_batch`` exactly as a run trains
it. Timed in one process: one untimed batch (it compiles), then ``repeats`` timed batches of one
digit (50 steps) each, stacked and solo alternating, median. Reported: replica-steps/s
(R x steps / s) of both sides, wall clock and CPU time, and their ratio (solo time / stacked
time, > 1: the stacked network is faster). Solo eager steps R built networks one after another;
solo compiled times one compiled network and counts it R times (the R graphs would be the same
graph, each compiled once).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

REPLICAS = (1, 4, 16)
QUICK_REPLICAS = (1, 2)
#: experiment -> replica counts timed (full runs); quick runs time the default one only
NETWORKS = {"default": REPLICAS, "mnist_stdp_cpu": (4, 16)}
#: per-experiment overrides: mnist's samples cut to the default's 50 steps (the rate per step
#: is what is compared; a full 350-step digit would make the eager solo side take minutes)
OVERRIDES = {
    "default": [],
    "mnist_stdp_cpu": ["experiment=mnist_stdp_cpu", "run.steps_per_sample=50"],
}


def _experiments(n: int, quick: bool, name: str = "default") -> list[Any]:
    import torch
    from hydra import compose, initialize_config_module

    import runner.config.schema  # noqa: F401  (registers the schema)
    from runner.build import build_experiment

    extra = ["run.steps_per_sample=10", "run.n_train=8"] if quick else ["run.n_train=64"]
    out = []
    with initialize_config_module("runner.conf", version_base="1.3"):
        for r in range(n):
            overrides = [*OVERRIDES[name], f"seed={r}", "device=cpu", *extra]
            cfg = compose("config", overrides=overrides)
            out.append(build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32))
    return out


def _timer(nets: list[Any], exps: list[Any], batches: list[list[Any]], steps: Any) -> Any:
    """A function running batch ``i`` through every network in turn (seconds)."""
    import torch

    from runner.loop import Callbacks, LoopState, run_batch

    state = LoopState()

    def once(i: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for net, exp, batch in zip(nets, exps, batches, strict=True):
                run_batch(net, exp.task, batch[i], exp.plan, state, train=True, probe=None,
                          callbacks=Callbacks(), step=steps[id(net)])  # fmt: skip
                net.after_batch()
        return time.perf_counter() - start, time.process_time() - cpu

    return once


def measure(repeats: int, quick: bool) -> dict[str, Any]:
    """replica-steps/s of stacked and solo networks for each network, R and compile mode."""
    networks = {"default": QUICK_REPLICAS} if quick else NETWORKS
    results: dict[str, Any] = {"repeats": repeats, "rows": []}
    for name, sizes in networks.items():
        part = _measure_network(name, sizes, repeats, quick)
        results.setdefault("steps_per_batch", part["steps_per_batch"])
        results["rows"] += part["rows"]
    return results


def _measure_network(
    name: str, sizes: tuple[int, ...], repeats: int, quick: bool
) -> dict[str, Any]:
    """:func:`measure` for one experiment's network."""
    import copy

    import torch

    from runner.core.replicas import stack_networks
    from runner.loop import Batch

    exps = _experiments(max(sizes), quick, name)
    per_exp = [list(e.task.batches("train", 0))[: repeats + 1] for e in exps]
    steps = int(per_exp[0][0].spikes.shape[0])
    results: dict[str, Any] = {"steps_per_batch": steps, "rows": []}
    for compiled in (False, True):
        for r in sizes:
            torch._dynamo.reset()  # as make_step does for each run
            solo_nets = [copy.deepcopy(e.network) for e in exps[:r]]
            stacked = stack_networks([copy.deepcopy(e.network) for e in exps[:r]])
            group = [
                Batch(torch_cat([b[i].spikes for b in per_exp[:r]])) for i in range(repeats + 1)
            ]
            nets = [stacked, *(solo_nets[:1] if compiled else solo_nets)]
            steps_of = {id(n): _stepper(n, compiled) for n in nets}
            stacked_once = _timer([stacked], exps[:1], [group], steps_of)
            solo_once = _timer(nets[1:], exps[: len(nets) - 1], per_exp[: len(nets) - 1], steps_of)
            # alternate stacked and solo batches, so that changes of the machine's load hit both
            stacked_once(0)  # untimed: compiles
            solo_once(0)
            pairs = [(stacked_once(i), solo_once(i)) for i in range(1, repeats + 1)]
            stacked_s = _medians([p[0] for p in pairs])
            solo_s = _medians([p[1] for p in pairs])
            if compiled:  # one compiled solo network, counted r times
                solo_s = (r * solo_s[0], r * solo_s[1])
            row: dict[str, Any] = {"network": name, "replicas": r, "compiled": compiled}
            for i, clock in enumerate(("", "cpu_")):
                row[f"stacked_{clock}steps_per_s"] = r * steps / stacked_s[i]
                row[f"solo_{clock}steps_per_s"] = r * steps / solo_s[i]
                row[f"{clock}speedup"] = solo_s[i] / stacked_s[i]
            results["rows"].append(row)
    return results


def _medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and CPU seconds."""
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def _stepper(net: Any, compiled: bool) -> Any:
    """The run's step for ``net``: eager (None), or compiled as ``make_step`` compiles it, made
    directly so that two compiled networks can alternate without resetting dynamo."""
    from runner.compile_policy import MAX_CHUNKED_SYNAPSES, MAX_STEPS_PER_CALL
    from runner.loop import CompiledStep, inductor_cache_dir, trained_synapses

    if not compiled:
        return None
    inductor_cache_dir()
    small = trained_synapses(net) <= MAX_CHUNKED_SYNAPSES
    return CompiledStep(net, MAX_STEPS_PER_CALL if small else 1)


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
        title=f"replicas of a network at batch 1 ({result['steps_per_batch']} steps "
        f"per batch, median of {result['repeats']}); replica-steps/s, wall clock [CPU time]"
    )
    for col in (
        "network",
        "R",
        "mode",
        "stacked wall [cpu]",
        "R solo in turn wall [cpu]",
        "speedup",
    ):
        table.add_column(col, justify="right")

    def pair(row: dict[str, Any], key: str, spec: str) -> str:
        return f"{format(row[key.format('')], spec)} [{format(row[key.format('cpu_')], spec)}]"

    for row in result["rows"]:
        table.add_row(
            row.get("network", "default"),
            str(row["replicas"]),
            "compiled" if row["compiled"] else "eager",
            pair(row, "stacked_{}steps_per_s", ",.0f"),
            pair(row, "solo_{}steps_per_s", ",.0f"),
            pair(row, "{}speedup", ".2f"),
        )
    Console(width=120).print(table)
