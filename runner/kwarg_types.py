"""Config values against a callable's type hints: ``learning_rate=abc`` is caught at start-up.

The registries check kwarg *names* against a factory's signature; this module checks their
*values* against its annotations, as far as a config value can be judged: numbers, integers,
booleans, strings, None, lists, mappings and literals. A tensor parameter accepts a number or a
(nested) list, as the engine broadcasts those. Any annotation this module does not understand
(``Any``, a class, a type variable, an unresolvable string) accepts everything, so a plugin with
exotic hints is never rejected by mistake.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

#: Unknown: the annotation says nothing this module can check.
UNKNOWN = None


def _is_tensor(hint: Any) -> bool:
    return getattr(hint, "__name__", "") == "Tensor" and "torch" in getattr(hint, "__module__", "")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def accepts(hint: Any, value: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None when the hint cannot be judged."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        results = [accepts(arg, value) for arg in get_args(hint)]
        if any(r is True for r in results):
            return True
        return UNKNOWN if any(r is None for r in results) else False
    if origin is Literal:
        return value in get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if hint is float:
        return _number(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if _is_tensor(hint):
        return _number(value) or isinstance(value, list | tuple)
    if hint in (list, tuple) or origin in (list, tuple, Sequence):
        return isinstance(value, list | tuple)
    if hint is dict or origin in (dict, Mapping):
        return isinstance(value, Mapping)
    return UNKNOWN


def describe(hint: Any) -> str:
    """The hint in words for an error message: ``a number``, ``an integer or null``, ..."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        words = [describe(arg) for arg in get_args(hint)]
        return " or ".join(dict.fromkeys(w for w in words if w))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if hint is type(None) or hint is None:
        return "null"
    if hint is float or _is_tensor(hint):
        return "a number"
    names = {int: "an integer", bool: "true or false", str: "a string", dict: "a mapping"}
    if hint in names:
        return names[hint]
    if hint in (list, tuple) or origin in (list, tuple, Sequence):
        return "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    return ""


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``fn`` (of ``__init__`` for a class); {} when unresolvable."""
    target = fn.__init__ if isinstance(fn, type) else fn  # type: ignore[misc]
    try:
        return typing.get_type_hints(target)
    except Exception:  # forward references that do not resolve, builtins, C functions
        return {}


def type_problem(fn: Callable[..., Any], key: str, value: Any) -> str | None:
    """``"kwarg 'k' must be a number, got 'abc' (str)"``, or None when ``value`` fits (or
    the annotation of ``key`` cannot be judged)."""
    hint = type_hints(fn).get(key)
    if hint is None or accepts(hint, value) is not False:
        return None
    expected = describe(hint) or "another type"
    return f"kwarg {key!r} must be {expected}, got {value!r} ({type(value).__name__})"
