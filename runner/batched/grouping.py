"""Which sweep jobs may run side by side in one simulation (a pure rule, no Hydra, no torch).

Two jobs share a group when their composed configs differ only in values that may vary per
replica (:data:`BATCHABLE`): the seed, numeric kernel kwargs, bound limits and kwargs, neuron
parameters, normalisation targets, stimulus (input rate) parameters and initial ranges. Any
other difference (a size, a kind, a kernel name, the trainers, populations, steps, n_train,
batch size, epochs, dtype, device, ...) puts the job in another group; :func:`split_key` names
the first such key, so the launcher can say why in one log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Dotted config paths (``*`` = one name) whose numeric values may differ within a group.
BATCHABLE: tuple[str, ...] = (
    "seed",
    "trainer.*.kernel_post.kwargs.*",
    "trainer.*.kernel_pre.kwargs.*",
    "trainer.*.cells.*.kernel_post.kwargs.*",
    "trainer.*.cells.*.kernel_pre.kwargs.*",
    "network.populations.*.params.*",
    "network.connections.*.weight_bounds.*.limit",
    "network.connections.*.weight_bounds.*.kwargs.*",
    "network.connections.*.delay_bounds.*.limit",
    "network.connections.*.delay_bounds.*.kwargs.*",
    "network.connections.*.normalize.target",
    "network.connections.*.weight_init.*",
    "network.connections.*.delay_init.*",
    "stimulus.params.*",
)
_PATTERNS = [re.compile("^" + re.escape(p).replace(r"\*", r"[^.]+") + "$") for p in BATCHABLE]
#: Keys that never matter for grouping (each job keeps its own folder and name).
IGNORED = ("hydra",)


def batchable_key(path: str) -> bool:
    """True if the dotted config ``path`` is one whose value may vary per replica."""
    return any(p.match(path) for p in _PATTERNS)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf of a plain container (lists index by position)."""
    if isinstance(node, Mapping):
        if not node:
            yield prefix, {}
        for key, value in node.items():
            if not prefix and key in IGNORED:
                continue
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list | tuple):
        if not node:
            yield prefix, []
        for i, value in enumerate(node):
            yield from _leaves(value, f"{prefix}.{i}")
    else:
        yield prefix, node


def split_key(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first key whose difference keeps configs ``a`` and ``b`` out of one group, else None.

    A key differs when it is in one config only, or when its values differ and either the key
    is not batchable or one of the values is not a number (e.g. a kernel name, a null).
    """
    left, right = dict(_leaves(a)), dict(_leaves(b))
    for path in [*left, *(p for p in right if p not in left)]:
        if path not in left or path not in right:
            return path
        x, y = left[path], right[path]
        if x == y and type(x) is type(y):
            continue
        if not (batchable_key(path) and _number(x) and _number(y)):
            return path
    return None


@dataclass
class Group:
    """Jobs (indices into the launcher's list) that run as one simulation."""

    jobs: list[int] = field(default_factory=list)
    why: str = ""  # why this group is not part of an earlier one ("" for the first)


def group_jobs(configs: Sequence[Mapping[str, Any]], capacity: int) -> list[Group]:
    """Jobs in groups of at most ``capacity`` whose configs differ only in batchable values.

    Jobs keep their order within a group; each job joins the first open group it fits. A group
    started because a job did not fit an earlier one says why: the key that differs from the
    first group's configs, or that the earlier group was full.
    """
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity}")
    groups: list[Group] = []
    for index, config in enumerate(configs):
        why = ""
        for group in groups:
            key = split_key(configs[group.jobs[0]], config)
            if key is None and len(group.jobs) < capacity:
                group.jobs.append(index)
                break
            if not why:
                why = (
                    f"{key} differs" if key is not None else f"the group is full ({capacity} jobs)"
                )
        else:
            groups.append(Group([index], why))
    return groups


def _itemsize(config: Mapping[str, Any]) -> int:
    return 8 if config.get("dtype") == "float64" else 4


def _population_sizes(config: Mapping[str, Any]) -> dict[str, int]:
    populations = (config.get("network") or {}).get("populations") or {}
    return {str(name): int(pop.get("size") or 0) for name, pop in populations.items()}


def _connections(config: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], int, int]]:
    """``(name, connection, n_in, n_out)`` of each connection of the config's network."""
    sizes = _population_sizes(config)
    for name, conn in ((config.get("network") or {}).get("connections") or {}).items():
        yield str(name), conn, sizes.get(conn.get("pre"), 0), sizes.get(conn.get("post"), 0)


