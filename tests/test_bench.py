"""The benchmark harness and the fast paths it measures (no wall-clock assertions).

* ``scripts/minimal_loops.py`` is the yardstick: fed the same spikes and initial parameters as a
  network built through the config path, it must end with the same weights (float64, 1e-9).
* The engine's fast paths must agree with the plain ones: the incremental kernel cache of
  undelayed KernelSTDP, the bit-packed spike history, the power-of-two delay lags and the
  multi-step compiled call.
* ``scripts/bench.py --quick`` writes JSON of the documented shape.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402
import minimal_loops as ml  # noqa: E402

from runner.core.ages import History, SpikeAges, SpikeBits  # noqa: E402
from runner.core.delays import delay_lag  # noqa: E402
from runner.core.dense import DenseConnection  # noqa: E402
from runner.core.trainers import KernelSTDP  # noqa: E402
from runner.loop import Callbacks, LoopState, make_step, run_batch  # noqa: E402

KW = {
    "kernel_post_kwargs": {"learning_rate": 0.01, "time_constant": 20.0},
    "kernel_pre_kwargs": {"learning_rate": -0.012, "time_constant": 15.0},
}


def _experiment(name: str, *extra: str) -> tuple[Any, Any]:
    """A quick-size benchmark workload built through the config path, in float64."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    import runner.config.schema  # noqa: F401
    from runner.build import build_experiment

    overrides = [*bench.workloads(quick=True)[name]["overrides"], "dtype=float64", *extra]
    GlobalHydra.instance().clear()
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    GlobalHydra.instance().clear()
    return build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float64), cfg


@pytest.mark.parametrize("name", ["W1-100", "W2-100", pytest.param("W3", marks=pytest.mark.slow)])
@pytest.mark.parametrize("incremental", [False, True])
def test_minimal_loop_reproduces_the_engine(name: str, incremental: bool) -> None:
    if incremental and name != "W1-100":
        pytest.skip("the incremental minimal loop covers undelayed KernelSTDP only")
    exp, cfg = _experiment(name, "run.steps_per_sample=60")
    net, task = exp.network, exp.task
    batch = next(iter(task.batches("train", 0)))
    spec, extra = bench.spec_from_network(net, cfg)
    conn = net.connections["input_exc"]
    delay = None if conn.delay is None else conn.delay.detach().clone()
    w0 = conn.weight.detach().clone()
    loop = ml.MinimalLoop(
        spec, conn.weight.detach().clone(), delay, batch.spikes.shape[1], incremental=incremental
    )
    if loop.lateral is not None:
        loop.lateral.copy_(extra["lateral"])
        loop.direct.copy_(extra["direct"])
    with torch.no_grad():
        for _ in range(2):  # two batches: the second starts from the first's parameters
            _train_batch(exp, batch, make_step(net))
            net.after_batch()
            ml.run_batch(loop, ml.make_step(loop, compile=False), batch.spikes)
    assert (conn.weight - w0).abs().max() > 1e-6  # it learned something
    assert torch.allclose(loop.W, conn.weight, rtol=0, atol=1e-9)
    if delay is not None:
        assert loop.D is not None and torch.allclose(loop.D, conn.delay, rtol=0, atol=1e-9)
    if name == "W3":  # the adaptive thresholds follow too
        assert torch.allclose(loop.exc["theta"], net.populations["exc"].theta, atol=1e-9)


def _train_batch(exp: Any, batch: Any, step: Any) -> Any:
    """One training batch through the loop's own ``run_batch`` (returns its spike record)."""
    return run_batch(
        exp.network,
        exp.task,
        batch,
        exp.plan,
        LoopState(),
        train=True,
        probe=None,
        callbacks=Callbacks(),
        step=step,
    )


