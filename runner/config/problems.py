"""Helpers of the semantic checks (:mod:`runner.config.checks`, ``trainer_checks``): each
looks a name up or tests a value and appends one line per problem, ``<full.key>: <what is
wrong>``, to a list instead of raising, so that one pass reports every problem."""

from __future__ import annotations

import math
from typing import Any

from runner.registry import Registry, RegistryError


def _positive_name(key: str) -> bool:
    """Kwargs that must be > 0 whatever the factory: time constants, widths, rates."""
    return (
        "time_constant" in key
        or key.startswith(("tau", "tc_"))
        or key in ("width", "max_rate_hz", "frequency_hz")
    )


def check_positive_kwargs(where: str, kwargs: dict[str, Any], out: list[str]) -> None:
    for key, value in kwargs.items():
        if _positive_name(key) and isinstance(value, int | float) and not value > 0:
            out.append(f"{where}.{key}: must be > 0, got {value}")


def lookup(out: list[str], where: str, registry: Registry[Any], name: str) -> Any:
    """``registry.get(name)``, or None with a problem line at ``where``."""
    try:
        return registry.get(name)
    except RegistryError as exc:
        out.append(f"{where}: {exc}")
        return None


def traits_of(out: list[str], where: str, registry: Registry[Any], name: str) -> Any:
    """``registry.traits(name)`` (what the builder will read), or None with a problem line at
    ``where`` (an unknown name, or a plugin that declares no traits)."""
    if lookup(out, where, registry, name) is None:
        return None
    try:
        return registry.traits(name)
    except RegistryError as exc:
        out.append(f"{where}: {exc}")
        return None


def passes(out: list[str], where: str, check: Any, *args: Any, **kwargs: Any) -> bool:
    """Run a check that raises RegistryError; False (and a problem line) when it fails."""
    try:
        check(*args, **kwargs)
    except RegistryError as exc:
        out.append(f"{where}: {exc}")
        return False
    return True


def check_range(out: list[str], key: str, value: float | int | None, low: float, op: str) -> None:
    if value is None:
        return
    bad = not (value > low if op == ">" else value >= low) or (
        isinstance(value, float) and math.isnan(value)
    )
    if bad:
        out.append(f"{key}: must be {op} {low:g}, got {value}")
