"""The fast paths (fused exponentials, cached kernel values) agree with the plain path.

The plain path evaluates the kernels exactly as the reference does (both kernels on every Δ,
NaN handling, four separate reductions). Each cell chooses its path from what its kernels declare
(``runner.core.kernels.exponential``); the tests pin a path with ``Cell.choose_path``.
"""

from __future__ import annotations

import pytest
import torch

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.kernels import exp_stdp_post
from runner.core.trainers import (
    DelayAdjustedKernelSTDP,
    DelayAdjustedKernelSTDPD,
    KernelSTDP,
    KernelTrainer,
)
from runner.core.updater import Bound

KW = {
    "kernel_post_kwargs": {"learning_rate": 0.02, "time_constant": 12.0},
    "kernel_pre_kwargs": {"learning_rate": -0.021, "time_constant": 9.0},
}


def _run(
    rule: str,
    plain: bool,
    *,
    dtype: torch.dtype,
    dt: float,
    reduction: str,
    max_delay: float | None,
    steps: int,
    seed: int = 0,
    separable: bool = False,
) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    n_in, n_out, batch = 7, 5, 3
    delay = None if max_delay is None else torch.rand(n_out, n_in, generator=gen) * max_delay
    conn = DenseConnection(
        n_in,
        n_out,
        dt=dt,
        batch_size=batch,
        dtype=dtype,
        weight=torch.rand(n_out, n_in, generator=gen).to(dtype),
        max_delay=max_delay,
        delay=None if delay is None else delay.to(dtype),
    )
    post = SpikeAges((batch, n_out), dt=dt, dtype=dtype)
    kw = {**KW, "batch_reduction": reduction}
    trainers: list[KernelTrainer]
    if rule == "kstdp":
        trainers = [KernelSTDP(**kw)]
    elif rule == "kstdp_delayed":
        trainers = [KernelSTDP(**kw, delayed=True)]
    else:
        trainers = [DelayAdjustedKernelSTDP(**kw), DelayAdjustedKernelSTDPD(**kw)]
    for trainer in trainers:
        cell = trainer.register_cell("c", conn, post)
        if plain or separable:  # else the path the cell chose (cached or fused)
            cell.choose_path("plain" if plain else "separable")
    conn.updater("weight").configure(upper=Bound("multiplicative", 1.0), clamp_min=0.0)
    if "delay" in conn.updaters:
        conn.updater("delay").configure(clamp_min=0.0, clamp_max=max_delay)
    with torch.no_grad():
        for t in range(steps):
            conn(torch.rand(batch, n_in, generator=gen) < 0.15)
            post.observe(torch.rand(batch, n_out, generator=gen) < 0.1)
            for trainer in trainers:
                trainer()
            if t % 3 == 2:
                conn.apply_updates()
            if t == steps // 2:  # a sample boundary: state reset, parameters kept
                conn.reset_state()
                post.reset_state()
    delays = conn.delay.detach().clone() if conn.delay is not None else torch.zeros(())
    return conn.weight.detach().clone(), delays


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("dt", [1.0, 0.7])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    ("rule", "max_delay"), [("kstdp", None), ("kstdp", 4.0), ("kstdp_delayed", 4.0), ("dak", 4.0)]
)
def test_fast_path_matches_plain_path(
    dtype: torch.dtype, dt: float, reduction: str, rule: str, max_delay: float | None
) -> None:
    args = {"dtype": dtype, "dt": dt, "reduction": reduction, "max_delay": max_delay, "steps": 400}
    fast = _run(rule, False, **args)
    plain = _run(rule, True, **args)
    tol = 1e-9 if dtype == torch.float64 else 1e-5
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("dt", [1.0, 0.7])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_separable_path_matches_plain_path(dtype: torch.dtype, dt: float, reduction: str) -> None:
    args = {"dtype": dtype, "dt": dt, "reduction": reduction, "max_delay": None, "steps": 400}
    fast = _run("kstdp", False, separable=True, **args)
    plain = _run("kstdp", True, **args)
    tol = 1e-9 if dtype == torch.float64 else 1e-5
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize(
    ("lr_post", "lr_pre"), [(0.02, -0.021), (-0.02, 0.021), (0.02, 0.021), (-0.02, -0.021), (0, -1)]
)
def test_separable_path_routes_each_kernel_by_its_sign(lr_post: float, lr_pre: float) -> None:
    """Hebbian, anti-Hebbian, LTP-only and LTD-only signs give the plain path's (pos, neg)."""
    gen = torch.Generator().manual_seed(11)
    batch, n_in, n_out = 4, 9, 6
    pre = torch.rand(60, batch, n_in, generator=gen) < 0.15
    post_spikes = torch.rand(60, batch, n_out, generator=gen) < 0.1
    parts = []
    for plain in (False, True):
        w = torch.zeros(n_out, n_in, dtype=torch.float64)
        conn = DenseConnection(n_in, n_out, dt=1.0, batch_size=batch, weight=w)
        post = SpikeAges((batch, n_out), dt=1.0, dtype=torch.float64)
        kw = {
            "kernel_post_kwargs": {"learning_rate": lr_post, "time_constant": 12.0},
            "kernel_pre_kwargs": {"learning_rate": lr_pre, "time_constant": 9.0},
        }
        trainer = KernelSTDP(**kw)
        cell = trainer.register_cell("c", conn, post)
        cell.choose_path("plain" if plain else "separable")
        with torch.no_grad():
            for t in range(60):
                conn(pre[t])
                post.observe(post_spikes[t])
                trainer()
        updater = conn.updater("weight")
        parts.append(updater.accumulated())
    for a, b in zip(*parts, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert parts[0][0].abs().sum() + parts[0][1].abs().sum() > 0


def test_plan_batch_takes_the_separable_path_only_where_it_is_exact() -> None:
    conn = DenseConnection(5, 3, dt=1.0, batch_size=4, weight=torch.zeros(3, 5))
    post = SpikeAges((4, 3), dt=1.0)
    cell = KernelSTDP(**KW).register_cell("c", conn, post)  # time constants 12 and 9 ms
    cell.plan_batch(250, compiled=True)
    assert cell.separable and not cell.cache_valid
    cell.plan_batch(250, compiled=False)  # eager: the kernel cache is faster
    assert not cell.separable
    cell.plan_batch(9 * 80 + 1, compiled=True)  # e^(age/tau) would leave float32's range
    assert not cell.separable
    single = DenseConnection(5, 3, dt=1.0, batch_size=1, weight=torch.zeros(3, 5))
    one = KernelSTDP(**KW).register_cell("c", single, SpikeAges((1, 3), dt=1.0))
    one.plan_batch(250, compiled=True)  # batch 1: the cache touches only spiking rows
    assert not one.separable


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_separable_sums_on_cuda_match_cpu() -> None:
    from runner.core.separable import separable_exp_sums

    gen = torch.Generator().manual_seed(2)
    a_pre = torch.floor(torch.rand(8, 30, generator=gen) * 40)
    a_post = torch.floor(torch.rand(8, 5, generator=gen) * 40)
    a_pre[torch.rand(8, 30, generator=gen) < 0.3] = float("nan")
    cpu = separable_exp_sums(a_pre, a_post, 12.0, 9.0)
    gpu = separable_exp_sums(a_pre.cuda(), a_post.cuda(), 12.0, 9.0)
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-6)


