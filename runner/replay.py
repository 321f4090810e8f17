"""Replay recorded spike trains through the learning rules (``stdp-run replay``).

A case is an npz archive in the reference format (``shared/golden/FORMAT.md``): presynaptic and
postsynaptic spike trains ``[T, B, I]`` / ``[T, B, O]`` (the postsynaptic spikes are imposed),
initial weights and delays, and the case parameters as JSON (``params_json``). The learning rules
run step by step and the weight and delay trajectories ``[T, O, I]`` (values after each step) are
written to ``--out``. If the case stores reference trajectories, the largest differences from them
are reported.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner.core.ages import SpikeAges
from runner.core.bounds import BOUNDS
from runner.core.dense import DenseConnection
from runner.core.kernels import KERNELS
from runner.core.reductions import REDUCTIONS
from runner.core.trainers import TRAINERS, KernelTrainer
from runner.core.updater import Bound

#: The longest spike history (max_delay / dt) a case may ask for.
MAX_HISTORY_STEPS = 100_000


class ReplayInputError(ValueError):
    """A case file that cannot be replayed; the message is one line for the user."""


@dataclass
class ReplayResult:
    weight: np.ndarray
    delay: np.ndarray
    applied: np.ndarray
    max_abs_diff: dict[str, float]
    max_rel_diff: dict[str, float]


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
    _check_case(path, arrays, params)
    return arrays, params


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


def _check_case(path: Path, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> None:
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
            _check_kwargs(path, f"{side}_kwargs", KERNELS[name], kwargs, skip=1)
        red = spec.get("batch_reduction", "mean")
        _require(
            _one_of(red, REDUCTIONS),
            path,
            f"unknown batch_reduction {red!r}; valid: {', '.join(REDUCTIONS)}",
        )
        _require(
            kind == "KernelSTDP" or max_delay is not None,
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
            fn = BOUNDS[spec["fn"]].upper
            extra = {k: v for k, v in spec.items() if k not in ("fn", "limit")}
            _check_kwargs(path, f"{key}.{side}", fn, {**extra, "limit": spec["limit"]}, skip=2)
        for clamp in ("clamp_min", "clamp_max"):
            value = bounds.get(clamp)
            _require(
                value is None or _number(value),
                path,
                f"{key}.{clamp} must be null or a number, got {value!r}",
            )


def _check_kwargs(path: Path, where: str, fn: Any, kwargs: dict[str, Any], *, skip: int) -> None:
    """Keyword arguments of a kernel or bound: known names, all required ones, numbers only."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    names = [p.name for p in params]
    unknown = sorted(set(kwargs) - set(names))
    _require(
        not unknown, path, f"{where}: unknown argument(s) {unknown}; valid: {', '.join(names)}"
    )
    missing = [
        p.name for p in params if p.default is inspect.Parameter.empty and p.name not in kwargs
    ]
    _require(not missing, path, f"{where}: missing argument(s) {missing}")
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


def _bound(spec: dict[str, Any] | None) -> Bound | None:
    if spec is None:
        return None
    extra = {k: float(v) for k, v in spec.items() if k not in ("fn", "limit")}
    return Bound(spec["fn"], float(spec["limit"]), extra)


