"""The checks of a replay case (:func:`runner.replay_case.load_case`): each array and each
``params_json`` entry present, of the right shape, type and range, with builtin names only and
kwargs the factories accept; a problem is one line naming the key and what is allowed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from runner.core.bounds import BOUNDS
from runner.core.kernels import KERNELS
from runner.core.reductions import REDUCTIONS
from runner.core.trainers import TRAINERS
from runner.signatures import kwargs_problem
from runner.traits import kernel_trainer_traits

#: The longest spike history (max_delay / dt) a case may ask for.
MAX_HISTORY_STEPS = 100_000


class ReplayInputError(ValueError):
    """A case file that cannot be replayed; the message is one line for the user."""


def _check_matrix(path: Path, key: str, array: np.ndarray, shape: tuple[int, int]) -> None:
    """``array`` is a float ``[O, I]`` matrix."""
    _require(array.shape == shape, path, f"{key} must be [O, I] = {shape}, got {array.shape}")
    _require(
        np.issubdtype(array.dtype, np.floating),
        path,
        f"{key} must be a float array, got {array.dtype}",
    )


def _require(cond: bool, path: Path, message: str) -> None:
    if not cond:
        raise ReplayInputError(f"{path}: {message}")


def check_case(path: Path, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    """Every array and parameter of a case: present, of the right shape, type and range."""
    for key in ("pre_spikes", "post_spikes", "weight_init"):
        _require(key in arrays, path, f"missing array {key!r}")
    for key in ("trainers", "dt"):
        _require(key in params, path, f"params_json is missing {key!r}")
    pre, post, w0 = arrays["pre_spikes"], arrays["post_spikes"], arrays["weight_init"]
    _require(pre.ndim == 3, path, f"pre_spikes must be [T, B, I], got shape {pre.shape}")
    _require(post.ndim == 3, path, f"post_spikes must be [T, B, O], got shape {post.shape}")
    for key in ("pre_spikes", "post_spikes"):
        _require(
            arrays[key].dtype == np.bool_, path, f"{key} must be bool, got {arrays[key].dtype}"
        )
    t, b, n_in = pre.shape
    _require(
        min(pre.shape) >= 1 and post.shape[2] >= 1,
        path,
        f"spike trains need at least one step, sample, input and output; got pre {pre.shape}, "
        f"post {post.shape}",
    )
    _require(
        post.shape[:2] == (t, b),
        path,
        f"post_spikes shape {post.shape} does not match pre_spikes {pre.shape} in T and B",
    )
    n_out = post.shape[2]
    _check_matrix(path, "weight_init", w0, (n_out, n_in))
    if "delay_init" in arrays:
        _check_matrix(path, "delay_init", arrays["delay_init"], (n_out, n_in))
    dtype = params.get("dtype", "float64")
    _require(
        _one_of(dtype, ("float32", "float64")),
        path,
        f"dtype must be float32 or float64, got {dtype!r}",
    )
    _require(
        _positive_number(params["dt"]) and params["dt"] < math.inf,
        path,
        f"dt must be a positive number, got {params['dt']!r}",
    )
    every = params.get("update_every", 1)
    _require(
        isinstance(every, int) and every >= 1,
        path,
        f"update_every must be an integer >= 1, got {every!r}",
    )
    acc = params.get("accumulator_reduction", "sum")
    _require(
        _one_of(acc, ("sum", "mean")),
        path,
        f"accumulator_reduction must be sum or mean, got {acc!r}",
    )
    max_delay = params.get("max_delay")
    _require(
        max_delay is None or (_number(max_delay) and 0 <= max_delay < math.inf),
        path,
        f"max_delay must be null or a number >= 0, got {max_delay!r}",
    )
    if max_delay:
        _require(
            max_delay / params["dt"] <= MAX_HISTORY_STEPS,
            path,
            f"max_delay / dt = {max_delay / params['dt']:.3g} steps of spike history; "
            f"at most {MAX_HISTORY_STEPS} are allowed",
        )
    trainers = params["trainers"]
    _require(
        isinstance(trainers, list) and len(trainers) > 0, path, "trainers must be a non-empty list"
    )
    for spec in trainers:
        _require(isinstance(spec, dict), path, "each trainer must be a JSON object")
        delayed, tol = spec.get("delayed"), spec.get("interp_tolerance")
        _require(
            delayed is None or isinstance(delayed, bool),
            path,
            f"trainers[].delayed must be true or false, got {delayed!r}",
        )
        _require(
            tol is None or (_number(tol) and 0 <= tol < math.inf),
            path,
            f"trainers[].interp_tolerance must be a number >= 0, got {tol!r}",
        )
        kind = spec.get("kind")
        _require(
            _one_of(kind, TRAINERS),
            path,
            f"unknown trainer kind {kind!r}; valid: {', '.join(TRAINERS)}",
        )
        for side in ("kernel_post", "kernel_pre"):
            name = spec.get(side)
            _require(
                _one_of(name, KERNELS),
                path,
                f"unknown kernel {name!r} for {side}; valid: {', '.join(KERNELS)}",
            )
            kwargs = spec.get(f"{side}_kwargs", {})
            _require(isinstance(kwargs, dict), path, f"{side}_kwargs must be an object")
            _check_kwargs(path, f"{side}_kwargs", KERNELS[name], kwargs, leading=1)
        red = spec.get("batch_reduction", "mean")
        _require(
            _one_of(red, REDUCTIONS),
            path,
            f"unknown batch_reduction {red!r}; valid: {', '.join(REDUCTIONS)}",
        )
        _require(
            max_delay is not None or not _needs_delays(kind),
            path,
            f"{kind} trains with delays: max_delay must not be null",
        )
    for key in ("weight_bounds", "delay_bounds"):
        bounds = params.get(key) or {}
        _require(isinstance(bounds, dict), path, f"{key} must be an object")
        for side in ("upper", "lower"):
            spec = bounds.get(side)
            if spec is None:
                continue
            _require(
                isinstance(spec, dict) and _one_of(spec.get("fn"), BOUNDS),
                path,
                f"unknown {key}.{side}.fn {spec.get('fn') if isinstance(spec, dict) else spec!r}; "
                f"valid: {', '.join(BOUNDS)}",
            )
            _require(_number(spec.get("limit")), path, f"{key}.{side}.limit must be a number")
            extra = {k: v for k, v in spec.items() if k not in ("fn", "limit")}
            fn = BOUNDS[spec["fn"]].upper
            _check_kwargs(path, f"{key}.{side}", fn, extra, leading=2, skip=("limit",))
        for clamp in ("clamp_min", "clamp_max"):
            value = bounds.get(clamp)
            _require(
                value is None or _number(value),
                path,
                f"{key}.{clamp} must be null or a number, got {value!r}",
            )


def _needs_delays(kind: str) -> bool:
    traits = kernel_trainer_traits(TRAINERS[kind])
    return traits is not None and traits.needs_delays


def _check_kwargs(path: Path, where: str, fn: Any, kwargs: dict[str, Any], **supplied: Any) -> None:
    """Keyword arguments of a kernel or bound: the signature check a config's get
    (:func:`runner.signatures.kwargs_problem`: names, required ones, types; ``supplied`` says
    what the engine passes itself), and finite numbers only (a case holds no tensors)."""
    problem = kwargs_problem(where, fn, kwargs, **supplied)
    _require(problem is None, path, str(problem))
    for key, value in kwargs.items():
        _require(
            _number(value) and math.isfinite(value),
            path,
            f"{where}.{key} must be a finite number, got {value!r}",
        )


def _one_of(value: Any, choices: Any) -> bool:
    return isinstance(value, str) and value in choices


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _positive_number(x: Any) -> bool:
    return _number(x) and x > 0
