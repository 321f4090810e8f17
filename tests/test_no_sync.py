"""The learning step never syncs with the host and traces as one graph."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.trainers import DelayAdjustedKernelSTDP, DelayAdjustedKernelSTDPD, KernelSTDP

SYNC_OPS = {"_local_scalar_dense", "nonzero", "item"}


class ForbidHostSync(TorchDispatchMode):
    """Raise on any op that moves a device value to the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        if name in SYNC_OPS:
            raise AssertionError(f"host sync inside the step: aten.{name}")
        return func(*args, **(kwargs or {}))


def _network(rule: str):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    conn = DenseConnection(
        20,
        5,
        dt=1.0,
        batch_size=4,
        weight=torch.rand(5, 20, generator=gen),
        max_delay=5.0,
        delay=torch.rand(5, 20, generator=gen) * 5,
    )
    post = SpikeAges((4, 5), dt=1.0)
    kw = {
        "kernel_post_kwargs": {"learning_rate": 0.01, "time_constant": 20.0},
        "kernel_pre_kwargs": {"learning_rate": -0.01, "time_constant": 20.0},
    }
    trainers = {
        "kstdp": [KernelSTDP(**kw)],
        "kstdp_delayed": [KernelSTDP(**kw, delayed=True)],
        "delay_adjusted": [DelayAdjustedKernelSTDP(**kw), DelayAdjustedKernelSTDPD(**kw)],
    }[rule]
    for trainer in trainers:
        trainer.register_cell("c", conn, post)
    conn.updater("weight").configure(clamp_min=0.0, clamp_max=1.0)
    return conn, post, trainers, gen


@pytest.mark.parametrize("rule", ["kstdp", "kstdp_delayed", "delay_adjusted"])
def test_step_has_no_host_sync(rule: str) -> None:
    conn, post, trainers, gen = _network(rule)
    inputs = [
        (torch.rand(4, 20, generator=gen) < 0.2, torch.rand(4, 5, generator=gen) < 0.2)
        for _ in range(5)
    ]
    with torch.no_grad(), ForbidHostSync():
        for pre, post_spk in inputs:
            conn(pre)
            post.observe(post_spk)
            for trainer in trainers:
                trainer()
            conn.apply_updates()
    assert conn.weight.min() >= 0


def test_sync_detector_catches_item() -> None:
    with pytest.raises(AssertionError, match="host sync"), ForbidHostSync():
        torch.ones(2).sum().item()


@pytest.mark.parametrize("rule", ["kstdp", "kstdp_delayed", "delay_adjusted"])
def test_step_traces_as_one_graph(rule: str) -> None:
    conn, post, trainers, gen = _network(rule)

    def step(pre: torch.Tensor, post_spk: torch.Tensor) -> torch.Tensor:
        conn(pre)
        post.observe(post_spk)
        for trainer in trainers:
            trainer()
        conn.apply_updates()
        return conn.weight

    compiled = torch.compile(step, fullgraph=True, backend="eager")
    with torch.no_grad():
        for _ in range(3):
            compiled(torch.rand(4, 20, generator=gen) < 0.2, torch.rand(4, 5, generator=gen) < 0.2)
    assert torch.isfinite(conn.weight).all()