def replay_case(path: Path) -> ReplayResult:
    """Run the learning rules of a case and return the trajectories and differences."""
    arrays, params = load_case(path)
    dtype = getattr(torch, params.get("dtype", "float64"))
    pre = torch.from_numpy(arrays["pre_spikes"])
    post = torch.from_numpy(arrays["post_spikes"])
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    max_delay = params.get("max_delay")
    delay_init = arrays.get("delay_init")
    conn = DenseConnection(
        n_in,
        n_out,
        dt=float(params["dt"]),
        batch_size=batch,
        weight=torch.from_numpy(arrays["weight_init"]).to(dtype),
        delay=None
        if max_delay is None or delay_init is None
        else torch.from_numpy(delay_init).to(dtype),
        max_delay=max_delay,
        dtype=dtype,
    )
    post_ages = SpikeAges((batch, n_out), dt=conn.dt, dtype=dtype)
    trainers: list[KernelTrainer] = []
    for i, spec in enumerate(params["trainers"]):
        extra = (
            {
                "delayed": bool(spec.get("delayed", False)),
                "interp_tolerance": float(spec.get("interp_tolerance") or 0.0),
            }
            if spec["kind"] == "KernelSTDP"
            else {}
        )
        trainer = TRAINERS[spec["kind"]](
            kernel_post=spec["kernel_post"],
            kernel_pre=spec["kernel_pre"],
            kernel_post_kwargs=spec.get("kernel_post_kwargs", {}),
            kernel_pre_kwargs=spec.get("kernel_pre_kwargs", {}),
            batch_reduction=spec.get("batch_reduction", "mean"),
            **extra,
        )
        trainer.register_cell(f"cell{i}", conn, post_ages)
        trainers.append(trainer)
    for name in ("weight", "delay"):
        if name in conn.updaters:
            bounds = params.get(f"{name}_bounds") or {}
            conn.updater(name).configure(
                accumulate=params.get("accumulator_reduction", "sum"),
                upper=_bound(bounds.get("upper")),
                lower=_bound(bounds.get("lower")),
                clamp_min=bounds.get("clamp_min"),
                clamp_max=bounds.get("clamp_max"),
            )
    every = int(params.get("update_every", 1))
    weight = torch.empty(steps, n_out, n_in, dtype=dtype)
    delay = torch.zeros(steps, n_out, n_in, dtype=dtype)
    applied = np.zeros(steps, dtype=bool)
    with torch.no_grad():
        for n in range(steps):
            conn.observe(pre[n])  # the post spikes are imposed: no current is needed
            post_ages.observe(post[n])
            for trainer in trainers:
                trainer()
            if (n + 1) % every == 0:
                conn.apply_updates()
                applied[n] = True
            weight[n].copy_(conn.weight)
            if conn.delay is not None:
                delay[n].copy_(conn.delay)
    result = ReplayResult(weight.numpy(), delay.numpy(), applied, {}, {})
    for key, ours in (("weight", result.weight), ("delay", result.delay)):
        if key in arrays and arrays[key].shape == ours.shape:
            ref = arrays[key].astype(np.float64)
            diff = np.abs(ours.astype(np.float64) - ref)
            result.max_abs_diff[key] = float(diff.max(initial=0.0))
            result.max_rel_diff[key] = float(
                (diff / np.maximum(1.0, np.abs(ref).max(initial=0.0))).max(initial=0.0)
            )
    return result


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks instead of returning them to the system.

    Each step allocates and frees temporaries of ``[B, O, I]`` (5 MB for 16 x 100 x 784 float32).
    With glibc's adaptive defaults such blocks are mmapped or trimmed off the heap on every free,
    so every step page-faults them in again (about 0.8 million faults in the 100-step case,
    10x fewer with this). Sets the mmap threshold to 32 MiB (glibc's own upper bound for the
    adaptive one) and the trim threshold to 1 GiB, process-wide: ``stdp-run replay`` calls it,
    a short-lived process.
    Returns False (changing nothing) where there is no glibc ``mallopt``.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # musl and other libcs without mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def main(case: Path, out: Path) -> None:
    """Replay ``case`` and write ``weight``, ``delay`` and ``applied`` to ``out`` (npz)."""
    result = replay_case(case)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, weight=result.weight, delay=result.delay, applied=result.applied)
    tmp.replace(out)
    print(f"replayed {case.name}: {result.weight.shape[0]} steps -> {out}")
    for key in result.max_abs_diff:
        print(
            f"  {key}: max abs diff {result.max_abs_diff[key]:.3e}, "
            f"max rel diff {result.max_rel_diff[key]:.3e} (vs stored trajectory)"
        )
