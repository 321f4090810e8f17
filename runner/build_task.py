"""TaskSpec -> the task that drives the network and measures it, by the stimulus's task kind.

Which builder runs is what the stimulus declares (:class:`runner.traits.StimulusTraits`), so a
plugin stimulus that validates is built the same way as the built-in of its kind.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from runner import registry
from runner.config.schema import DatasetConf
from runner.core.dense import DenseConnection
from runner.core.network import Network
from runner.loop import Task
from runner.spec import TaskSpec
from runner.spec_config import dataset_spec
from runner.tasks import ImageTask, PatternTask, SpikeTrainTask
from runner.traits import StimulusTraits

#: batch of the learning-free phases when ``run.eval_batch_size`` is null (large enough that a
#: step's fixed overhead is shared by many samples, small enough for the encoded input)
EVAL_BATCH = {"cpu": 128, "cuda": 1000}


def eval_batch_size(spec: TaskSpec, device: torch.device) -> int:
    """``run.eval_batch_size``, or the automatic size for ``device`` (never below the batch)."""
    if spec.eval_batch_size is not None:
        return spec.eval_batch_size
    return max(spec.batch_size, EVAL_BATCH.get(device.type, 128))


def image_task(
    spec: TaskSpec, network: Network, factory: Any, *, device: torch.device, dtype: torch.dtype
) -> Task:
    """Rate-coded images of ``spec.dataset`` and a max-rate readout."""
    dataset = spec.dataset or dataset_spec(DatasetConf())  # none given: the schema's default
    load = registry.DATASETS.get(dataset.source)
    images, labels = load(root=dataset.root)
    test_images = test_labels = None
    if spec.n_test != 0:  # the data set's own test split (validated to exist)
        test_images, test_labels = load(root=dataset.root, split="test")
        if spec.n_test is not None:
            test_images, test_labels = test_images[: spec.n_test], test_labels[: spec.n_test]
    if dataset.binarize is not None:  # black and white: no faint pixels firing rarely
        images = (images >= dataset.binarize).to(images.dtype)
        if test_images is not None:
            test_images = (test_images >= dataset.binarize).to(test_images.dtype)
    params, steps, dt = dict(spec.params), spec.steps_per_sample, spec.dt

    def encode(x: Tensor, gen: torch.Generator) -> Tensor:
        return factory(x.to(dtype), steps=steps, dt=dt, generator=gen, **params)

    readout = spec.readout
    return ImageTask(
        images=images,
        labels=labels,
        n_train=spec.n_train,
        n_eval=spec.n_eval,
        batch_size=spec.batch_size,
        encode=encode,
        input=network.driven[0],
        readout=None if readout is None else readout.population,
        n_classes=10 if readout is None else readout.n_classes,
        seed=spec.seed,
        holdout=dataset.holdout,
        test_images=test_images,
        test_labels=test_labels,
        eval_batch_size=eval_batch_size(spec, device),
        assign_from="training" if readout is None else readout.assign_from,
        assign_samples=None if readout is None else readout.assign_samples,
        monitor_samples=spec.monitor_samples if spec.eval_every else 0,
        device=device,
    )


def pattern_task(
    spec: TaskSpec, network: Network, factory: Any, *, device: torch.device, dtype: torch.dtype
) -> Task:
    """A pattern hidden in noise, detected by the output population."""
    gen = torch.Generator(device=device).manual_seed(spec.seed + 7919)
    source_in = network.driven[0]
    source = factory(
        network.populations[source_in].n, dt=spec.dt, generator=gen, device=device, **spec.params
    )
    if spec.readout is not None:
        output = spec.readout.population
    else:
        output = next(n for n in network.populations if n not in network.driven)
    link = _link(network, source_in, output)
    return PatternTask(
        source=source,
        n_train=int(spec.n_train or 1),
        n_eval=spec.n_eval,
        batch_size=spec.batch_size,
        steps=spec.steps_per_sample,
        dt=spec.dt,
        input=source_in,
        output=output,
        seed=spec.seed,
        device=device,
        connection=link[0] if link else None,
    )


def spike_train_task(
    spec: TaskSpec, network: Network, factory: Any, *, device: torch.device, dtype: torch.dtype
) -> Task:
    """Given spike trains: the first driven population gets ``pre``, a second one ``post``."""
    runtime = {"dt": spec.dt, "device": device}
    accepted = inspect.signature(factory).parameters
    made = factory(**{k: v for k, v in runtime.items() if k in accepted}, **spec.params)
    if isinstance(made, Mapping):
        pre, post = made["pre_spikes"], made.get("post_spikes")
    else:
        pre, post = made
    pre = pre.to(device)
    post = None if post is None else post.to(device)
    inputs = network.driven
    forced = inputs[1] if len(inputs) > 1 else None
    watch = tuple(n for n in network.populations if n not in network.driven)
    delta_t = spec.params.get("delta_t_ms")  # a pairing protocol's spacing, if it has one
    return SpikeTrainTask(
        pre=pre,
        post=post,
        input=inputs[0],
        output=forced,
        watch=watch,
        dt=spec.dt,
        measure=_link(network, inputs[0], forced) if forced else None,
        delta_t_ms=None if delta_t is None else float(delta_t),
    )


TaskBuilder = Callable[..., Task]
#: One builder per task kind (:data:`runner.traits.TaskKind`).
TASK_BUILDERS: dict[str, TaskBuilder] = {
    "image": image_task,
    "pattern": pattern_task,
    "spike_trains": spike_train_task,
}


def build_task(
    spec: TaskSpec, network: Network, *, device: torch.device, dtype: torch.dtype
) -> Task:
    """The input and measurement of the experiment, from the stimulus's declared task kind."""
    if not network.driven:
        raise ValueError("network: no population of kind 'input' for the stimulus to drive")
    traits: StimulusTraits = registry.STIMULI.traits(spec.stimulus)
    factory = registry.STIMULI.get(spec.stimulus)
    return TASK_BUILDERS[traits.task](spec, network, factory, device=device, dtype=dtype)


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
