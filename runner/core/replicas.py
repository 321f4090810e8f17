"""Many independent networks ("replicas") in one simulation.

:func:`stack_networks` turns R solo networks of one structure into one network whose step is a
single set of batched tensor ops. Layout: per-sample state and the drive are folded
replica-major, ``[R*B, ...]`` (rows ``r*B:(r+1)*B`` are replica r); weights and delays are
``[R, O, I]``; a hyperparameter that differs between replicas becomes a per-replica tensor that
broadcasts against them (equal ones stay Python floats, so the arithmetic is the solo one). On a
stacked network ``batch_size`` counts rows (R*B), so :func:`runner.loop.run_batch` runs it as it
runs a solo one.

Each replica computes exactly what its solo network computes (float64 on the CPU: bit for bit;
``tests/test_replicas.py``). :func:`replica_parameters` reads one replica's learned tensors back
with the solo shapes and :func:`write_back` copies every replica into its solo network, so that
the recording code, which reads solo networks, writes each job's results.

A module type takes part by a method ``stack_replicas(solos)`` that turns the (deep-copied) first
replica into all of them; a population or connection without one is refused. Per-replica
numbers are plain tensors made on the solo networks' device: stack networks after ``.to()``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from runner.core.cell import Cell
from runner.core.network import Network
from runner.core.replica_check import ReplicaMismatch, check_structure
from runner.core.updater import ParameterUpdater

__all__ = ["ReplicaMismatch", "replica_parameters", "stack_networks", "write_back"]

#: how a stacked tensor holds its replicas: a leading replica axis, folded rows, or one shared
Layout = tuple[str, tuple[int, ...]]


def stack_networks(networks: Sequence[Network]) -> Network:
    """One network that simulates len(networks) independent replicas side by side.

    Every network must have the same structure (populations, sizes, kinds, connections, delays
    on/off, trainers, kernels, reductions, bound kinds, hooks, batch size, dtype, device); numeric
    hyperparameters may differ and become per-replica tensors. Raises :class:`ReplicaMismatch`
    (a ValueError) whose one-line message names the first difference. The solo networks are not
    changed.
    """
    nets = list(networks)
    check_structure(nets)
    stacked = copy.deepcopy(nets[0])
    with torch.no_grad():
        for name, module in stacked.named_modules():
            stack = getattr(module, "stack_replicas", None)
            if name and callable(stack):
                try:
                    stack([net.get_submodule(name) for net in nets])
                except ValueError as err:
                    raise ReplicaMismatch(f"network.{name}: {err}") from None
        for i, hook in enumerate(stacked.batch_hooks):
            hook.stack_replicas([net.batch_hooks[i] for net in nets])  # type: ignore[attr-defined]
    stacked.replicas = len(nets)
    stacked.batch_size = sum(net.batch_size for net in nets)
    stacked.replica_layout = _layouts(stacked, nets[0])
    return stacked


def _tensors(network: Network) -> dict[str, Tensor]:
    return {**dict(network.named_parameters()), **dict(network.named_buffers())}


def _layouts(stacked: Network, solo: Network) -> dict[str, Layout]:
    """Name -> how the stacked tensor holds the replicas' tensors of that name."""
    replicas, solo_tensors = stacked.replicas, _tensors(solo)
    out: dict[str, Layout] = {}
    for name, t in _tensors(stacked).items():
        s = solo_tensors.get(name)
        if s is None:  # stacked only (per-replica kwargs)
            continue
        shape = tuple(s.shape)
        if t.dim() > s.dim():
            out[name] = ("replica", shape)
        elif t.dim() > 0 and t.shape[0] == replicas * s.shape[0] and t.shape[1:] == s.shape[1:]:
            out[name] = ("rows", shape)
        elif t.shape == s.shape:
            out[name] = ("shared", shape)
    return out


def _layout_of(network: Network) -> dict[str, Layout]:
    if network.replica_layout is None:
        raise ValueError("network is not stacked: build it with stack_networks")
    return network.replica_layout


def _replica(t: Tensor, layout: Layout, r: int, replicas: int) -> Tensor:
    kind, shape = layout
    if kind == "replica":
        return t[r].reshape(shape)
    if kind == "rows":
        n = t.shape[0] // replicas
        return t[r * n : (r + 1) * n]
    return t


def _check_index(network: Network, r: int) -> None:
    if not (isinstance(r, int) and 0 <= r < network.replicas):
        raise ValueError(f"replica index must be in [0, {network.replicas - 1}], got {r!r}")


def replica_parameters(network: Network, r: int) -> dict[str, Tensor]:
    """Replica r's learned tensors (weights, delays, adaptive thresholds etc: whatever
    ``Network.state_dict()`` of a solo network would hold), with the solo network's shapes.

    Views into the stacked network (clone them to keep them). A solo network gives its own
    ``state_dict`` tensors for ``r = 0``.
    """
    _check_index(network, r)
    state = network.state_dict(keep_vars=False)
    if network.replica_layout is None:
        return {k: v for k, v in state.items() if isinstance(v, Tensor)}
    layout = _layout_of(network)
    return {
        key: _replica(value, layout[key], r, network.replicas)
        for key, value in state.items()
        if isinstance(value, Tensor) and key in layout
    }


@torch.no_grad()
def write_back(stacked: Network, networks: Sequence[Network]) -> None:
    """Copy every replica's parameters AND buffers into its solo network (so that the existing
    recording code, which reads solo networks, writes each job's weights, delays, plots).

    Also matches each solo's batch size and mode, its updaters' pending counts and its kernel
    caches' validity to the stacked network.
    """
    nets = list(networks)
    if len(nets) != stacked.replicas:
        raise ValueError(f"write_back: {stacked.replicas} replicas but {len(nets)} networks given")
    layout, source = _layout_of(stacked), _tensors(stacked)
    rows = stacked.batch_size // stacked.replicas
    for r, solo in enumerate(nets):
        if solo.batch_size != rows:
            solo.set_batch_size(rows)
        solo.train(stacked.training)
        for name, target in _tensors(solo).items():
            if name not in layout or name not in source:
                continue
            value = _replica(source[name], layout[name], r, stacked.replicas)
            if target.shape == value.shape:
                target.copy_(value)
            else:  # a lazily sized buffer (e.g. a kernel cache): take the stacked one's size
                owner, _, attr = name.rpartition(".")
                setattr(solo.get_submodule(owner), attr, value.clone())
        for name, module in solo.named_modules():
            _copy_counters(module, stacked.get_submodule(name), r)


def _copy_counters(module: Any, source: Any, r: int) -> None:
    """Host-side state that is not a tensor: pending update counts, kernel cache validity."""
    if isinstance(module, ParameterUpdater):
        module.n_pos, module.n_neg = source.n_pos, source.n_neg
        first = source._first
        module._first = None if first is None else (first[0][r].clone(), first[1][r].clone())
    elif isinstance(module, Cell):
        module.cache_valid = bool(source.cache_valid) and module.kernel_cache is not None
