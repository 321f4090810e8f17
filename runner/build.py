"""Spec -> engine objects: the network, its learning rules, the task and the loop plan.

The config has been validated (:mod:`runner.config.validate`) and turned into a typed engine
spec (:mod:`runner.spec_config`) before it reaches the builders, so names resolve, kwargs fit
their factories and every default is the schema's; the builders only translate. What a
component can do is read from its registry traits (:mod:`runner.traits`), never from its name.
The engine never sees a config: everything is plain Python values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from runner import __version__, registry
from runner.build_task import EVAL_BATCH, build_task, eval_batch_size
from runner.compile_policy import CompileChoice, choose_compile, steps_per_call
from runner.compiled_step import step_cached
from runner.config.schema import StdpRunConfig
from runner.core.hooks import NormalizeL1
from runner.core.network import Network
from runner.core.neurons import ForcedPopulation
from runner.loop import LoopPlan, Task, trained_synapses
from runner.rules import build_trainer, configure_updater, initial_values, registry_names
from runner.spec import ConnectionSpec, ExperimentSpec, NetworkSpec, PlanSpec, PopulationSpec
from runner.spec_config import experiment_spec
from runner.traits import ConnectionTraits

__all__ = [
    "EVAL_BATCH",
    "Experiment",
    "build_experiment",
    "build_network",
    "build_task",
    "eval_batch_size",
    "initial_values",
]

log = logging.getLogger("runner.build")


@dataclass
class Experiment:
    network: Network
    task: Task
    plan: LoopPlan


def _population(spec: PopulationSpec, net: NetworkSpec, device: Any, dtype: Any) -> Any:
    factory = ForcedPopulation if spec.kind == "input" else registry.NEURONS.get(spec.kind)
    return factory(
        spec.size, dt=net.dt, batch_size=net.batch_size, device=device, dtype=dtype, **spec.params
    )


def _connection(
    spec: ConnectionSpec, sizes: dict[str, int], net: NetworkSpec, gen: torch.Generator, **dev: Any
) -> Any:
    """A connection of the layout its kind declares; initial values drawn from ``gen``."""
    traits: ConnectionTraits = registry.CONNECTIONS.traits(spec.kind)
    n_in, n_out = sizes[spec.pre], sizes[spec.post]
    weight = initial_values(spec.weight_init, traits.weight_shape(n_in, n_out), gen)
    extra: dict[str, Any] = {}
    if traits.delays:
        delay = None
        if spec.max_delay is not None:
            delay = initial_values(spec.delay_init, (n_out, n_in), gen).to(dev["dtype"])
        extra = {"delay": delay, "max_delay": spec.max_delay}
    sized = (n_in, n_out) if traits.weight == "matrix" else (n_out,)
    return registry.CONNECTIONS.get(spec.kind)(
        *sized,
        dt=net.dt,
        batch_size=net.batch_size,
        weight=weight.to(dev["dtype"]),
        scale=spec.scale,
        **extra,
        **dev,
    )


def build_network(spec: NetworkSpec, *, device: torch.device, dtype: torch.dtype) -> Network:
    """Populations, connections (with updaters and hooks) and trainers of a network spec."""
    gen = torch.Generator().manual_seed(spec.seed)
    network = Network(dt=spec.dt, batch_size=spec.batch_size)
    for pop in spec.populations:
        driven = pop.kind == "input" or registry.NEURONS.traits(pop.kind).driven
        network.add_population(pop.name, _population(pop, spec, device, dtype), driven=driven)
    sizes = {pop.name: pop.size for pop in spec.populations}
    for conn in spec.connections:
        made = _connection(conn, sizes, spec, gen, device=device, dtype=dtype)
        network.add_connection(conn.name, made, pre=conn.pre, post=conn.post)
    names = registry_names()
    for trainer_spec in spec.trainers:
        trainer, cells = build_trainer(trainer_spec, names)
        network.add_trainer(trainer_spec.name, trainer.to(device), cells)
    for conn in spec.connections:
        module: Any = network.connections[conn.name]
        trainable = registry.CONNECTIONS.traits(conn.kind).trainable
        for param, updates in (("weight", conn.weight_updates), ("delay", conn.delay_updates)):
            if trainable and param in module.updaters:  # a trainer trains it
                configure_updater(module, param, updates)
        if conn.normalize is not None:
            hook = NormalizeL1(module.weight, conn.normalize)
            hook()
            network.add_batch_hook(hook)
    return network


def train_steps(plan: PlanSpec, task: Task) -> int:
    """Training steps the run will simulate (all epochs)."""
    n_batches = getattr(task, "n_batches", None)
    batches = n_batches("train") if callable(n_batches) else int(plan.n_train or 1)
    return plan.epochs * batches * plan.steps_per_sample


def learns_delays(spec: NetworkSpec, network: Network) -> bool:
    """Whether a trained connection transmits through active delays."""
    modules: dict[str, Any] = dict(network.connections)
    return any(
        registry.CONNECTIONS.traits(conn.kind).delays
        and len(modules[conn.name].updaters) > 0
        and modules[conn.name].delays_active
        for conn in spec.connections
    )


def step_key(
    specs: Sequence[ExperimentSpec],
    *,
    steps_per_call: int,
    dtype: torch.dtype,
    device: torch.device,
) -> str:
    """A name for the compiled step of these networks (one, or the replicas of a group): a hash
    of what its graph depends on, the network specs (their numbers are constants of the graph;
    the seed aside, which draws only initial values), when updates apply, the steps per call,
    dtype, device and the versions of torch and stdp-run. ``run.compile=auto`` counts a warm
    compilation for a key that compiled before (:func:`runner.compiled_step.step_cached`)."""
    shapes = tuple(dataclasses.replace(s.network, seed=0) for s in specs)
    text = repr(
        (shapes, [s.plan.update_every for s in specs], steps_per_call, str(dtype), device.type,
         torch.__version__, __version__)
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def compile_choice(
    spec: ExperimentSpec, network: Network, task: Task, key: str | None = None
) -> CompileChoice:
    """``run.compile`` (auto|true|false) resolved for this network and run length (``key``: the
    step's :func:`step_key`, whose compilation is cheap when it compiled before)."""
    return choose_compile(
        spec.plan.compile,
        train_steps=train_steps(spec.plan, task),
        synapse_samples=trained_synapses(network),
        delays=learns_delays(spec.network, network),
        cached=step_cached(key),
    )


def chunk_steps(plan: PlanSpec, network: Network, task: Task) -> int:
    """Steps per compiled call for this run (:func:`runner.compile_policy.steps_per_call`)."""
    return steps_per_call(
        train_steps=train_steps(plan, task),
        steps_per_sample=plan.steps_per_sample,
        synapse_samples=trained_synapses(network),
        log_every=plan.log_every,
    )


def typed(cfg: DictConfig | StdpRunConfig) -> StdpRunConfig:
    """The typed config (a composed DictConfig is typed by the schema, as validation does)."""
    if isinstance(cfg, StdpRunConfig):
        return cfg
    from runner.config.validate import to_typed

    return to_typed(cfg)


def build_experiment(
    cfg: DictConfig | StdpRunConfig | ExperimentSpec, *, device: torch.device, dtype: torch.dtype
) -> Experiment:
    """Everything a run needs, built from a validated config (or its spec)."""
    spec = cfg if isinstance(cfg, ExperimentSpec) else experiment_spec(typed(cfg))
    network = build_network(spec.network, device=device, dtype=dtype)
    task = build_task(spec.task, network, device=device, dtype=dtype)
    steps = chunk_steps(spec.plan, network, task)
    key = step_key([spec], steps_per_call=steps, dtype=dtype, device=device)
    choice = compile_choice(spec, network, task, key)
    log.info("%s", choice.reason)
    phases = getattr(task, "eval_phases", None)  # tasks without the attribute: "eval" if n_eval
    plan = LoopPlan(
        epochs=spec.plan.epochs,
        update_every=spec.plan.update_every,
        log_every=spec.plan.log_every,
        eval_each_epoch=bool(phases) if phases is not None else spec.plan.n_eval > 0,
        compile=choice.compile,
        eval_every=spec.plan.eval_every,
        steps_per_call=steps if choice.compile else None,
        step_key=key if choice.compile else None,
    )
    return Experiment(network, task, plan)