def _cell(trainer: KernelTrainer, *, max_delay: float | None = None, batch: int = 2):  # type: ignore[no-untyped-def]
    conn = DenseConnection(5, 3, dt=1.0, batch_size=batch, weight=torch.zeros(3, 5),
                           max_delay=max_delay)  # fmt: skip
    return trainer.register_cell("c", conn, SpikeAges((batch, 3), dt=1.0))


def test_each_cell_chooses_its_path_from_what_its_kernels_declare(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from runner.core.kernels import exponential

    @exponential("post")
    def my_post(diff: torch.Tensor, *, learning_rate: float, time_constant: float) -> torch.Tensor:
        return exp_stdp_post(diff, learning_rate=learning_rate, time_constant=time_constant)

    with caplog.at_level("DEBUG", logger="runner.core.cell"):
        assert _cell(KernelSTDP(**KW)).path.name == "cached"  # undelayed, number kwargs
    assert "cell c: cached path" in caplog.text
    assert _cell(KernelSTDP(**KW), max_delay=4.0).path.name == "fused"
    assert _cell(DelayAdjustedKernelSTDP(**KW), max_delay=4.0).path.name == "fused"
    assert _cell(KernelSTDP(**KW, kernel_post=my_post)).path.name == "cached"  # declared too
    plain = _cell(KernelSTDP(**KW, kernel_post=lambda d, **k: exp_stdp_post(d, **k)))
    assert plain.path.name == "plain"
    assert _cell(KernelSTDP(**KW, kernel_pre=exp_stdp_post)).path.name == "plain"  # wrong side
    assert _cell(KernelSTDP(**KW, batch_reduction="median")).path.name == "plain"  # not linear
    tensor_lr = {"learning_rate": torch.full((3, 5), 0.02), "time_constant": 12.0}
    per_synapse = KernelSTDP(
        kernel_post_kwargs=tensor_lr, kernel_pre_kwargs=KW["kernel_pre_kwargs"]
    )
    assert _cell(per_synapse).path.name == "fused"  # no cache for tensor kwargs
    with pytest.raises(ValueError, match="cannot take the fused path: needs kernels declared"):
        plain.choose_path("fused")
    with pytest.raises(ValueError, match="cannot take the separable path: needs the kernel cache"):
        _cell(KernelSTDP(**KW), max_delay=4.0).choose_path("separable")
