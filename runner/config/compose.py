"""Composing configs outside a run (``show``, ``validate``, ``list``, tests) with the Compose API.

:func:`expand_cases` turns overrides that sweep (``seed=0,1``) and a config's own
``hydra.sweeper.params`` into the list of single-job override lists, so that ``stdp-run validate``
checks every job of a sweep, as the basic sweeper would run them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from omegaconf import DictConfig, OmegaConf

CONFIG_MODULE = "runner.conf"
CONFIG_NAME = "config"
#: Safety cap on the number of expanded jobs checked by ``validate``.
MAX_CASES = 512


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
    """The composed config for ``overrides`` (with the ``hydra`` node if ``with_hydra``)."""
    from hydra import compose as hydra_compose

    with hydra_context():
        return hydra_compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=with_hydra)


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


def _sweep_lines(lines: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Split override lines into plain ones and, per sweep override, its single-value lines."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    plain: list[str] = []
    sweeps: list[list[str]] = []
    for line, override in zip(lines, parser.parse_overrides(list(lines)), strict=True):
        if override.is_sweep_override():
            key = override.get_key_element()
            sweeps.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            plain.append(line)
    return plain, sweeps


def _product(plain: list[str], sweeps: list[list[str]]) -> list[list[str]]:
    return [[*plain, *combo] for combo in itertools.product(*sweeps)] if sweeps else [plain]


def expand_cases(overrides: Sequence[str], *, every_experiment: bool = False) -> list[list[str]]:
    """Single-job override lists for ``overrides`` (and for every experiment and sweep).

    Sweeps given on the command line and in ``hydra.sweeper.params`` of the composed config are
    expanded into their cartesian product (command-line values win over the config's).
    """
    from runner.config.errors import ConfigError, is_user_error

    bases = [list(overrides)]
    if every_experiment:
        bases = [[f"experiment={e}", *overrides] for e in group_options("experiment")]
        bases += [[f"sweep={s}", *overrides] for s in group_options("sweep")]
    cases: list[list[str]] = []
    for base in bases:
        plain, sweeps = _sweep_lines(base)
        for case in _product(plain, sweeps):
            try:
                hydra_cfg = compose(case, with_hydra=True).hydra
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
                more_plain, more_sweeps = _sweep_lines(extra)
                cases += _product([*case, *more_plain], more_sweeps)
            else:
                cases.append(case)
            if len(cases) > MAX_CASES:
                raise ConfigError(
                    f"validate: more than {MAX_CASES} jobs to check; narrow the sweep"
                )
    return cases