def _kstdp_pair(batch: int, seed: int) -> tuple[Any, ...]:
    """Two identical undelayed KernelSTDP setups, the second with its kernel cache disabled."""
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.rand(6, 9, generator=gen, dtype=torch.float64)
    out = []
    for cached in (True, False):
        conn = DenseConnection(9, 6, dt=0.5, batch_size=batch, weight=w0, dtype=torch.float64)
        post = SpikeAges((batch, 6), dt=0.5, dtype=torch.float64)
        trainer = KernelSTDP(**KW, batch_reduction="mean")
        cell = trainer.register_cell("c", conn, post)
        assert cell.cached
        if not cached:
            cell.choose_path("fused")
        conn.updater("weight").configure(clamp_min=0.0, clamp_max=1.0)
        out.append((conn, post, trainer))
    return out[0], out[1], gen


def _run(setups: list[tuple[Any, ...]], pre: torch.Tensor, post_spk: torch.Tensor) -> None:
    with torch.no_grad():
        for conn, post, trainer in setups:
            conn(pre)
            post.observe(post_spk)
            trainer()
            conn.apply_updates()


@pytest.mark.parametrize("batch", [1, 3])
def test_kernel_cache_matches_recomputing(batch: int) -> None:
    fast, slow, gen = _kstdp_pair(batch, seed=batch)
    w0 = fast[0].weight.clone()
    for step in range(120):
        if step == 50:  # a new sample: ages forgotten, the cache must follow
            for conn, post, _ in (fast, slow):
                conn.reset_state()
                post.reset_state()
        pre = torch.rand(batch, 9, generator=gen) < 0.15
        post_spk = torch.rand(batch, 6, generator=gen) < 0.1
        _run([fast, slow], pre, post_spk)
    assert torch.allclose(fast[0].weight, slow[0].weight, rtol=0, atol=1e-12)
    assert (fast[0].weight - w0).abs().max() > 1e-4  # it learned something


def test_kernel_cache_rebuilt_after_eval_and_load() -> None:
    fast, slow, gen = _kstdp_pair(2, seed=7)
    for step in range(60):
        pre = torch.rand(2, 9, generator=gen) < 0.2
        post_spk = torch.rand(2, 6, generator=gen) < 0.2
        evaluating = 20 <= step < 30  # the trainers skip these steps, the ages move on
        for _, _, trainer in (fast, slow):
            trainer.train(not evaluating)
        _run([fast, slow], pre, post_spk)
        if step == 40:  # a state dict round trip (ages and all)
            state = copy.deepcopy(fast[2].state_dict())
            fast[2].load_state_dict(state)
    assert torch.allclose(fast[0].weight, slow[0].weight, rtol=0, atol=1e-12)


def test_kernel_cache_follows_batch_size() -> None:
    conn = DenseConnection(4, 3, dt=1.0, batch_size=2, weight=torch.zeros(3, 4))
    post = SpikeAges((2, 3), dt=1.0)
    trainer = KernelSTDP(**KW)
    cell = trainer.register_cell("c", conn, post)
    for module in (conn, post, trainer):
        module.set_batch_size(5)
    # dropped at once (learning-free phases at a large batch never allocate [B, O, I]) ...
    assert cell.kernel_cache is not None and cell.kernel_cache.shape == (0, 3, 4)
    assert not cell.cache_valid
    cell.refresh_cache()  # ... and rebuilt at the new size by the first training step
    assert cell.kernel_cache.shape == (5, 3, 4) and cell.cache_valid


