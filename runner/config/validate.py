"""Validation of a composed config beyond what the schema checks at composition.

The dataclass schema (:mod:`runner.config.schema`) already rejects misspelled keys, wrong types
and bad enum values. :func:`validate_config` closes the rest (CLI-CONFIG-GUIDE section 2.2):

1. keys added with ``+key=`` under a schema node (Hydra's force-add bypasses the schema);
2. ``???`` values never filled in;
3. ``OmegaConf.to_object`` (types after interpolation);
4. semantics (:mod:`runner.config.checks`, :mod:`runner.config.trainer_checks`): registry
   names, kwargs against factory signatures (names and value types), numeric ranges and cross
   references (connections name populations, cells name connections);
5. data (:mod:`runner.config.data_checks`): files present, enough samples for the run.

Every problem becomes one line ``<full.key>: <what is wrong> ... valid: ...``; all lines are raised
together as a :class:`~runner.config.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from runner.config.checks import check_network
from runner.config.data_checks import check_data
from runner.config.errors import ConfigError, describe_error
from runner.config.schema import StdpRunConfig
from runner.config.trainer_checks import check_trainers
from runner.objective import check_objective
from runner.registry import choices_text, did_you_mean
from runner.tracking import check_backends


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def extra_keys(node: Any, path: str = "") -> list[str]:
    """Keys present under a schema (dataclass) node that the dataclass does not declare."""
    problems: list[str] = []
    if isinstance(node, DictConfig):
        if node._is_none() or node._is_missing():
            return problems
        cls = OmegaConf.get_type(node)
        declared = (
            [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else None
        )
        for key in node:
            if declared is not None and key not in declared:
                full = _join(path, key)
                problems.append(
                    f"{full}: unknown key {key!r}{did_you_mean(str(key), declared)} "
                    f"valid: {choices_text(declared)} (keys cannot be added with '+' here)"
                )
                continue
            problems += extra_keys(node._get_node(key), _join(path, key))
    elif isinstance(node, ListConfig) and not (node._is_none() or node._is_missing()):
        for i in range(len(node)):
            problems += extra_keys(node._get_node(i), f"{path}[{i}]")
    return problems


def _without_hydra(cfg: DictConfig) -> DictConfig:
    if "hydra" not in cfg:
        return cfg
    node = copy.deepcopy(cfg)  # keeps the schema type (OmegaConf.masked_copy would not)
    with open_dict(node):
        del node["hydra"]
    return node


def to_typed(cfg: DictConfig) -> StdpRunConfig:
    """Schema-level checks (extra keys, ``???``, types) and the typed config object."""
    node = _without_hydra(cfg)
    problems = extra_keys(node)
    if problems:
        raise ConfigError(problems)
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        raise ConfigError(
            [
                f"{key}: missing value (???); set it in a config or with {key}=VALUE"
                for key in missing
            ]
        )
    try:
        obj = OmegaConf.to_object(node)
    except OmegaConfBaseException as exc:
        raise ConfigError(describe_error(exc)) from None
    if not isinstance(obj, StdpRunConfig):
        raise ConfigError(
            f"the config is not based on the stdp-run schema (got {type(obj).__name__}); "
            "list stdp_run_schema first in its defaults"
        )
    return obj


def check_semantics(cfg: StdpRunConfig, *, build_check: bool = True) -> list[str]:
    """All semantic problems of a typed config, one line each (empty when it is fine)."""
    out: list[str] = []
    check_network(cfg, out, build_check=build_check)
    check_trainers(cfg, out)
    check_objective(cfg, out)
    check_backends(cfg, out)
    return out


def validate_config(
    cfg: DictConfig, *, build_check: bool = True, data_check: bool = True
) -> StdpRunConfig:
    """Check ``cfg`` completely and return it as typed dataclasses.

    The run and ``stdp-run validate`` both call this: whatever can be known before the first
    step is checked here, once.

    Args:
        cfg: a composed config (with or without its ``hydra`` node).
        build_check: also construct each population once at size 1 on the CPU, so that the
            engine's own argument checks (e.g. ``reset_v < thresh_v``) run before the experiment.
        data_check: also check the data set (files present, sizes against ``run.n_train``,
            ``run.n_eval``, ``run.n_test``; :mod:`runner.config.data_checks`).

    Raises:
        ConfigError: every problem found, one line each (``needs_data`` lists the lines that
            are data absent on this machine).
    """
    obj = to_typed(cfg)
    problems = check_semantics(obj, build_check=build_check)
    needs: list[str] = []
    if data_check:
        bad, needs = check_data(obj)
        problems += bad + needs
    if problems:
        raise ConfigError(problems, needs_data=needs)
    return obj
