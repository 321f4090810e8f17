"""Composing configs outside a run (``show``, ``validate``, ``list``, tests) with the Compose API.

:func:`expand_cases` turns overrides that sweep (``seed=0,1``) and a config's own
``hydra.sweeper.params`` into the list of single-job override lists, so that ``stdp-run validate``
checks every job of a sweep, as the basic sweeper would run them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.config.errors import ConfigError

CONFIG_MODULE = "runner.conf"
CONFIG_NAME = "config"
#: Safety cap on the number of expanded jobs checked by ``validate``.
MAX_CASES = 512


class TooManyJobs(ConfigError):
    """A sweep with more jobs than :func:`expand_cases` was asked to expand."""


@contextmanager
def hydra_context() -> Iterator[None]:
    """Initialise Hydra on the packaged configs (clearing any previous global state)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    import runner.config.schema  # noqa: F401  (registers the schema)

    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        yield


def compose(overrides: Sequence[str] = (), *, with_hydra: bool = False) -> DictConfig:
    """The composed config for ``overrides`` (with the ``hydra`` node if ``with_hydra``).

    Hydra rejects some malformed overrides with a plain ``ValueError`` or ``TypeError``; they
    leave here as :class:`~runner.config.errors.OverrideError` (a user error): nothing else
    runs inside the Compose API that could raise those (OmegaConf raises its own types).
    """
    from hydra import compose as hydra_compose

    from runner.config.errors import OverrideError

    with hydra_context():
        try:
            return hydra_compose(
                CONFIG_NAME, overrides=list(overrides), return_hydra_config=with_hydra
            )
        except (ValueError, TypeError) as exc:  # Hydra's for a malformed override (device=1)
            raise OverrideError(str(exc)) from exc


def group_options(group: str) -> list[str]:
    """The options of a config group (``experiment``, ``hydra/launcher``, ...)."""
    from hydra.core.global_hydra import GlobalHydra

    from runner.config.errors import ConfigError
    from runner.registry import choices_text, did_you_mean

    with hydra_context():
        loader = GlobalHydra.instance().config_loader()
        options = loader.get_group_options(group)
        if not options:
            groups = sorted(_all_groups(loader))
            raise ConfigError(
                f"list: unknown config group {group!r}{did_you_mean(group, groups)} "
                f"valid: {choices_text(groups)}"
            )
        return list(options)


def _all_groups(loader: object, parent: str = "") -> list[str]:
    from hydra.core.object_type import ObjectType

    out: list[str] = []
    for name in loader.list_groups(parent):  # type: ignore[attr-defined]
        path = f"{parent}/{name}" if parent else name
        if loader.get_group_options(path, results_filter=ObjectType.CONFIG):  # type: ignore[attr-defined]
            out.append(path)
        out += _all_groups(loader, path)
    return out


def list_groups() -> dict[str, list[str]]:
    """Every config group with its options (hydra's own groups included)."""
    from hydra.core.global_hydra import GlobalHydra

    with hydra_context():
        loader = GlobalHydra.instance().config_loader()
        return {g: list(loader.get_group_options(g)) for g in sorted(_all_groups(loader))}


def _interval_values(key: str, sweep: Any, notes: list[str]) -> list[str]:
    """Both ends and the middle of an ``interval`` (geometric with the ``log`` tag), noted."""
    import math

    lo, hi = float(sweep.start), float(sweep.end)
    log_scale = "log" in sweep.tags and lo > 0 and hi > 0
    mid = math.sqrt(lo * hi) if log_scale else (lo + hi) / 2
    notes.append(
        f"{key}=interval({lo:g},{hi:g}): checked at {lo:g}, {mid:g} and {hi:g}; a sampling "
        "sweeper may pick any value in between"
    )
    return [f"{key}={v!r}" for v in (lo, mid, hi)]


def _sweep_lines(
    lines: Sequence[str], notes: list[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Split override lines into plain ones and, per sweep override, its single-value lines.

    ``choice``, ``range``, ``glob`` and comma lists give every value; an ``interval`` gives its
    ends and middle, with a line in ``notes`` saying so.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    with hydra_context():
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        plain: list[str] = []
        sweeps: list[list[str]] = []
        for line, override in zip(lines, parser.parse_overrides(list(lines)), strict=True):
            if not override.is_sweep_override():
                plain.append(line)
                continue
            key = override.get_key_element()
            if isinstance(override.value(), IntervalSweep):
                sweeps.append(
                    _interval_values(key, override.value(), [] if notes is None else notes)
                )
            else:
                sweeps.append([f"{key}={v}" for v in override.sweep_string_iterator()])
    return plain, sweeps


def _product(plain: list[str], sweeps: list[list[str]]) -> list[list[str]]:
    return [[*plain, *combo] for combo in itertools.product(*sweeps)] if sweeps else [plain]


def expand_cases(
    overrides: Sequence[str],
    *,
    every_experiment: bool = False,
    notes: list[str] | None = None,
    limit: int | None = MAX_CASES,
    composed: dict[tuple[str, ...], DictConfig] | None = None,
) -> list[list[str]]:
    """Single-job override lists for ``overrides`` (and for every experiment and sweep).

    Sweeps given on the command line and in ``hydra.sweeper.params`` of the composed config are
    expanded into their cartesian product (command-line values win over the config's). Lines on
    what could only be sampled (intervals) are appended to ``notes``. More than ``limit`` jobs
    is a ConfigError (None: no limit). ``composed`` receives the configs (with their hydra node)
    composed on the way, by job, so that a caller checking every job need not compose it again.
    """
    from runner.config.errors import is_user_error

    bases = [list(overrides)]
    if every_experiment:
        bases = [[f"experiment={e}", *overrides] for e in group_options("experiment")]
        bases += [[f"sweep={s}", *overrides] for s in group_options("sweep")]
    cases: list[list[str]] = []
    for base in bases:
        plain, sweeps = _sweep_lines(base, notes)
        for case in _product(plain, sweeps):
            try:
                cfg = compose(case, with_hydra=True)
                hydra_cfg = cfg.hydra
            except Exception as exc:  # reported when the case itself is validated
                if not is_user_error(exc):
                    raise
                cases.append(case)
                continue
            node = hydra_cfg.sweeper.get("params")
            params = OmegaConf.to_container(node) if isinstance(node, DictConfig) else {}
            assert isinstance(params, dict)
            given = {line.split("=", 1)[0].lstrip("+~") for line in case}
            extra = [f"{k!s}={v!s}" for k, v in params.items() if str(k) not in given]
            if extra:
                more_plain, more_sweeps = _sweep_lines(extra, notes)
                cases += _product([*case, *more_plain], more_sweeps)
            else:
                cases.append(case)
                if composed is not None:
                    composed[tuple(case)] = cfg
            if limit is not None and len(cases) > limit:
                raise TooManyJobs(f"validate: more than {limit} jobs to check; narrow the sweep")
    return cases
