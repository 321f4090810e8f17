"""A network of populations, connections and learning rules, stepped in a fixed order.

One step (all tensor work on the device, no host sync):

1. populations in the order they were added: a *driven* population (the stimulus, or imposed
   spikes) takes its spikes from ``drive`` (its incoming connections still run, so that their
   spike histories and ages advance); any other population integrates the summed current of
   its incoming connections. A connection reads the spikes its presynaptic population emitted
   most recently: this step's if that population comes earlier in the order (feedforward), the
   previous step's otherwise (recurrent and lateral loops get a one-step lag);
2. spike ages of every population that a learning rule reads (training mode only);
3. every trainer pushes its (pos, neg) update parts (training mode only).

Applying the accumulated updates (every k steps) and the weight hooks (after each batch) are
separate calls, so that the loop decides when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.trainers import KernelTrainer


class Population(Protocol):
    spike: Tensor
    n: int

    def __call__(self, x: Tensor) -> Tensor: ...
    def reset_state(self) -> None: ...
    def set_batch_size(self, batch_size: int) -> None: ...


Hook = Callable[[], None]


class Network(nn.Module):
    """Populations, connections, spike ages and trainers, with the per-step order above."""

    def __init__(self, *, dt: float, batch_size: int) -> None:
        super().__init__()
        self.dt = float(dt)
        self.batch_size = int(batch_size)
        self.populations = nn.ModuleDict()
        self.connections = nn.ModuleDict()
        self.ages = nn.ModuleDict()
        self.trainers = nn.ModuleDict()
        self.driven: list[str] = []
        self.wiring: dict[str, tuple[str, str]] = {}
        self.batch_hooks: list[Hook] = []
        #: independent replicas simulated side by side (:mod:`runner.core.replicas`); when
        #: stacked, ``batch_size`` counts rows (replicas x samples) and per-sample state is
        #: ``[R*B, ...]``, replica-major
        self.replicas = 1
        #: stacked: how each tensor holds the replicas (set by ``stack_networks``)
        self.replica_layout: dict[str, tuple[str, tuple[int, ...]]] | None = None

    # ------------------------------------------------------------------------------ building
    def add_population(self, name: str, module: nn.Module, *, driven: bool = False) -> None:
        """Add a population; ``driven`` ones emit the spikes given to :meth:`step`."""
        if name in self.populations:
            raise ValueError(f"population {name!r} already exists")
        self.populations[name] = module
        if driven:
            self.driven.append(name)

    def add_connection(self, name: str, module: nn.Module, *, pre: str, post: str) -> None:
        """Connect population ``pre`` to ``post`` through ``module``."""
        for role, pop in (("pre", pre), ("post", post)):
            if pop not in self.populations:
                raise ValueError(
                    f"connection {name!r}: unknown {role} population {pop!r}; "
                    f"valid: {', '.join(self.populations)}"
                )
        self.connections[name] = module
        self.wiring[name] = (pre, post)

    def post_ages(self, population: str) -> SpikeAges:
        """The spike ages of ``population`` (tracked from now on)."""
        if population not in self.ages:
            spike = self.spikes(population)
            self.ages[population] = SpikeAges(
                tuple(spike.shape),
                dt=self.dt,
                device=spike.device,
                dtype=self._float_dtype(),
            )
        ages = self.ages[population]
        assert isinstance(ages, SpikeAges)
        return ages

    def _float_dtype(self) -> torch.dtype:
        for conn in self.connections.values():
            weight = conn.weight
            assert isinstance(weight, Tensor)
            return weight.dtype
        return torch.get_default_dtype()

    def add_trainer(
        self, name: str, trainer: KernelTrainer, cells: dict[str, dict] | None = None
    ) -> None:
        """Add a trainer and register each named connection (with per-cell overrides) on it."""
        for conn_name, overrides in (cells or {}).items():
            conn = self.connections[conn_name] if conn_name in self.connections else None  # noqa: SIM401
            if not isinstance(conn, DenseConnection):
                raise ValueError(
                    f"trainer {name!r}: cell {conn_name!r} must name a dense connection; "
                    f"valid: {', '.join(k for k, v in self.connections.items() if isinstance(v, DenseConnection))}"
                )
            post = self.wiring[conn_name][1]
            trainer.register_cell(conn_name, conn, self.post_ages(post), **overrides)
        self.trainers[name] = trainer

    def add_batch_hook(self, hook: Hook) -> None:
        """Run ``hook()`` after every training batch (e.g. weight normalisation)."""
        self.batch_hooks.append(hook)

    # ------------------------------------------------------------------------------ running
    def step(self, drive: dict[str, Tensor]) -> None:
        """Advance the network by one step with the driven populations' spikes ``[B, N]``
        (``[R*B, N]`` when stacked: the replicas' drives concatenated)."""
        for name, pop in self.populations.items():
            current: Tensor | None = None
            for conn_name, pre in self._incoming(name):
                out = self.connections[conn_name](self.spikes(pre))
                current = out if current is None else current.add_(out)
            if name in drive:  # imposed spikes: incoming current is computed but not used
                cast(Any, pop)(drive[name])
                continue
            if current is None:
                spike = self.spikes(name)
                current = torch.zeros(spike.shape, device=spike.device, dtype=self._float_dtype())
            cast(Any, pop)(current)
        if self.training:  # ages feed learning only (in eval mode trainers do nothing)
            for name, ages in self.ages.items():
                cast(SpikeAges, ages).observe(self.spikes(name))
        for trainer in self.trainers.values():
            cast(Any, trainer)()

    def _incoming(self, population: str) -> list[tuple[str, str]]:
        return [(c, pre) for c, (pre, post) in self.wiring.items() if post == population]

    def apply_updates(self) -> None:
        """Apply and clear the accumulated updates of every trained connection."""
        for conn in self.connections.values():
            if isinstance(conn, DenseConnection) and len(conn.updaters) > 0:
                conn.apply_updates()

    def after_batch(self) -> None:
        """Run the batch hooks (normalisation, clamps)."""
        for hook in self.batch_hooks:
            hook()

    def reset_state(self) -> None:
        """Back to rest between samples: voltages, refractory state, spikes in flight, ages."""
        for module in (*self.populations.values(), *self.connections.values(), *self.ages.values()):
            cast(Any, module).reset_state()

    def set_batch_size(self, batch_size: int) -> None:
        """Reallocate every per-sample state for ``batch_size`` samples (stacked: rows, R*B)."""
        if batch_size % self.replicas:
            raise ValueError(
                f"batch_size {batch_size} must be a multiple of the {self.replicas} replicas "
                "(it counts rows: replicas x samples)"
            )
        self.batch_size = int(batch_size)
        for module in (
            *self.populations.values(),
            *self.connections.values(),
            *self.ages.values(),
            *self.trainers.values(),
        ):
            if hasattr(module, "set_batch_size"):
                cast(Any, module).set_batch_size(batch_size)

    def plan_batch(self, steps: int, *, compiled: bool) -> None:
        """Tell the trainers the next batch runs ``steps`` steps from rest (path choice)."""
        for trainer in self.trainers.values():
            cast(Any, trainer).plan_batch(steps, compiled=compiled)

    def refresh_caches(self) -> None:
        """Rebuild stale trainer caches (host-side checks; call outside a compiled step)."""
        for trainer in self.trainers.values():
            cast(Any, trainer).refresh_caches()

    def spikes(self, population: str) -> Tensor:
        """The spikes ``[B, N]`` that ``population`` emitted in the last step."""
        spike = self.populations[population].spike
        assert isinstance(spike, Tensor)
        return spike
