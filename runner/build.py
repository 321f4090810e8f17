"""Config -> engine objects: the network, its learning rules and the task that drives it.

The config has been validated (:mod:`runner.config.validate`) before it reaches this module, so
names resolve and kwargs fit their factories; this module only translates. The engine never sees
a DictConfig: everything is turned into plain Python values first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from runner import registry
from runner.compile_policy import CompileChoice, choose_compile, steps_per_call
from runner.config.cells import cell_settings
from runner.config.schema import TrainerConf, compile_mode
from runner.core.dense import DenseConnection
from runner.core.hooks import NormalizeL1
from runner.core.network import Network
from runner.core.neurons import ForcedPopulation
from runner.core.updater import Bound
from runner.loop import LoopPlan, Task, trained_synapses
from runner.tasks import ImageTask, PatternTask, SpikeTrainTask

log = logging.getLogger("runner.build")


@dataclass
class Experiment:
    network: Network
    task: Task
    plan: LoopPlan


def plain(node: Any) -> Any:
    """A DictConfig/ListConfig as plain Python containers (enums as their values)."""
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return node


def initial_values(spec: dict[str, Any], shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Initial parameter values (float64 on the CPU, so every device starts the same)."""
    kind = spec.get("kind", "uniform")
    if kind == "constant":
        return torch.full(shape, float(spec.get("value") or 0.0), dtype=torch.float64)
    if kind == "normal":
        out = torch.empty(shape, dtype=torch.float64)
        return out.normal_(
            float(spec.get("mean") or 0.0), float(spec.get("std") or 1.0), generator=gen
        )
    low, high = float(spec.get("low") or 0.0), float(spec.get("high") or 0.0)
    return torch.rand(shape, dtype=torch.float64, generator=gen) * (high - low) + low


def _bound(spec: dict[str, Any] | None) -> Bound | None:
    if not spec:
        return None
    return Bound(spec["fn"], float(spec["limit"]), dict(spec.get("kwargs") or {}))


def build_network(cfg: DictConfig, *, device: torch.device, dtype: torch.dtype) -> Network:
    """Populations, connections (with bounds and hooks) and trainers from the config."""
    net_cfg, dt, batch = plain(cfg.network), float(cfg.dt), int(cfg.run.batch_size)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    network = Network(dt=dt, batch_size=batch)
    for name, pop in net_cfg["populations"].items():
        if pop["kind"] in ("input", "forced"):
            module: Any = ForcedPopulation(
                int(pop["size"]), batch_size=batch, dt=dt, device=device, dtype=dtype
            )
            network.add_population(name, module, driven=True)
        else:
            cls = registry.NEURONS.get(pop["kind"])
            module = cls(
                int(pop["size"]),
                dt=dt,
                batch_size=batch,
                device=device,
                dtype=dtype,
                **pop["params"],
            )
            network.add_population(name, module)
    sizes = {name: int(pop["size"]) for name, pop in net_cfg["populations"].items()}
    for name, conn in net_cfg["connections"].items():
        n_in, n_out = sizes[conn["pre"]], sizes[conn["post"]]
        kind = conn["kind"]
        if kind == "dense":
            weight = initial_values(conn["weight_init"], (n_out, n_in), gen)
            max_delay = conn.get("max_delay")
            delay = (
                initial_values(conn["delay_init"], (n_out, n_in), gen)
                if max_delay is not None
                else None
            )
            module = DenseConnection(
                n_in,
                n_out,
                dt=dt,
                batch_size=batch,
                weight=weight.to(dtype),
                delay=None if delay is None else delay.to(dtype),
                max_delay=max_delay,
                scale=float(conn["scale"]),
                device=device,
                dtype=dtype,
            )
        else:
            shape = (n_out, n_in) if kind == "lateral" else (n_out,)
            weight = initial_values(conn["weight_init"], shape, gen).to(dtype)
            cls = registry.CONNECTIONS.get(kind)
            module = cls(
                n_out,
                dt=dt,
                batch_size=batch,
                weight=weight,
                scale=float(conn["scale"]),
                device=device,
                dtype=dtype,
            )
        network.add_connection(name, module, pre=conn["pre"], post=conn["post"])
    for name in cfg.trainer:
        trainer_cfg = OmegaConf.to_object(cfg.trainer[name])
        assert isinstance(trainer_cfg, TrainerConf)
        trainer, cells = build_trainer(trainer_cfg)
        network.add_trainer(name, trainer.to(device), cells)
    for name, conn in net_cfg["connections"].items():
        module = network.connections[name]
        if isinstance(module, DenseConnection):
            for param in ("weight", "delay"):
                if param in module.updaters:
                    bounds = conn[f"{param}_bounds"]
                    module.updater(param).configure(
                        accumulate=bounds.get("accumulate", "sum"),
                        upper=_bound(bounds.get("upper")),
                        lower=_bound(bounds.get("lower")),
                        clamp_min=bounds.get("clamp_min"),
                        clamp_max=bounds.get("clamp_max"),
                    )
        if conn.get("normalize"):
            hook = NormalizeL1(module.weight, float(conn["normalize"]["target"]))
            hook()
            network.add_batch_hook(hook)
    return network


