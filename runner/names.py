"""What the registries share: the one-line :class:`RegistryError`, "did you mean" hints,
kwargs checked against a factory's signature, and ``module:attr`` imports (also from the working
directory)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hydra.errors import CompactHydraException

from runner.signatures import choices_text, did_you_mean, kwargs_problem

__all__ = [
    "RegistryError",
    "check_call_kwargs",
    "choices_text",
    "did_you_mean",
    "import_attr",
    "import_module_or_from_cwd",
]


class RegistryError(CompactHydraException):
    """An unknown name or a bad kwarg of a registered factory (a one-line user error)."""


def check_call_kwargs(
    label: str,
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    skip: Iterable[str] = (),
    leading: int = 0,
) -> None:
    """Check ``kwargs`` against the signature of ``fn`` (:func:`runner.signatures.kwargs_problem`:
    ``label`` names the callable, ``skip`` and ``leading`` are what the runner supplies).

    Raises:
        RegistryError: the problem found, one line.
    """
    problem = kwargs_problem(label, fn, kwargs, skip=skip, leading=leading)
    if problem is not None:
        raise RegistryError(problem)


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
