"""The objective: the one number a run hands back to its sweeper (Optuna, Nevergrad, ...).

``objective.metric`` names a final metric (the ``metrics`` of ``summary.json``) and
``objective.direction`` says whether larger (``maximize``) or smaller (``minimize``) is better.
The Hydra task returns that number, so any sweeper that optimises a float works; the run folder
still gets the full summary.

A search must not stop at one bad trial: a run that diverges (non-finite weights) or ends with a
non-finite objective returns :func:`worst` for its direction, which an optimiser ranks last. A
run that fails otherwise (an invalid sampled value) raises, and the sweeper counts it against
its ``max_failure_rate``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from runner.config.errors import ConfigError
from runner.config.schema import Direction, ObjectiveConf, StdpRunConfig
from runner.registry import STIMULI, RegistryError, choices_text, did_you_mean

log = logging.getLogger("runner")

#: The final metrics of each task, as their ``end_phase`` names them.
IMAGE_METRICS = (
    "accuracy",
    "accuracy_ttfs",
    "test_accuracy",
    "test_accuracy_ttfs",
    "train_accuracy",
    "val_accuracy",
    "samples",
)
_DETECTION = ("hit_rate", "false_alarms_per_s", "latency_ms", "presentations")
PATTERN_METRICS = (
    *_DETECTION,
    *(f"train_{name}" for name in _DETECTION),
    "train_presentations_to_detect",
    "n_selected",
    "arrival_std_start_ms",
    "arrival_std_end_ms",
    "delay_mean_start_ms",
    "delay_mean_end_ms",
)
PAIRING_METRICS = (
    "delta_w",
    "expected_delta_w",
    "contributing_steps",
    "cross_terms",
    "window",
    "kernel",
    "window_rel_error",
)
#: Throughput, added to every task's metrics by the loop (``LoopState.throughput``).
LOOP_METRICS = ("compile_s", "train_steps_per_s", "train_samples_per_s", "eval_samples_per_s")

#: By task kind (the ``task`` a stimulus declares: :class:`runner.traits.StimulusTraits`).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "image": IMAGE_METRICS,
    "pattern": PATTERN_METRICS,
    "spike_trains": PAIRING_METRICS,
}

#: The sweeper of a plain ``-m`` grid: it ignores the objective.
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def metric_names(kind: str | None = None) -> list[str]:
    """The final metrics the task fed by stimulus ``kind`` can report (every task's when None
    or when the stimulus is not known)."""
    task = _task_kind(kind) if kind is not None else None
    if task is not None and task in TASK_METRICS:
        names: tuple[str, ...] = TASK_METRICS[task]
    else:
        names = tuple(dict.fromkeys(n for group in TASK_METRICS.values() for n in group))
    return [*names, *LOOP_METRICS]


def _task_kind(stimulus: str) -> str | None:
    try:
        return str(STIMULI.traits(stimulus).task)
    except RegistryError:  # reported by the stimulus check
        return None


def check_objective(cfg: StdpRunConfig, out: list[str], *, searching: bool = False) -> None:
    """Append a one-line problem when ``objective.metric`` can never be reported.

    Every config is checked against the metrics of all tasks (a misspelling fails at start-up);
    in a search, whose sweeper needs the number, against those of this experiment's task.
    """
    name = cfg.objective.metric
    kind = cfg.stimulus.kind if searching else None
    valid = metric_names(kind)
    if name not in valid:
        where = f" of a {kind!r} stimulus" if kind is not None else ""
        out.append(
            f"objective.metric: unknown metric {name!r}{where}{did_you_mean(name, valid)} "
            f"valid: {choices_text(valid)}"
        )


def worst(direction: Direction) -> float:
    """The value that ranks last: ``-inf`` when maximising, ``+inf`` when minimising."""
    return -math.inf if direction is Direction.maximize else math.inf


class ObjectiveError(ConfigError):
    """The objective metric is missing from a finished run's metrics (a one-line message)."""


def objective_value(
    metrics: Mapping[str, float], objective: ObjectiveConf, *, required: bool = False
) -> float:
    """The objective of a finished run; :func:`worst` for a non-finite value.

    Args:
        metrics: the run's final metrics.
        objective: ``objective`` of the typed config (metric and direction).
        required: a sweeper needs the number: a missing metric raises :class:`ObjectiveError`
            (otherwise it gives NaN, which plain runs and grid sweeps ignore).
    """
    name = objective.metric
    if name not in metrics:
        if not required:
            return math.nan
        have = list(metrics)
        raise ObjectiveError(
            f"objective.metric: this run has no metric {name!r}{did_you_mean(name, have)} "
            f"its metrics: {choices_text(have)}"
        )
    value = float(metrics[name])
    return value if math.isfinite(value) else worst(objective.direction)


def objective_of(cfg: Any) -> ObjectiveConf | None:
    """``cfg.objective`` of a composed config, typed (None where the config cannot give it:
    validation says why)."""
    from omegaconf import OmegaConf

    try:
        node = OmegaConf.to_object(cfg.objective)
    except Exception:
        return None
    return node if isinstance(node, ObjectiveConf) else None


def worst_trial(objective: ObjectiveConf) -> float:
    """The worst objective, for a failed trial of a search (which then goes on)."""
    value = worst(objective.direction)
    log.warning("the trial failed: the search gets the worst objective (%s) and goes on", value)
    return value
