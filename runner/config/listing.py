"""``stdp-run list``: registry contents as rich tables (name, kwargs with defaults, origin, doc)."""

from __future__ import annotations

import inspect
from typing import Any

from runner.registry import REGISTRIES, RegistryError

#: The registries ``stdp-run list`` knows, by the name users type.
REGISTRY_CHOICES = tuple(REGISTRIES)


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    parts = []
    for name, default in kwargs.items():
        parts.append(f"{name} (required)" if default is ... else f"{name}={default!r}")
    return ", ".join(parts)


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def registry_rows(what: str) -> list[tuple[str, str, str, str]]:
    """``(name, kwargs, origin, description)`` for every entry of registry ``what``."""
    reg = REGISTRIES[what]
    rows = []
    for name in reg.names():
        try:
            fn = reg.callable_of(name)
            # trainers take their optional settings through **extra (e.g. KernelSTDP's delayed)
            kwargs = _kwargs_text({**reg.kwargs_of(name), **getattr(fn, "extra_defaults", {})})
            doc = _doc(fn)
        except (RegistryError, TypeError, ValueError) as exc:
            kwargs, doc = "", f"unavailable: {exc}"
        rows.append((name, kwargs, reg.origin(name), doc))
    return rows


def registry_table(what: str, *, names_only: bool = False) -> Any:
    """A rich Table of registry ``what`` (or just its names)."""
    if names_only:
        return REGISTRIES[what].names()
    from rich.table import Table

    table = Table(title=what)
    for col in ("name", "kwargs", "origin", "description"):
        table.add_column(col, overflow="fold")
    for row in registry_rows(what):
        table.add_row(*row)
    return table
