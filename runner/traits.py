"""What a registered component is and can do, declared once so that validation and the builder
read the same facts (no kind-name comparisons, no guesses from attributes).

A built-in's traits are in :mod:`runner.registry`; a plugin (``module:attr`` or entry point)
declares its own as an attribute of the registered object::

    from runner.traits import TRAITS_ATTR, ConnectionTraits
    MyConnection.stdp_run_traits = ConnectionTraits(weight="square")

or passes them to ``REGISTRY.register(name, factory, traits=...)``. Kernels, reductions, bounds,
data sets and logger backends need none: their signatures say everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The attribute of a registered object that holds its traits.
TRAITS_ATTR = "stdp_run_traits"

#: How a connection's weights are laid out: ``matrix`` ``[O, I]`` (factory takes ``n_in, n_out``),
#: ``square`` ``[N, N]`` or ``vector`` ``[N]`` (factory takes ``n``; pre and post sizes equal).
WeightLayout = Literal["matrix", "square", "vector"]
#: The task a stimulus feeds: rate-coded images, a pattern hidden in noise, or fixed spike trains.
TaskKind = Literal["image", "pattern", "spike_trains"]


@dataclass(frozen=True)
class ConnectionTraits:
    """A connection kind: its weight layout, whether trainers can train it (it tracks
    presynaptic spike ages: ``track_pre_ages`` and the rest of ``DenseConnection``'s learning
    interface), and whether it takes ``max_delay``/``delay`` (learned delays)."""

    weight: WeightLayout
    trainable: bool = False
    delays: bool = False

    @property
    def equal_sizes(self) -> bool:
        """Whether pre and post populations must have the same size (one ``n``)."""
        return self.weight != "matrix"

    def weight_shape(self, n_in: int, n_out: int) -> tuple[int, ...]:
        """The shape of the weights between ``n_in`` inputs and ``n_out`` outputs."""
        return {"matrix": (n_out, n_in), "square": (n_out, n_out), "vector": (n_out,)}[self.weight]


@dataclass(frozen=True)
class TrainerTraits:
    """A learning rule: the parameter it trains, whether it reads learned delays (the
    connection then needs ``max_delay``), and whether it takes the ``delayed`` and
    ``interp_tolerance`` settings."""

    target: Literal["weight", "delay"] = "weight"
    needs_delays: bool = False
    takes_delayed: bool = False


@dataclass(frozen=True)
class StimulusTraits:
    """A stimulus: the task it feeds (:mod:`runner.build_task` has one builder per task).

    - ``image``: an encoder ``f(intensity [B, ...], *, steps, dt, generator, **params)`` returning
      spikes ``[T, B, N]``; the images come from ``stimulus.dataset``.
    - ``pattern``: a source ``f(n_afferents, *, dt, generator, device, **params)`` with
      ``sample(...)`` (:class:`runner.core.stimuli.PatternInNoise`).
    - ``spike_trains``: ``f(**params)`` (taking ``dt``/``device`` if its signature names them)
      returning ``(pre, post)`` or a mapping with ``pre_spikes`` and optional ``post_spikes``.
    """

    task: TaskKind


@dataclass(frozen=True)
class NeuronTraits:
    """A neuron model: ``driven`` populations emit the spikes the task imposes on them."""

    driven: bool = False


def kernel_trainer_traits(obj: Any) -> TrainerTraits | None:
    """A kernel trainer's traits, from the class attributes every ``KernelTrainer`` declares
    (``target``, ``needs_delays``, ``extra_defaults``); None for anything else."""
    from runner.core.trainers import KernelTrainer

    if not (isinstance(obj, type) and issubclass(obj, KernelTrainer)):
        return None
    return TrainerTraits(
        target="delay" if obj.target == "delay" else "weight",
        needs_delays=obj.needs_delays,
        takes_delayed="delayed" in obj.extra_defaults,
    )


def declared(obj: Any) -> Any:
    """The traits ``obj`` declares itself (None when it declares none)."""
    return getattr(obj, TRAITS_ATTR, None)
