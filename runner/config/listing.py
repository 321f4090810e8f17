"""``stdp-run list``: registry contents as rich tables (name, kwargs with defaults, origin, doc),
and the options of a config group with the first sentence of each file's header comment."""

from __future__ import annotations

import inspect
import re
from importlib import resources
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


def header_sentence(yaml_text: str) -> str:
    """The first sentence of a config file's header comment (``# @package`` lines, blank comment
    lines before it and indented example commands are skipped; a trailing colon is dropped)."""
    words: list[str] = []
    for line in yaml_text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if body.startswith("@package") or (not words and not body):
            continue
        if not body or line.startswith("#  "):  # end of the paragraph, or a command example
            break
        words.append(body)
    text = " ".join(words)
    match = re.match(r"(.+?\.)(\s|$)", text)
    return (match.group(1) if match else text).rstrip(":").strip()


def option_description(group: str, option: str, package: str = "runner.conf") -> str:
    """The header sentence of the packaged ``<group>/<option>.yaml``; "" when there is none (an
    option from a plugin or from a ``-cd`` folder)."""
    path = resources.files(package).joinpath(*group.split("/"), f"{option}.yaml")
    try:
        return header_sentence(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""


def option_lines(group: str, options: list[str]) -> list[str]:
    """``name  description`` lines (names padded to one column) for ``stdp-run list GROUP``."""
    width = max((len(o) for o in options), default=0)
    lines = []
    for option in options:
        description = option_description(group, option)
        lines.append(f"{option:<{width}}  {description}".rstrip() if description else option)
    return lines
