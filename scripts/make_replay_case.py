"""Write a large DR-STDP replay case in the golden format, without reference trajectories.

    python scripts/make_replay_case.py CASE.npz [--batch 16 --n-in 784 --n-out 100 --steps 100]

The case trains weights (DelayAdjustedKernelSTDP) and delays (DelayAdjustedKernelSTDPD) of one
784 -> 100 connection with Bernoulli pre and post spikes, like the reference cases of
``shared/golden/FORMAT.md``; ``stdp-run replay CASE.npz --out OUT.npz`` runs it (the benchmark
times that as a whole process).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def make_case(path: Path, *, batch: int, n_in: int, n_out: int, steps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dtype = "float32"
    params = {
        "format_version": 1,
        "name": path.stem,
        "description": "DR-STDP (weights and delays) on a 784 -> 100 connection, for timing.",
        "trainer": "DelayAdjustedKernelSTDP+DelayAdjustedKernelSTDPD",
        "trainers": [
            {
                "kind": "DelayAdjustedKernelSTDP",
                "param": "weight",
                "kernel_post": "exp_stdp_post",
                "kernel_post_kwargs": {"learning_rate": 2e-4, "time_constant": 20.0},
                "kernel_pre": "exp_stdp_pre",
                "kernel_pre_kwargs": {"learning_rate": -2e-6, "time_constant": 20.0},
                "batch_reduction": "mean",
            },
            {
                "kind": "DelayAdjustedKernelSTDPD",
                "param": "delay",
                "kernel_post": "exp_stdp_post",
                "kernel_post_kwargs": {"learning_rate": -6e-3, "time_constant": 10.0},
                "kernel_pre": "exp_stdp_pre",
                "kernel_pre_kwargs": {"learning_rate": 6e-5, "time_constant": 10.0},
                "batch_reduction": "mean",
            },
        ],
        "seed": seed,
        "dtype": dtype,
        "dt": 1.0,
        "T": steps,
        "batch_size": batch,
        "n_in": n_in,
        "n_out": n_out,
        "spike_prob_pre": 0.03,
        "spike_prob_post": 0.02,
        "max_delay": 10.0,
        "delay_init": {"kind": "uniform", "low": 0.0, "high": 10.0},
        "weight_init": {"low": 0.0, "high": 0.3},
        "update_every": 1,
        "accumulator_reduction": "sum",
        "weight_bounds": {
            "upper": {"fn": "multiplicative", "limit": 1.0},
            "lower": {"fn": "multiplicative", "limit": 0.0},
            "clamp_min": 0.0,
            "clamp_max": 1.0,
        },
        "delay_bounds": {"upper": None, "lower": None, "clamp_min": 0.0, "clamp_max": 10.0},
    }
    arrays = {
        "pre_spikes": rng.random((steps, batch, n_in)) < params["spike_prob_pre"],
        "post_spikes": rng.random((steps, batch, n_out)) < params["spike_prob_post"],
        "weight_init": rng.uniform(0.0, 0.3, (n_out, n_in)).astype(dtype),
        "delay_init": rng.uniform(0.0, 10.0, (n_out, n_in)).astype(dtype),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, params_json=np.array(json.dumps(params)), **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-in", type=int, default=784)
    parser.add_argument("--n-out", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    make_case(
        args.path,
        batch=args.batch,
        n_in=args.n_in,
        n_out=args.n_out,
        steps=args.steps,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
