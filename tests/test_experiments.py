"""Reduced versions of the shipped experiments, asserting their outcomes.

Each test composes the shipped config (``experiment=NAME``), shrinks it with overrides and runs it
in-process on the CPU. The full-size runs (and the multi-seed comparisons quoted in
docs/EXPERIMENTS.md) are marked slow; ``scripts/experiments.py`` produces the quoted numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from runner.build import build_experiment
from runner.config.compose import compose
from runner.config.validate import validate_config
from runner.loop import LoopState, run_loop
from runner.tasks import arrival_times, pair_differences, select_afferents


def run(overrides: Sequence[str]) -> tuple[Any, LoopState]:
    cfg = compose([*overrides, "device=cpu"])
    typed = validate_config(cfg)
    dtype = {"float32": torch.float32, "float64": torch.float64}[typed.dtype.value]
    experiment = build_experiment(cfg, device=torch.device("cpu"), dtype=dtype)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest (and fair to other jobs)
    try:
        state = run_loop(experiment.network, experiment.task, experiment.plan)
    finally:
        torch.set_num_threads(threads)
    return experiment, state


# -- stdp_window ----------------------------------------------------------------------------------


def kernel(delta_t: float, cfg: Any) -> float:
    """The exp kernels of the stdp_window config, written out by hand."""
    side = cfg.trainer.weight.kernel_post if delta_t >= 0 else cfg.trainer.weight.kernel_pre
    kw = side.kwargs
    return kw.learning_rate * math.exp(-abs(delta_t) / kw.time_constant)


def window_closed_form(delta_t: float, n: int, period: float, cfg: Any) -> tuple[int, float]:
    """(contributing steps, cross-pairing sum) of n pairings (dt = 1 ms), by hand.

    After pairing k the pair (k, k) contributes K(Δt) every step until the next pairing's first
    spike, i.e. period - |Δt| steps, and the last pair for a whole period (the trains end one
    period after the last spike). In between, |Δt| steps pair spikes of neighbouring pairings at
    Δ = -(period - Δt) (Δt > 0: the next pre, the previous post) or period + Δt (Δt < 0).
    """
    a = abs(delta_t)
    steps = (n - 1) * (period - a) + period
    cross_delta = -(period - delta_t) if delta_t > 0 else period + delta_t
    cross = (n - 1) * a * kernel(cross_delta, cfg) if a else 0.0
    return int(steps), cross


@pytest.mark.parametrize("delta_t", [-50.0, -5.0, 0.0, 1.0, 50.0])
def test_stdp_window_matches_the_kernel_to_1e6(delta_t: float) -> None:
    n, period = 4, 1000.0
    overrides = [
        "experiment=stdp_window",
        f"stimulus.params.delta_t_ms={delta_t}",
        f"stimulus.params.n_pairings={n}",
    ]
    cfg = compose(overrides)
    _, state = run(overrides)
    m = state.metrics
    steps, cross = window_closed_form(delta_t, n, period, cfg)
    assert m["contributing_steps"] == steps
    assert m["cross_terms"] == pytest.approx(cross, rel=1e-9, abs=1e-300)
    expected = kernel(delta_t, cfg)
    assert m["kernel"] == pytest.approx(expected, rel=1e-12)
    measured = (m["delta_w"] - cross) / steps
    assert abs(measured - expected) <= 1e-6 * abs(expected)
    assert m["window_rel_error"] <= 1e-6
    assert m["delta_w"] == pytest.approx(steps * expected + cross, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("delta_t", [-35.0, 15.0])
def test_stdp_window_full_protocol_60_pairings_at_1_hz(delta_t: float) -> None:
    overrides = ["experiment=stdp_window", f"stimulus.params.delta_t_ms={delta_t}"]
    cfg = compose(overrides)
    _, state = run(overrides)
    steps, cross = window_closed_form(delta_t, 60, 1000.0, cfg)
    assert state.metrics["contributing_steps"] == steps
    assert state.metrics["window_rel_error"] <= 1e-6


def test_pair_differences_follow_the_most_recent_pair() -> None:
    pre = torch.zeros(8, 1, 1, dtype=torch.bool)
    post = torch.zeros(8, 1, 1, dtype=torch.bool)
    pre[[1, 5], 0, 0] = True
    post[3, 0, 0] = True
    delta = pair_differences(pre, post, dt=0.5)[:, 0, 0, 0].numpy()
    expected = [np.nan, np.nan, np.nan, 1.0, 1.0, -1.0, -1.0, -1.0]  # (3 - 1) * 0.5, (3 - 5) * 0.5
    np.testing.assert_array_equal(delta, expected)


# -- pattern metrics --------------------------------------------------------------------------------


def test_arrival_times_pick_the_latest_arrival_before_the_latency() -> None:
    pattern = np.zeros((10, 3), dtype=bool)
    pattern[[1, 6], 0] = True  # afferent 0 spikes at 1 and 6 ms
    pattern[4, 1] = True  # afferent 1 at 4 ms
    selected = np.array([True, True, False])
    delay = np.array([2.0, 0.5, 0.0])
    np.testing.assert_allclose(arrival_times(pattern, selected, delay, 1.0), [3.0, 4.5, 8.0])
    np.testing.assert_allclose(arrival_times(pattern, selected, delay, 1.0, before=5.0), [3.0, 4.5])


def test_selected_afferents_are_strong_pattern_afferents() -> None:
    weight = np.array([0.9, 0.2, 1.0, 0.6])
    mask = np.array([True, True, False, True])
    np.testing.assert_array_equal(select_afferents(weight, mask), [True, False, False, True])


# -- kernel_stdp / delay_adjusted ------------------------------------------------------------------

#: 64 streams of 1 s (about 600 presentations): long enough for STDP to pick the pattern.
PATTERN_SHORT = ("run.n_train=64", "run.steps_per_sample=1000", "run.n_eval=8")


def pattern_weights(experiment: Any) -> tuple[np.ndarray, np.ndarray, int]:
    task = experiment.task
    weight = experiment.network.connections["input_exc"].weight.detach().double().numpy()
    return weight, task.source.pattern_mask.cpu().numpy(), task.best_output()


@pytest.mark.parametrize("name", ["kernel_stdp", "delay_adjusted"])
def test_pattern_experiments_pick_pattern_afferents(name: str) -> None:
    experiment, state = run([f"experiment={name}", "seed=0", *PATTERN_SHORT])
    weight, mask, best = pattern_weights(experiment)
    # the best output's noise afferents lose half their weight (uniform in [0, 0.4] at the
    # start, mean 0.2; ~0.09 here, ~0.00 after the full run) ...
    assert weight[best, ~mask].mean() < 0.13
    # ... and its strongest synapses all come from pattern afferents
    top = np.argsort(weight[best])[-8:]
    assert mask[top].all()
    assert state.metrics["n_selected"] >= 5
    # it already answers most presentations (false alarms fall later in training)
    assert state.metrics["hit_rate"] >= 0.8
    if name == "delay_adjusted":  # the causal arrivals' delays shrink (~0.1 ms here, ~1 ms later)
        m = state.metrics
        assert m["delay_mean_end_ms"] < m["delay_mean_start_ms"] - 0.05
        delay = experiment.network.connections["input_exc"].delay.detach()
        assert float(delay.min()) >= 0.0 and float(delay.max()) <= 10.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kernel_stdp", "delay_adjusted"])
def test_pattern_experiments_detect_the_pattern(name: str) -> None:
    """The shipped CPU-sized run (~50 s): hit rate >= 90 % with <= 1 false alarm per second."""
    _, state = run([f"experiment={name}", "seed=0"])
    assert state.metrics["hit_rate"] >= 0.9
    assert state.metrics["false_alarms_per_s"] <= 1.0


# -- MNIST (Diehl & Cook) ----------------------------------------------------------------------------
# The reduced learning checks of the MNIST presets are in tests/test_learning.py.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "at_least"),
    [("mnist_stdp_cpu", 0.80), ("mnist_dr_stdp_cpu", 0.75)],  # measured: docs/EXPERIMENTS.md
)
def test_mnist_cpu_presets_learn(name: str, at_least: float) -> None:
    _, state = run([f"experiment={name}", "seed=0"])
    assert state.metrics["accuracy"] >= at_least  # chance: 0.1


@pytest.mark.parametrize(
    ("name", "batch_size"),
    [
        ("mnist_stdp", 50),
        ("mnist_dr_stdp", 50),
        ("mnist_stdp_1epoch", 1),
        ("mnist_dr_stdp_1epoch", 1),
    ],
)
def test_full_mnist_configs_need_a_folder_and_validate_with_one(
    name: str, batch_size: int, tmp_path, monkeypatch
) -> None:
    from conftest import write_mnist_headers  # tests/ is on sys.path (rootdir conftest)

    from runner.config.errors import ConfigError

    monkeypatch.delenv("STDP_RUN_MNIST", raising=False)
    with pytest.raises(ConfigError, match="stimulus.dataset.root") as no_folder:
        validate_config(compose([f"experiment={name}"]))
    assert no_folder.value.only_needs_data
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte .* is missing") as no_files:
        validate_config(compose([f"experiment={name}", f"stimulus.dataset.root={tmp_path}"]))
    assert no_files.value.only_needs_data
    root = write_mnist_headers(tmp_path / "mnist")
    cfg = validate_config(compose([f"experiment={name}", f"stimulus.dataset.root={root}"]))
    assert cfg.stimulus.dataset is not None and cfg.stimulus.dataset.source == "mnist"
    assert cfg.network.populations["exc"].size == 100
    assert (cfg.run.n_train, cfg.run.n_eval, cfg.run.batch_size) == (50000, 10000, batch_size)
    assert cfg.run.n_test is None  # all 10,000 official test digits are scored
    assert cfg.stimulus.dataset.holdout.value == "tail"  # validation: the training file's tail