def build_trainer(spec: TrainerConf) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A trainer with its defaults, and each cell's resolved settings as engine overrides.

    The per-cell merge is :func:`runner.config.cells.cell_settings`, the same one the
    validation checked.
    """
    cls = registry.TRAINERS.get(spec.kind)
    takes_delay_view = "delayed" in getattr(cls, "extra_defaults", {})
    trainer = cls(
        kernel_post=registry.KERNELS.get(spec.kernel_post.name),
        kernel_pre=registry.KERNELS.get(spec.kernel_pre.name),
        kernel_post_kwargs=dict(spec.kernel_post.kwargs),
        kernel_pre_kwargs=dict(spec.kernel_pre.kwargs),
        batch_reduction=registry.REDUCTIONS.get(spec.batch_reduction),
        **(
            {"delayed": spec.delayed, "interp_tolerance": spec.interp_tolerance}
            if takes_delay_view
            else {}
        ),
    )
    cells: dict[str, dict[str, Any]] = {}
    for conn_name in spec.cells:
        cell = cell_settings(spec, conn_name)
        engine: dict[str, Any] = {
            "kernel_post": registry.KERNELS.get(cell.kernel_post),
            "kernel_post_kwargs": cell.kernel_post_kwargs,
            "kernel_pre": registry.KERNELS.get(cell.kernel_pre),
            "kernel_pre_kwargs": cell.kernel_pre_kwargs,
            "batch_reduction": registry.REDUCTIONS.get(cell.batch_reduction),
        }
        if takes_delay_view:
            engine.update(delayed=cell.delayed, interp_tolerance=cell.interp_tolerance)
        cells[conn_name] = engine
    return trainer, cells


def build_task(
    cfg: DictConfig, network: Network, *, device: torch.device, dtype: torch.dtype
) -> Task:
    """The input and measurement of the experiment, from ``stimulus`` (and ``readout``)."""
    stim = plain(cfg.stimulus)
    run = cfg.run
    dt, seed, steps, batch = (
        float(cfg.dt),
        int(cfg.seed),
        int(run.steps_per_sample),
        int(run.batch_size),
    )
    inputs = [name for name in network.driven]
    if not inputs:
        raise ValueError("network: no population of kind 'input' for the stimulus to drive")
    kind = stim["kind"]
    params = dict(stim.get("params") or {})
    if kind in ("poisson", "bernoulli"):
        dataset = stim.get("dataset") or {"source": "sklearn"}
        load = registry.DATASETS.get(dataset["source"])
        images, labels = load(root=dataset.get("root"))
        test_images = test_labels = None
        n_test = run.get("n_test", 0)
        if n_test != 0:  # the data set's own test split (validated to exist)
            test_images, test_labels = load(root=dataset.get("root"), split="test")
            if n_test is not None:
                test_images, test_labels = test_images[: int(n_test)], test_labels[: int(n_test)]
        threshold = dataset.get("binarize")
        if threshold is not None:  # black and white: no faint pixels firing rarely
            images = (images >= threshold).to(images.dtype)
            if test_images is not None:
                test_images = (test_images >= threshold).to(test_images.dtype)
        encoder = registry.STIMULI.get(kind)

        def encode(x: Tensor, gen: torch.Generator) -> Tensor:
            return encoder(x.to(dtype), steps=steps, dt=dt, generator=gen, **params)

        readout = plain(cfg.get("readout")) or {}
        return ImageTask(
            images=images,
            labels=labels,
            n_train=run.n_train,
            n_eval=int(run.n_eval),
            batch_size=batch,
            encode=encode,
            input=inputs[0],
            readout=readout.get("population"),
            n_classes=int(readout.get("n_classes", 10)),
            seed=seed,
            holdout=str(dataset.get("holdout", "random")),
            test_images=test_images,
            test_labels=test_labels,
            eval_batch_size=eval_batch_size(cfg, device),
            assign_from=str(readout.get("assign_from", "training")),
            assign_samples=readout.get("assign_samples"),
            monitor_samples=int(run.monitor_samples) if int(run.get("eval_every", 0)) else 0,
            device=device,
        )
    if kind == "pattern":
        gen = torch.Generator(device=device).manual_seed(seed + 7919)
        source = registry.STIMULI.get("pattern")(
            network.populations[inputs[0]].n, dt=dt, generator=gen, device=device, **params
        )
        output = _output_population(cfg, network)
        link = _link(network, inputs[0], output)
        return PatternTask(
            source=source,
            n_train=int(run.n_train or 1),
            n_eval=int(run.n_eval),
            batch_size=batch,
            steps=steps,
            dt=dt,
            input=inputs[0],
            output=output,
            seed=seed,
            device=device,
            connection=link[0] if link else None,
        )
    if kind in ("pairing", "npz"):
        if kind == "pairing":
            pre, post = registry.STIMULI.get("pairing")(dt=dt, **params)
            pre, post = pre.to(device), post.to(device)
        else:
            trains = registry.STIMULI.get("npz")(device=device, **params)
            pre, post = trains["pre_spikes"], trains.get("post_spikes")
        forced = inputs[1] if len(inputs) > 1 else None
        watch = tuple(n for n in network.populations if n not in network.driven)
        measure = _link(network, inputs[0], forced) if forced else None
        delta_t = params.get("delta_t_ms") if kind == "pairing" else None
        return SpikeTrainTask(
            pre=pre,
            post=post,
            input=inputs[0],
            output=forced,
            watch=watch,
            dt=dt,
            measure=measure,
            delta_t_ms=None if delta_t is None else float(delta_t),
        )
    raise ValueError(f"stimulus.kind: no task for {kind!r}")


def _link(network: Network, pre: str, post: str) -> tuple[DenseConnection, Any] | None:
    """The dense connection ``pre -> post`` and the trainer cell training its weights, if any."""
    for name, (src, dst) in network.wiring.items():
        conn = network.connections[name]
        if (src, dst) != (pre, post) or not isinstance(conn, DenseConnection):
            continue
        for trainer in network.trainers.values():
            cells: Any = getattr(trainer, "cells", {})
            if getattr(trainer, "target", None) == "weight" and name in cells:
                return conn, cells[name]
        return conn, None
    return None


def _output_population(cfg: DictConfig, network: Network) -> str:
    readout = cfg.get("readout")
    if readout is not None:
        return str(readout.population)
    neurons = [n for n in network.populations if n not in network.driven]
    return neurons[0]


#: batch of the learning-free phases when ``run.eval_batch_size`` is null (large enough that a
#: step's fixed overhead is shared by many samples, small enough for the encoded input)
EVAL_BATCH = {"cpu": 128, "cuda": 1000}


def eval_batch_size(cfg: DictConfig, device: torch.device) -> int:
    """``run.eval_batch_size``, or the automatic size for ``device`` (never below the batch)."""
    size = cfg.run.get("eval_batch_size")
    if size is not None:
        return int(size)
    return max(int(cfg.run.batch_size), EVAL_BATCH.get(device.type, 128))


def train_steps(cfg: DictConfig, task: Task) -> int:
    """Training steps the run will simulate (all epochs)."""
    n_batches = getattr(task, "n_batches", None)
    batches = n_batches("train") if callable(n_batches) else int(cfg.run.n_train or 1)
    return int(cfg.run.epochs) * batches * int(cfg.run.steps_per_sample)


def compile_choice(cfg: DictConfig, network: Network, task: Task) -> CompileChoice:
    """``run.compile`` (auto|true|false) resolved for this network and run length."""
    return choose_compile(
        compile_mode(cfg.run.get("compile", "auto")),
        train_steps=train_steps(cfg, task),
        synapse_samples=trained_synapses(network),
        delays=any(
            isinstance(conn, DenseConnection) and len(conn.updaters) > 0 and conn.delays_active
            for conn in network.connections.values()
        ),
    )


def chunk_steps(cfg: DictConfig, network: Network, task: Task) -> int:
    """Steps per compiled call for this run (:func:`runner.compile_policy.steps_per_call`)."""
    return steps_per_call(
        train_steps=train_steps(cfg, task),
        steps_per_sample=int(cfg.run.steps_per_sample),
        synapse_samples=trained_synapses(network),
        log_every=int(cfg.run.log_every),
    )


def build_experiment(cfg: DictConfig, *, device: torch.device, dtype: torch.dtype) -> Experiment:
    """Everything a run needs, built from a validated config."""
    network = build_network(cfg, device=device, dtype=dtype)
    task = build_task(cfg, network, device=device, dtype=dtype)
    choice = compile_choice(cfg, network, task)
    log.info("%s", choice.reason)
    phases = getattr(task, "eval_phases", None)  # tasks without the attribute: "eval" if n_eval
    plan = LoopPlan(
        epochs=int(cfg.run.epochs),
        update_every=int(cfg.run.update_every),
        log_every=int(cfg.run.log_every),
        eval_each_epoch=bool(phases) if phases is not None else int(cfg.run.n_eval) > 0,
        compile=choice.compile,
        eval_every=int(cfg.run.get("eval_every", 0)),
        steps_per_call=chunk_steps(cfg, network, task) if choice.compile else None,
    )
    return Experiment(network, task, plan)
