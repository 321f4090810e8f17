"""Replay a golden-format case with inferno-ai 0.0.5 itself (the timing and correctness oracle).

    /work/infvenv/bin/python scripts/inferno_replay.py CASE.npz --out OUT.npz [--threads 1]

Reads a case in the format of ``shared/golden/FORMAT.md`` (``scripts/make_replay_case.py`` writes
large ones; ``tests/data/golden/*.npz`` are small ones with reference trajectories) and runs it with
inferno's own objects: an ``ExactNeuron`` that emits the imposed postsynaptic spikes, a
``LinearDense`` connection with a ``DeltaCurrent`` synapse, the case's trainers, the updater's
accumulators, soft bounds and ``Clamping`` hooks, stepped with the canonical loop
``layer(x) -> trainer() -> connection.update()`` (``shared/reference/SEMANTICS.md`` 1.2).
Writes ``weight`` and ``delay`` ``[T, O, I]`` (values after each step) and ``applied`` ``[T]``,
the keys ``stdp-run replay --out`` writes, with ``np.savez`` (uncompressed, as ours).

This script needs a Python environment with inferno-ai 0.0.5 (and torch) installed, separate
from the project's: ``runner/`` never imports inferno. It uses only inferno's public API.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

Kernel = Callable[..., torch.Tensor]


# ------------------------------------------------------------------ kernels inferno does not ship
def gaussian(diff: torch.Tensor, amplitude: float, center: float, width: float, **_: Any):
    """``amplitude * exp(-((diff - center) / width)**2 / 2)``, both signs, NaN stays NaN."""
    u = (diff - center) / width
    return amplitude * torch.exp(-0.5 * u * u)


def rectangular(diff: torch.Tensor, amplitude: float, low: float, high: float, **_: Any):
    """``amplitude`` where ``low <= diff <= high`` (both edges inclusive), else 0 (NaN -> 0)."""
    return ((diff >= low) & (diff <= high)).to(diff.dtype) * amplitude


def mexican_hat(diff: torch.Tensor, amplitude: float, center: float, width: float, **_: Any):
    """``amplitude * (1 - u**2) * exp(-u**2 / 2)`` with ``u = (diff - center) / width``."""
    u2 = ((diff - center) / width) ** 2
    return amplitude * (1.0 - u2) * torch.exp(-0.5 * u2)


def _median(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.median(x, dim).values


def kernels() -> dict[str, Kernel]:
    import inferno.functional as F

    return {
        "exp_stdp_post": F.exp_stdp_post_kernel,
        "exp_stdp_pre": F.exp_stdp_pre_kernel,
        "gaussian": gaussian,
        "rectangular": rectangular,
        "mexican_hat": mexican_hat,
    }


REDUCTIONS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "mean": torch.mean,
    "sum": torch.sum,
    "amax": torch.amax,
    "amin": torch.amin,
    "median": _median,
}


def bounds() -> dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]]:
    """Bound name -> (upper, lower) half-bounding functions of inferno."""
    import inferno.functional as F

    return {
        "multiplicative": (F.bound_upper_multiplicative, F.bound_lower_multiplicative),
        "scaled_multiplicative": (
            F.bound_upper_scaled_multiplicative,
            F.bound_lower_scaled_multiplicative,
        ),
        "power": (F.bound_upper_power, F.bound_lower_power),
        "sharp": (F.bound_upper_sharp, F.bound_lower_sharp),
    }


# ------------------------------------------------------------------ the replay
def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    if "params_json" in arrays:
        params = json.loads(str(arrays.pop("params_json")))
    else:
        params = json.loads(path.with_suffix(".json").read_text())
    return arrays, params


def _trainer(spec: dict[str, Any]) -> Any:
    from inferno.learn import DelayAdjustedKernelSTDP, DelayAdjustedKernelSTDPD, KernelSTDP

    known = kernels()
    common = {
        "kernel_post": known[spec["kernel_post"]],
        "kernel_pre": known[spec["kernel_pre"]],
        "kernel_post_kwargs": dict(spec.get("kernel_post_kwargs", {})),
        "kernel_pre_kwargs": dict(spec.get("kernel_pre_kwargs", {})),
        "batch_reduction": REDUCTIONS[spec.get("batch_reduction", "mean")],
    }
    kind = spec["kind"]
    if kind == "KernelSTDP":
        return KernelSTDP(
            delayed=bool(spec.get("delayed", False)),
            interp_tolerance=float(spec.get("interp_tolerance") or 0.0),
            **common,
        )
    if kind == "DelayAdjustedKernelSTDP":
        return DelayAdjustedKernelSTDP(**common)
    if kind == "DelayAdjustedKernelSTDPD":
        return DelayAdjustedKernelSTDPD(**common)
    raise ValueError(f"unknown trainer kind {kind!r}")


def _configure(acc: Any, updater: Any, name: str, spec: dict[str, Any], reduce: str) -> list:
    """Accumulator reduction, soft bounds and clamp of one parameter; returns the hooks to keep."""
    from inferno.neural import Clamping

    acc.reduction(torch.mean if reduce == "mean" else torch.sum)
    fns = bounds()
    for side, index, setter in (("upper", 0, acc.upperbound), ("lower", 1, acc.lowerbound)):
        bound = spec.get(side)
        if bound is not None:
            extra = {k: v for k, v in bound.items() if k not in ("fn", "limit")}
            setter(fns[bound["fn"]][index], float(bound["limit"]), **extra)
    lo, hi = spec.get("clamp_min"), spec.get("clamp_max")
    if lo is None and hi is None:
        return []
    hook = Clamping(updater, f"parent.{name}", min=lo, max=hi)
    hook.register()
    return [hook]  # inferno holds hooks weakly: the caller must keep them alive


def replay(arrays: dict[str, np.ndarray], params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run the case with inferno; weight/delay trajectories after each step and ``applied``."""
    import inferno.neural as nn_
    from inferno.extra import ExactNeuron

    dtype = getattr(torch, params.get("dtype", "float64"))
    torch.set_default_dtype(dtype)  # the trainers' timers allocate in the default dtype
    pre = torch.from_numpy(arrays["pre_spikes"])
    post = torch.from_numpy(arrays["post_spikes"])
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    dt = float(params["dt"])
    max_delay = params.get("max_delay")
    w0 = torch.from_numpy(arrays["weight_init"]).to(dtype)
    d0 = torch.from_numpy(arrays.get("delay_init", np.zeros((n_out, n_in)))).to(dtype)

    neuron = ExactNeuron((n_out,), dt, rest_v=-60.0, thresh_v=-45.0, batch_size=batch)
    synapse = nn_.DeltaCurrent.partialconstructor(
        1.0, interp_mode="previous", interp_tol=0.0, current_overbound=0.0, spike_overbound=False
    )
    conn = nn_.LinearDense(
        (n_in,),
        (n_out,),
        dt,
        synapse=synapse,
        delay=None if max_delay is None else float(max_delay),
        batch_size=batch,
        weight_init=lambda _: w0.clone(),
        delay_init=None if max_delay is None else (lambda _: d0.clone()),
    )
    layer = nn_.Serial(conn, neuron)
    conn.updater = conn.defaultupdater()
    hooks: list[Any] = []
    reduce = params.get("accumulator_reduction", "sum")
    names = ["weight"] + (["delay"] if max_delay is not None else [])
    for name in names:
        spec = params.get(f"{name}_bounds") or {}
        hooks += _configure(getattr(conn.updater, name), conn.updater, name, spec, reduce)
    trainers = [_trainer(spec) for spec in params["trainers"]]
    for i, trainer in enumerate(trainers):
        trainer.register_cell(f"cell{i}", layer.cell)

    every = int(params.get("update_every", 1))
    weight = np.empty((steps, n_out, n_in), dtype=arrays["weight_init"].dtype)
    delay = np.zeros_like(weight)
    applied = np.zeros(steps, dtype=bool)
    with torch.no_grad():
        for n in range(steps):
            out = layer(pre[n], neuron_kwargs={"override": post[n]})
            if not torch.equal(out, post[n]):
                raise RuntimeError(f"step {n}: ExactNeuron did not emit the imposed spikes")
            for trainer in trainers:
                trainer()
            if (n + 1) % every == 0:
                conn.update()
                applied[n] = True
            weight[n] = conn.weight.numpy()
            if max_delay is not None:
                delay[n] = conn.delay.numpy()
    del hooks
    return {"weight": weight, "delay": delay, "applied": applied}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    opts = parser.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    from importlib.metadata import version

    start = time.perf_counter()
    arrays, params = load(opts.case)
    result = replay(arrays, params)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(opts.out, **result)
    print(
        f"inferno-ai {version('inferno-ai')} replayed {opts.case.name}: "
        f"{result['weight'].shape[0]} steps in {time.perf_counter() - start:.2f} s -> {opts.out}"
    )
    for key in ("weight", "delay"):
        if key in arrays and arrays[key].shape == result[key].shape:
            ref = arrays[key].astype(np.float64)
            diff = np.abs(result[key].astype(np.float64) - ref).max(initial=0.0)
            print(f"  {key}: max abs diff {diff:.3e} (vs stored trajectory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
