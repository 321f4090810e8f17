"""Typed engine specs: what the builder builds, as frozen dataclasses of plain values.

A spec is made once, from the validated :class:`~runner.config.schema.StdpRunConfig`
(:mod:`runner.spec_config`) or from a replay case's ``params_json`` (:mod:`runner.replay_case`),
and the same builders consume it (:mod:`runner.build`, :mod:`runner.rules`). Names stay registry
names here; the builders resolve them. No value is defaulted here: every default lives in the
schema (or, for a replay case, in ``shared/golden/FORMAT.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InitSpec:
    """Initial values: ``uniform`` (low, high), ``constant`` (value) or ``normal`` (mean, std);
    the fields a kind needs are set (validated)."""

    kind: str
    low: float | None = None
    high: float | None = None
    value: float | None = None
    mean: float | None = None
    std: float | None = None


@dataclass(frozen=True)
class BoundSpec:
    """One side of a parameter-dependent bound: a bounds registry name, its limit and kwargs."""

    fn: str
    limit: float
    kwargs: Mapping[str, float]


@dataclass(frozen=True)
class UpdaterSpec:
    """How a trained parameter's accumulated updates are combined, bounded and clamped."""

    accumulate: str
    upper: BoundSpec | None
    lower: BoundSpec | None
    clamp_min: float | None
    clamp_max: float | None


@dataclass(frozen=True)
class PopulationSpec:
    """A population: ``kind`` is ``input`` (driven by the task) or a neuron registry name."""

    name: str
    kind: str
    size: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ConnectionSpec:
    """A connection ``pre -> post`` of a connection registry ``kind``."""

    name: str
    kind: str
    pre: str
    post: str
    scale: float
    weight_init: InitSpec
    max_delay: float | None
    delay_init: InitSpec
    weight_updates: UpdaterSpec
    delay_updates: UpdaterSpec
    normalize: float | None  # L1 target of each neuron's incoming weights (None: none)


@dataclass(frozen=True)
class RuleSpec:
    """The settings of a learning rule for one cell (or a trainer's defaults)."""

    kernel_post: str
    kernel_post_kwargs: Mapping[str, Any]
    kernel_pre: str
    kernel_pre_kwargs: Mapping[str, Any]
    batch_reduction: str
    delayed: bool
    interp_tolerance: float


@dataclass(frozen=True)
class CellSpec:
    """One connection trained by a trainer, with the settings it trains it by."""

    connection: str
    rule: RuleSpec


@dataclass(frozen=True)
class TrainerSpec:
    """A learning rule (a trainer registry ``kind``), its defaults and its cells."""

    name: str
    kind: str
    defaults: RuleSpec
    cells: tuple[CellSpec, ...]


@dataclass(frozen=True)
class NetworkSpec:
    """Populations, connections and trainers, with the step length, batch size and seed."""

    dt: float
    batch_size: int
    seed: int
    populations: tuple[PopulationSpec, ...]
    connections: tuple[ConnectionSpec, ...]
    trainers: tuple[TrainerSpec, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """Images to encode: a datasets registry ``source`` and how to hold out and binarize."""

    source: str
    root: str | None
    holdout: str
    binarize: float | None


@dataclass(frozen=True)
class ReadoutSpec:
    """Class readout from the spike counts of ``population``."""

    population: str
    n_classes: int
    assign_from: str
    assign_samples: int | None


@dataclass(frozen=True)
class TaskSpec:
    """The input and the measurement: a stimulus registry ``stimulus`` with its ``params``."""

    stimulus: str
    params: Mapping[str, Any]
    dataset: DatasetSpec | None
    readout: ReadoutSpec | None
    dt: float
    seed: int
    steps_per_sample: int
    batch_size: int
    n_train: int | None
    n_eval: int
    n_test: int | None
    eval_batch_size: int | None  # None: automatic for the device (runner.build_task)
    eval_every: int
    monitor_samples: int


@dataclass(frozen=True)
class PlanSpec:
    """The loop: epochs, when updates apply and metrics are read, whether to compile."""

    epochs: int
    steps_per_sample: int
    n_train: int | None
    n_eval: int
    update_every: int
    log_every: int
    eval_every: int
    compile: str  # auto | true | false


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything :func:`runner.build.build_experiment` builds."""

    network: NetworkSpec
    task: TaskSpec
    plan: PlanSpec
