"""Learning rules and updaters from specs: the code a run and ``stdp-run replay`` share.

A trainer's kwargs come from its :class:`~runner.spec.RuleSpec` and its registry traits
(:class:`~runner.traits.TrainerTraits`: only a rule that declares ``takes_delayed`` gets the
``delayed`` and ``interp_tolerance`` settings); an updater's accumulation, bounds and clamps
from an :class:`~runner.spec.UpdaterSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from runner.core.updater import Bound
from runner.spec import BoundSpec, InitSpec, RuleSpec, TrainerSpec, UpdaterSpec
from runner.traits import TrainerTraits, kernel_trainer_traits


@dataclass(frozen=True)
class Names:
    """Where a spec's names resolve: :func:`registry_names` for a run (plugins, ``module:attr``),
    :func:`builtin_names` for a replay case (a data file never imports code, and the replay
    process stays free of the config stack)."""

    kernel: Callable[[str], Any]
    reduction: Callable[[str], Any]
    trainer: Callable[[str], Any]
    trainer_traits: Callable[[str], TrainerTraits]


def registry_names() -> Names:
    """Names through :mod:`runner.registry`."""
    from runner import registry

    return Names(
        registry.KERNELS.get,
        registry.REDUCTIONS.get,
        registry.TRAINERS.get,
        registry.TRAINERS.traits,
    )


def builtin_names() -> Names:
    """The engine's built-in tables only."""
    from runner.core.kernels import KERNELS
    from runner.core.reductions import REDUCTIONS
    from runner.core.trainers import TRAINERS

    def traits(kind: str) -> TrainerTraits:
        found = kernel_trainer_traits(TRAINERS[kind])
        assert found is not None  # every built-in trainer is a KernelTrainer
        return found

    return Names(KERNELS.__getitem__, REDUCTIONS.__getitem__, TRAINERS.__getitem__, traits)


def initial_values(init: InitSpec, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Initial parameter values (float64 on the CPU, so every device starts the same)."""
    if init.kind == "constant":
        return torch.full(shape, float(init.value or 0.0), dtype=torch.float64)
    if init.kind == "normal":
        out = torch.empty(shape, dtype=torch.float64)
        return out.normal_(float(init.mean or 0.0), float(init.std or 1.0), generator=gen)
    low, high = float(init.low or 0.0), float(init.high or 0.0)
    return torch.rand(shape, dtype=torch.float64, generator=gen) * (high - low) + low


def bound(spec: BoundSpec | None) -> Bound | None:
    """The engine's bound for one side (None: no bound)."""
    if spec is None:
        return None
    return Bound(spec.fn, float(spec.limit), {k: v for k, v in spec.kwargs.items()})


def configure_updater(connection: Any, param: str, spec: UpdaterSpec) -> None:
    """Accumulation, bounds and clamps of ``connection``'s trained ``param``."""
    connection.updater(param).configure(
        accumulate=spec.accumulate,
        upper=bound(spec.upper),
        lower=bound(spec.lower),
        clamp_min=spec.clamp_min,
        clamp_max=spec.clamp_max,
    )


def rule_kwargs(rule: RuleSpec, traits: TrainerTraits, names: Names) -> dict[str, Any]:
    """A rule's engine settings, its kernels and reduction resolved by ``names``."""
    out: dict[str, Any] = {
        "kernel_post": names.kernel(rule.kernel_post),
        "kernel_post_kwargs": dict(rule.kernel_post_kwargs),
        "kernel_pre": names.kernel(rule.kernel_pre),
        "kernel_pre_kwargs": dict(rule.kernel_pre_kwargs),
        "batch_reduction": names.reduction(rule.batch_reduction),
    }
    if traits.takes_delayed:
        out.update(delayed=rule.delayed, interp_tolerance=rule.interp_tolerance)
    return out


def build_trainer(spec: TrainerSpec, names: Names) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A trainer with its defaults, and each cell's settings as engine overrides, by connection
    name (for ``register_cell`` / ``Network.add_trainer``)."""
    traits = names.trainer_traits(spec.kind)
    trainer = names.trainer(spec.kind)(**rule_kwargs(spec.defaults, traits, names))
    cells = {cell.connection: rule_kwargs(cell.rule, traits, names) for cell in spec.cells}
    return trainer, cells
