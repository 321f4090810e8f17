"""A replay case: its arrays and ``params_json`` read and checked, and its engine specs.

A case is an npz archive in the reference format (``shared/golden/FORMAT.md``). Names in a case
are the engine's built-in names only (a data file never imports code: no ``module:attr``); kwargs
are checked against the factories' signatures by the registries, as a config's are. The specs
(:class:`~runner.spec.TrainerSpec`, :class:`~runner.spec.UpdaterSpec`) are built by the same
builders as a run's (:mod:`runner.rules`). Defaults here are the format's.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from runner.replay_checks import MAX_HISTORY_STEPS, ReplayInputError, check_case
from runner.spec import BoundSpec, CellSpec, RuleSpec, TrainerSpec, UpdaterSpec

#: the case checks moved to runner.replay_checks; their names stay importable from here
__all__ = [
    "MAX_HISTORY_STEPS", "ReplayInputError", "check_case", "load_case", "trainer_specs",
    "updater_spec",
]  # fmt: skip


def load_case(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and check a case: arrays by key and the parameters. Never unpickles."""
    if path.exists() and not zipfile.is_zipfile(path):
        raise ReplayInputError(f"{path}: not a readable npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise ReplayInputError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ReplayInputError(f"{path}: not a readable npz archive ({exc})") from None
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise ReplayInputError(f"{path}: refused to load ({exc}); use plain arrays") from None
    if "params_json" in arrays:
        text = str(arrays.pop("params_json"))
    elif path.with_suffix(".json").exists():
        text = path.with_suffix(".json").read_text()
    else:
        raise ReplayInputError(f"{path}: missing 'params_json' (and no {path.stem}.json beside it)")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplayInputError(f"{path}: params_json is not valid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise ReplayInputError(f"{path}: params_json must be a JSON object")
    check_case(path, arrays, params)
    return arrays, params


def trainer_specs(params: dict[str, Any]) -> list[TrainerSpec]:
    """The case's trainers, each training one cell ``cell<i>`` with its own settings."""
    out = []
    for i, spec in enumerate(params["trainers"]):
        rule = RuleSpec(
            kernel_post=spec["kernel_post"],
            kernel_post_kwargs=dict(spec.get("kernel_post_kwargs", {})),
            kernel_pre=spec["kernel_pre"],
            kernel_pre_kwargs=dict(spec.get("kernel_pre_kwargs", {})),
            batch_reduction=spec.get("batch_reduction", "mean"),
            delayed=bool(spec.get("delayed", False)),
            interp_tolerance=float(spec.get("interp_tolerance") or 0.0),
        )
        out.append(TrainerSpec(f"trainer{i}", spec["kind"], rule, (CellSpec(f"cell{i}", rule),)))
    return out


def _bound_spec(spec: dict[str, Any] | None) -> BoundSpec | None:
    if spec is None:
        return None
    extra = {k: float(v) for k, v in spec.items() if k not in ("fn", "limit")}
    return BoundSpec(spec["fn"], float(spec["limit"]), extra)


def updater_spec(params: dict[str, Any], param: str) -> UpdaterSpec:
    """How the case applies the updates of ``param`` (weight or delay)."""
    bounds = params.get(f"{param}_bounds") or {}
    return UpdaterSpec(
        accumulate=params.get("accumulator_reduction", "sum"),
        upper=_bound_spec(bounds.get("upper")),
        lower=_bound_spec(bounds.get("lower")),
        clamp_min=bounds.get("clamp_min"),
        clamp_max=bounds.get("clamp_max"),
    )