def replica_bytes(config: Mapping[str, Any]) -> int:
    """An upper estimate of one replica's memory: its synapses times the per-synapse tensors
    (weight, delay, pending update, per-sample cell terms) plus per-sample neuron state."""
    itemsize = _itemsize(config)
    run = config.get("run") or {}
    batch = max(int(run.get("batch_size") or 1), 1)
    sizes = _population_sizes(config)
    total = 0
    for _, conn, n_in, n_out in _connections(config):
        delayed = conn.get("max_delay") is not None
        # weight + update (+ delay + its update), and about four per-sample terms per synapse
        per_synapse = (2 + (2 if delayed else 0)) + 4 * batch
        total += n_in * n_out * per_synapse * itemsize
    total += sum(sizes.values()) * batch * 16 * itemsize  # voltages, thresholds, ages, traces
    return total


def memory_capacity(per_replica: int, free_bytes: int, fraction: float = 0.5) -> int:
    """How many replicas fit in ``fraction`` of ``free_bytes`` (at least 1)."""
    return max(1, int(free_bytes * fraction) // max(per_replica, 1))


#: On the CPU, the bytes of weights (and their pending updates) a stacked step may read and
#: write: beyond it the stack outgrows the caches and a replica steps no faster than a network
#: alone. Measured at batch 1 (docs/PERFORMANCE.md): 16 jobs of mnist_stdp_cpu (0.64 MB a
#: replica) in groups of at most 2, 4, 8 and 16 took 94, 84, 101 and 110 s; the default
#: experiment's 16 (0.09 MB each) gain most as one group.
CPU_GROUP_MB = 3.0


def step_bytes(config: Mapping[str, Any], elements: Callable[[str, int, int], int]) -> int:
    """One replica's weights that every step reads and writes: each connection's
    (``elements(kind, n_in, n_out)`` of them), twice where a trainer trains them (the weights
    and their update). Learned delays are not counted: the delay rules' gathers make their step
    compute-bound (mnist_dr_stdp_cpu's network, compiled, 2 / 4 / 8 stacked replicas: 0.94x /
    1.14x / 1.25x the rate of networks in turn)."""
    trained = {
        str(cell)
        for trainer in (config.get("trainer") or {}).values()
        for cell in ((trainer or {}).get("cells") or {})
    }
    total = 0
    for name, conn, n_in, n_out in _connections(config):
        total += elements(str(conn.get("kind")), n_in, n_out) * (2 if name in trained else 1)
    return total * _itemsize(config)


def cache_capacity(per_replica: int, budget_mb: float) -> int:
    """How many replicas keep a stacked step's synaptic state within ``budget_mb`` (at least 1;
    no cap when ``budget_mb`` is 0)."""
    if budget_mb <= 0:
        return 2**31
    return max(1, int(budget_mb * 2**20) // max(per_replica, 1))


def balanced(capacity: int, n_jobs: int) -> int:
    """The group size that splits ``n_jobs`` into as few groups as ``capacity`` allows, as
    evenly as possible (16 jobs, at most 5 a group: four groups of 4 rather than 5, 5, 5, 1)."""
    if n_jobs <= capacity:
        return capacity
    groups = -(-n_jobs // capacity)
    return -(-n_jobs // groups)
