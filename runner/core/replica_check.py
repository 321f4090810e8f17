"""Which networks can be stacked into replicas: the same structure, numbers free to differ.

:func:`check_structure` compares every network with the first and raises
:class:`ReplicaMismatch` naming the first difference in one line, e.g.
``network.populations.exc.size differs: 100 vs 400 (replicas must share sizes)``.
Numeric hyperparameters (neuron parameters, kernel kwargs, bound limits, clamps, normalisation
targets) and the initial values are not compared: they become per-replica values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from runner.core.cell import Cell
from runner.core.dense import DenseConnection
from runner.core.network import Network
from runner.core.trainers import KernelTrainer
from runner.core.updater import ParameterUpdater


class ReplicaMismatch(ValueError):
    """Networks that cannot be stacked (the message names the first difference)."""


def _same(label: str, values: Sequence[Any], why: str) -> None:
    first = values[0]
    for value in values[1:]:
        if value != first:
            raise ReplicaMismatch(f"{label} differs: {first} vs {value} ({why})")


def _name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _each(nets: Sequence[Network], group: str, check: Callable[[str, list[Any]], None]) -> None:
    """``check(label, modules)`` for every module of ``network.<group>``, across the networks."""
    for name in getattr(nets[0], group):
        check(f"network.{group}.{name}", [getattr(n, group)[name] for n in nets])


def _stackable(label: str, module: Any) -> None:
    if not callable(getattr(module, "stack_replicas", None)):
        raise ReplicaMismatch(
            f"{label} ({type(module).__name__}) cannot be stacked: its class has no "
            "stack_replicas (runner.core.replicas)"
        )


def _population(label: str, pops: list[Any]) -> None:
    _same(f"{label}.kind", [type(p).__name__ for p in pops], "replicas must share neuron kinds")
    _stackable(label, pops[0])
    _same(f"{label}.size", [p.n for p in pops], "replicas must share sizes")


def _connection(label: str, conns: list[Any]) -> None:
    _same(f"{label}.kind", [type(c).__name__ for c in conns], "replicas must share kinds")
    _stackable(label, conns[0])
    _same(f"{label}.size", [(c.n_in, c.n_out) for c in conns], "replicas must share sizes")
    _same(f"{label}.scale", [c.scale for c in conns], "replicas must share structural values")
    if isinstance(conns[0], DenseConnection):
        _same(f"{label}.max_delay", [c.max_delay for c in conns],
              "replicas must share delays on/off and max_delay")  # fmt: skip
        _same(
            f"{label}.trained", [sorted(c.updaters) for c in conns], "replicas must train the same"
        )
        for param in conns[0].updaters:
            _updater(f"{label}.{param}_bounds", [c.updaters[param] for c in conns])


def _bound_kind(bound: Any) -> Any:
    return None if bound is None else (bound.fn, sorted(bound.kwargs))


def _updater(label: str, ups: list[ParameterUpdater]) -> None:
    _same(f"{label}.accumulate", [u.accumulate for u in ups], "replicas must share it")
    for side in ("upper", "lower"):
        _same(f"{label}.{side}", [_bound_kind(getattr(u, side)) for u in ups],
              "replicas must share bound kinds")  # fmt: skip
    for clamp in ("clamp_min", "clamp_max"):
        _same(f"{label}.{clamp}", [getattr(u, clamp) is None for u in ups],
              "replicas must agree on which clamps are set")  # fmt: skip
    _same(f"{label}.pending", [(u.n_pos, u.n_neg) for u in ups], "replicas must step alike")


def _trainer(label: str, trainers: list[Any]) -> None:
    _same(f"{label}.kind", [type(t).__name__ for t in trainers], "replicas must share trainers")
    if not isinstance(trainers[0], KernelTrainer):
        raise ReplicaMismatch(f"{label} cannot be stacked: only kernel trainers can")
    _same(f"{label}.cells", [sorted(t.cells) for t in trainers], "replicas must share trainers")
    for name in trainers[0].cells:
        cells: list[Cell] = [t.cells[name] for t in trainers]
        _cell(f"{label}.cells.{name}", cells)


def _cell(label: str, cells: list[Cell]) -> None:
    for key in ("kernel_post", "kernel_pre", "batch_reduction"):
        _same(f"{label}.{key}", [_name(getattr(c, key)) for c in cells],
              "replicas must share kernels and reductions")  # fmt: skip
    _same(f"{label}.delayed", [c.delayed for c in cells], "replicas must share it")
    _same(f"{label}.interp_tolerance", [c.interp_tolerance for c in cells],
          "replicas must share structural values")  # fmt: skip
    _same(f"{label}.path", [c.path.name for c in cells], "replicas must share the arithmetic")
    for side in ("kernel_post_kwargs", "kernel_pre_kwargs"):
        kinds = [
            sorted(
                (k, tuple(v.shape) if isinstance(v, Tensor) else None)
                for k, v in getattr(c, side).as_dict().items()
            )  # fmt: skip
            for c in cells
        ]
        _same(f"{label}.{side}", kinds, "replicas must share kwarg names and tensor shapes")


def _tensors(label: str, nets: Sequence[Network]) -> None:
    """Every parameter and buffer: the same names, shapes, dtypes and devices."""

    def table(net: Network) -> dict[str, tuple[Any, ...]]:
        found = {**dict(net.named_parameters()), **dict(net.named_buffers())}
        return {k: (tuple(t.shape), t.dtype, t.device) for k, t in found.items()}

    first = table(nets[0])
    for net in nets[1:]:
        other = table(net)
        for key in sorted(set(first) | set(other)):
            a, b = first.get(key), other.get(key)
            if a is None or b is None:
                _same(f"{label}.{key}", [a is not None, b is not None], "replicas must share state")
            elif a != b:
                what = ("shape", "dtype", "device")
                i = next(j for j in range(3) if a[j] != b[j])
                why = (
                    "replicas must share sizes" if i == 0 else f"replicas must share the {what[i]}"
                )
                raise ReplicaMismatch(f"{label}.{key} {what[i]} differs: {a[i]} vs {b[i]} ({why})")


def check_structure(networks: Sequence[Network]) -> None:
    """Raise :class:`ReplicaMismatch` unless every network has the first one's structure."""
    nets = list(networks)
    if not nets:
        raise ReplicaMismatch("no networks to stack: give at least one")
    for i, net in enumerate(nets):
        if not isinstance(net, Network):
            raise ReplicaMismatch(f"networks[{i}] is a {type(net).__name__}, not a Network")
        if net.replicas != 1:
            raise ReplicaMismatch(f"networks[{i}] is already stacked ({net.replicas} replicas)")
    _same("network.dt", [n.dt for n in nets], "replicas must share dt")
    _same("network.batch_size", [n.batch_size for n in nets], "replicas must share it")
    _same("network.training", [n.training for n in nets], "replicas must share the mode")
    for group in ("populations", "connections", "trainers", "ages"):
        _same(f"network.{group}", [list(getattr(n, group)) for n in nets],
              f"replicas must share {group} by name")  # fmt: skip
    _same("network.driven", [n.driven for n in nets], "replicas must share driven populations")
    _same("network.wiring", [n.wiring for n in nets], "replicas must share the wiring")
    _each(nets, "populations", _population)
    _each(nets, "connections", _connection)
    _each(nets, "trainers", _trainer)
    hooks = [[type(h).__name__ for h in n.batch_hooks] for n in nets]
    _same("network.batch_hooks", hooks, "replicas must share hooks")
    for i, hook in enumerate(nets[0].batch_hooks):
        if not callable(getattr(hook, "stack_replicas", None)):
            raise ReplicaMismatch(
                f"network.batch_hooks[{i}] ({hook!r}) cannot be stacked: a hook object with "
                "stack_replicas (e.g. runner.core.hooks.NormalizeL1) is needed"
            )
    _tensors("network", nets)
