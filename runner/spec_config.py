"""The engine spec of a validated config: :class:`StdpRunConfig` -> :class:`ExperimentSpec`.

Every value is read from the typed config, so its defaults are the schema's
(:mod:`runner.config.schema`); a trainer's per-cell settings are merged by
:func:`runner.config.cells.cell_settings`, the function the validation checked.
"""

from __future__ import annotations

from typing import Any

from runner.config.cells import cell_settings
from runner.config.schema import (
    BoundConf,
    ConnectionConf,
    DatasetConf,
    InitConf,
    ParamBoundsConf,
    StdpRunConfig,
    TrainerConf,
    compile_mode,
)
from runner.spec import (
    BoundSpec,
    CellSpec,
    ConnectionSpec,
    DatasetSpec,
    ExperimentSpec,
    InitSpec,
    NetworkSpec,
    PlanSpec,
    PopulationSpec,
    ReadoutSpec,
    RuleSpec,
    TaskSpec,
    TrainerSpec,
    UpdaterSpec,
)


def init_spec(init: InitConf) -> InitSpec:
    return InitSpec(init.kind.value, init.low, init.high, init.value, init.mean, init.std)


def bound_spec(bound: BoundConf | None) -> BoundSpec | None:
    if bound is None:
        return None
    return BoundSpec(bound.fn, float(bound.limit), dict(bound.kwargs))


def updater_spec(bounds: ParamBoundsConf) -> UpdaterSpec:
    return UpdaterSpec(
        accumulate=bounds.accumulate.value,
        upper=bound_spec(bounds.upper),
        lower=bound_spec(bounds.lower),
        clamp_min=bounds.clamp_min,
        clamp_max=bounds.clamp_max,
    )


def dataset_spec(data: DatasetConf) -> DatasetSpec:
    return DatasetSpec(data.source, data.root, data.holdout.value, data.binarize)


def connection_spec(name: str, conn: ConnectionConf) -> ConnectionSpec:
    return ConnectionSpec(
        name=name,
        kind=conn.kind,
        pre=conn.pre,
        post=conn.post,
        scale=float(conn.scale),
        weight_init=init_spec(conn.weight_init),
        max_delay=conn.max_delay,
        delay_init=init_spec(conn.delay_init),
        weight_updates=updater_spec(conn.weight_bounds),
        delay_updates=updater_spec(conn.delay_bounds),
        normalize=None if conn.normalize is None else float(conn.normalize.target),
    )


def trainer_spec(name: str, trainer: TrainerConf) -> TrainerSpec:
    """A trainer's defaults and each cell's merged settings."""
    defaults = RuleSpec(
        kernel_post=trainer.kernel_post.name,
        kernel_post_kwargs=dict(trainer.kernel_post.kwargs),
        kernel_pre=trainer.kernel_pre.name,
        kernel_pre_kwargs=dict(trainer.kernel_pre.kwargs),
        batch_reduction=trainer.batch_reduction,
        delayed=trainer.delayed,
        interp_tolerance=float(trainer.interp_tolerance),
    )
    cells = tuple(CellSpec(conn, cell_settings(trainer, conn).rule()) for conn in trainer.cells)
    return TrainerSpec(name, trainer.kind, defaults, cells)


def network_spec(cfg: StdpRunConfig) -> NetworkSpec:
    net = cfg.network
    return NetworkSpec(
        dt=float(cfg.dt),
        batch_size=cfg.run.batch_size,
        seed=cfg.seed,
        populations=tuple(
            PopulationSpec(name, pop.kind, pop.size, dict(pop.params))
            for name, pop in net.populations.items()
        ),
        connections=tuple(connection_spec(name, c) for name, c in net.connections.items()),
        trainers=tuple(trainer_spec(name, t) for name, t in cfg.trainer.items()),
    )


def task_spec(cfg: StdpRunConfig) -> TaskSpec:
    stim, run, readout = cfg.stimulus, cfg.run, cfg.readout
    data = stim.dataset
    return TaskSpec(
        stimulus=stim.kind,
        params=_plain(stim.params),
        dataset=None if data is None else dataset_spec(data),
        readout=None
        if readout is None
        else ReadoutSpec(
            readout.population,
            readout.n_classes,
            readout.assign_from.value,
            readout.assign_samples,
        ),
        dt=float(cfg.dt),
        seed=cfg.seed,
        steps_per_sample=run.steps_per_sample,
        batch_size=run.batch_size,
        n_train=run.n_train,
        n_eval=run.n_eval,
        n_test=run.n_test,
        eval_batch_size=run.eval_batch_size,
        eval_every=run.eval_every,
        monitor_samples=run.monitor_samples,
    )


def plan_spec(cfg: StdpRunConfig) -> PlanSpec:
    run = cfg.run
    return PlanSpec(
        epochs=run.epochs,
        steps_per_sample=run.steps_per_sample,
        n_train=run.n_train,
        n_eval=run.n_eval,
        update_every=run.update_every,
        log_every=run.log_every,
        eval_every=run.eval_every,
        compile=compile_mode(run.compile),
    )


def experiment_spec(cfg: StdpRunConfig) -> ExperimentSpec:
    """The spec of a validated config (:func:`runner.config.validate.validate_config`)."""
    return ExperimentSpec(network_spec(cfg), task_spec(cfg), plan_spec(cfg))


def _plain(value: Any) -> Any:
    """Free-form params as plain dicts and lists (they may hold nested containers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
