"""Keyword arguments against a factory's signature, and "did you mean" hints.

Free of Hydra (``stdp-run replay`` uses it): :func:`runner.names.check_call_kwargs` raises the
problem found here as a ``RegistryError``, the replay as its own one-line error.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any


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


def kwargs_problem(
    label: str,
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    skip: Iterable[str] = (),
    leading: int = 0,
) -> str | None:
    """The first problem of ``kwargs`` against the signature of ``fn`` (None: they fit).

    Args:
        label: how the callable is named in messages, e.g. ``"kernel 'exp_stdp_post'"``.
        fn: the factory or function.
        kwargs: the keyword arguments a config gives.
        skip: parameters the runner supplies itself (they must not appear in ``kwargs``).
        leading: number of leading positional parameters the runner supplies (e.g. ``diff``).

    Returns:
        One line naming an unknown kwarg (with did-you-mean), a runner-supplied one, a missing
        required kwarg, or a value of the wrong type for its annotation
        (:mod:`runner.kwarg_types`). A ``**kwargs`` parameter accepts any name.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return None
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
            return f"{label}: kwarg {key!r} is set by stdp-run, remove it"
        if key not in accepted and not var_kw:
            return (
                f"{label}: unknown kwarg {key!r}{did_you_mean(key, accepted)} "
                f"valid: {choices_text(accepted)}"
            )
    missing = [
        p.name
        for p in named
        if p.default is inspect.Parameter.empty and p.name not in supplied and p.name not in kwargs
    ]
    if missing:
        return f"{label}: missing required kwarg(s) {', '.join(map(repr, missing))}"
    from runner.kwarg_types import type_problem

    for key, value in kwargs.items():
        problem = type_problem(fn, key, value)
        if problem is not None:
            return f"{label}: {problem}"
    return None