def test_spike_bits_equal_history() -> None:
    gen = torch.Generator().manual_seed(3)
    bits, hist = SpikeBits(2, 7, 21), History(2, 7, 21, fill=False, dtype=torch.bool)
    for _ in range(60):
        spikes = torch.rand(2, 7, generator=gen) < 0.3
        bits.push(spikes)
        hist.push(spikes)
        lag = torch.randint(0, 21, (4, 7), generator=gen)
        assert torch.equal(bits.gather(lag), hist.gather(lag))
    with pytest.raises(ValueError, match="length"):
        SpikeBits(1, 1, 32)


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.25])
def test_power_of_two_lags_equal_the_general_formula(dt: float) -> None:
    gen = torch.Generator().manual_seed(5)
    delay = torch.rand(50, 40, generator=gen, dtype=torch.float64) * 12 - 1
    delay[0, :10] = torch.arange(10) * dt  # exactly on the grid
    for dtype in (torch.float64, torch.float32):
        d = delay.to(dtype)
        fast = delay_lag(d, dt=dt, tol=0.0, max_steps=40, upper=10.0)
        s = d / dt  # the reference rule (FORMAT.md 6.5) with tol = 0
        r = torch.round(s)
        s = torch.where((dt * r - d).abs() <= 0, r, s)
        o = 1 + s
        up = torch.ceil(o)
        steps = torch.where(up == torch.floor(o), o, up) - 1
        valid = (d >= 0) & (d <= 10.0)
        steps = torch.where(valid, steps, torch.zeros_like(steps)).clamp(0, 40).long()
        assert torch.equal(fast.steps, steps)
        assert torch.equal(fast.valid, valid)


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["W1-100", "W1-b64"])
def test_compiled_chunks_match_eager(workload: str) -> None:
    """Compiled k-step chunks (batch 1) and the factorised batch path (W1-b64) match eager."""
    runs = []
    for compile in (False, True):
        exp, _ = _experiment(workload, "run.steps_per_sample=30", "dtype=float32")
        batch = next(iter(exp.task.batches("train", 0)))
        step = make_step(exp.network, compile=compile, steps_per_call=10 if compile else None)
        with torch.no_grad():
            record = _train_batch(exp, batch, step)
        runs.append((exp.network.connections["input_exc"].weight.clone(), record))
        cell = exp.network.trainers["weight"].cells["input_exc"]
        assert cell.separable == (compile and workload == "W1-b64")
    (w_eager, _), (w_compiled, _) = runs
    assert torch.allclose(w_eager, w_compiled, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_harness_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "bench.py"),
        "--quick",
        "--no-compile",
        "--modes",
        "eager",
        "--repeats",
        "1",
        "--workloads",
        "W1-100,W2-100",
        "--json",
        str(out),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=600)
    data = json.loads(out.read_text())
    assert {"commit", "torch", "threads", "compile", "load_before", "baseline_rss_mb"} <= set(
        data["meta"]
    )
    assert data["meta"]["threads"] == 1 and data["meta"]["compile"] is False
    rows = {r["workload"]: r for r in data["results"]}
    assert set(rows) == {"W1-100", "W2-100"}
    for row in rows.values():
        assert row["unit"] == "steps/s"
        assert row["engine_rate"] > 0 and row["minimal_eager_rate"] > 0
        assert row["engine"]["steps"] == 20 and row["engine"]["batch"] == 1
        assert len(row["engine"]["times_s"]) == 1 and row["engine"]["rss_mb"] > 0
        assert math.isfinite(row["ratio_vs_best_minimal"])
        assert row["weight_diff_eager"] < 1e-5  # same spikes, same weights (float32)


@pytest.mark.slow
def test_replicas_section_writes_json(tmp_path: Path) -> None:
    """``--workloads replicas``: stacked vs solo rates for each R, eager and compiled."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--repeats", "1"]
    cmd += ["--workloads", "replicas", "--json", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=900)
    (row,) = json.loads(out.read_text())["results"]
    assert row["workload"] == "replicas" and row["steps_per_batch"] == 10
    assert [(r["replicas"], r["compiled"]) for r in row["rows"]] == [
        (1, False),
        (2, False),
        (1, True),
        (2, True),
    ]
    for r in row["rows"]:
        assert r["stacked_steps_per_s"] > 0 and r["solo_cpu_steps_per_s"] > 0
        assert math.isfinite(r["speedup"]) and math.isfinite(r["cpu_speedup"])
