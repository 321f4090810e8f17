"""The :class:`Registry` type: a name -> factory table with lazy built-ins, plugins and traits.

A name resolves in this order:

1. a name registered in code (``REGISTRY.register(name, factory)`` or the decorator form), which
   includes the built-ins loaded lazily from the engine module (``runner.core.kernels.KERNELS``);
2. ``"package.module:attr"``, imported explicitly (a one-off user function, no packaging needed);
3. an entry point in the group ``stdp_run.<kind>`` of any installed distribution (plugins),
   loaded only when asked for.

Kwargs given in a config are checked against the factory's signature (:meth:`Registry.check_kwargs`)
so that a misspelled kwarg fails at start-up with a "did you mean", not in the middle of a run.
What an entry can do (its traits, :mod:`runner.traits`) is declared, never guessed
(:meth:`Registry.traits`). Every error is a :class:`RegistryError`, a one-line
``CompactHydraException``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from runner.names import RegistryError, check_call_kwargs, choices_text, did_you_mean, import_attr
from runner.traits import TRAITS_ATTR, declared

T = TypeVar("T")


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
        traits_of: the traits of a built-in object (None for one it does not know); objects
            that declare their own (:data:`runner.traits.TRAITS_ATTR`) or were registered with
            ``traits=`` need none.
        traits_hint: the traits class a plugin must declare (named in the error when it does not).
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
        traits_of: Callable[[Any], Any] | None = None,
        traits_hint: str = "",
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group or f"stdp_run.{kind}s"
        self.skip = tuple(skip)
        self.leading = leading
        self._builtins_loader = builtins
        self._signature_of = signature_of
        self._traits_of = traits_of
        self._traits_hint = traits_hint
        self._traits: dict[str, Any] = {}
        self._table: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._builtins_loaded = builtins is None
        self._builtins_error: str | None = None
        self._entry_points: dict[str, metadata.EntryPoint] | None = None

    # -- registration -------------------------------------------------------------------------
    def register(
        self, name: str, factory: T | None = None, *, replace: bool = False, traits: Any = None
    ) -> Any:
        """Register ``factory`` under ``name`` (with its ``traits``, if it does not declare
        them itself); without ``factory``, return a decorator."""
        if factory is None:

            def decorator(obj: T) -> T:
                self.register(name, obj, replace=replace, traits=traits)
                return obj

            return decorator
        self._load_builtins()
        if name in self._table and not replace and self._table[name] is not factory:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._table[name] = factory
        self._origin[name] = "registered"
        if traits is not None:
            self._traits[name] = traits
        else:
            self._traits.pop(name, None)
        return factory

    def unregister(self, name: str) -> None:
        """Remove a name registered in code (used by tests)."""
        self._table.pop(name, None)
        self._origin.pop(name, None)
        self._traits.pop(name, None)

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

    def traits(self, name: str) -> Any:
        """What ``name`` is and can do (:mod:`runner.traits`): given at registration, declared
        by the object itself, or known for a built-in.

        Raises:
            RegistryError: the name is unknown, or the object declares no traits.
        """
        obj = self.get(name)
        found = self._traits.get(name)
        if found is None:
            found = declared(obj)
        if found is None and self._traits_of is not None:
            found = self._traits_of(obj)
        if found is None:
            hint = f" = runner.traits.{self._traits_hint}(...)" if self._traits_hint else ""
            raise RegistryError(
                f"{self.kind} {name!r} declares no traits: set its {TRAITS_ATTR}{hint} "
                f"(see runner/traits.py)"
            )
        return found
