"""The shipped networks learn: reduced versions of the presets reach stated held-out accuracies.

The full presets and their measured figures are in docs/EXPERIMENTS.md; these runs are cut to a
few hundred digits so they fit the default suite (eager steps, seconds each), and their
thresholds sit well below what they reach (measured: see each test) and far above chance (10 %).
"""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_module

import runner.config.schema  # noqa: F401  (registers the schema)
from runner.build import build_experiment
from runner.loop import run_loop


def _accuracy(*overrides: str) -> dict[str, float]:
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=["device=cpu", "run.compile=false", *overrides])
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the presets (device.threads=1): small tensors
    exp = build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)
    metrics = run_loop(exp.network, exp.task, exp.plan).metrics
    print({k: round(v, 3) for k, v in metrics.items() if "accuracy" in k})
    return metrics


def test_default_experiment_learns_the_digits() -> None:
    # 300 of the 1,297 training digits: 0.69 held-out accuracy (the full run: 0.82-0.85)
    metrics = _accuracy("run.n_train=300", "run.n_eval=300")
    assert metrics["accuracy"] >= 0.60
    assert metrics["accuracy_ttfs"] >= 0.50


def test_diehl_cook_on_mnist_beats_chance_by_far() -> None:
    # 150 digits at 100 steps: 0.60 held-out accuracy (the full mnist_stdp_cpu: 0.83-0.87)
    metrics = _accuracy(
        "experiment=mnist_stdp_cpu",
        "run.n_train=150",
        "run.n_eval=200",
        "run.steps_per_sample=100",
        "stimulus.params.max_rate_hz=127.5",
    )
    assert metrics["accuracy"] >= 0.45
