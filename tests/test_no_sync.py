"""The learning step never syncs with the host and traces as one graph, on every arithmetic path
(plain, fused, cached, separable) and on the whole step of the default experiment's network.

The clamps, the sentinel ages and the sign routing exist so that no branch depends on a device
value; these tests fail on the first op that would make the host wait for the device."""

from __future__ import annotations

import pytest
import torch

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.trainers import DelayAdjustedKernelSTDP, DelayAdjustedKernelSTDPD, KernelSTDP

#: rule -> (trainer rule, delays, path the cell must take)
CASES = {
    "kstdp": ("kstdp", True, "fused"),
    "kstdp_delayed": ("kstdp_delayed", True, "fused"),
    "delay_adjusted": ("delay_adjusted", True, "fused"),
    "kstdp_cached": ("kstdp", False, "cached"),  # the default experiment's path (batch 1)
    "kstdp_separable": ("kstdp", False, "separable"),  # compiled CPU steps at batch > 1
    "kstdp_plain": ("kstdp", True, "plain"),
}


def _network(case: str):  # type: ignore[no-untyped-def]
    rule, delays, path = CASES[case]
    gen = torch.Generator().manual_seed(0)
    conn = DenseConnection(
        20,
        5,
        dt=1.0,
        batch_size=4,
        weight=torch.rand(5, 20, generator=gen),
        max_delay=5.0 if delays else None,
        delay=torch.rand(5, 20, generator=gen) * 5 if delays else None,
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
        cell = trainer.register_cell("c", conn, post)
        if path == "separable":
            cell.plan_batch(50, compiled=True)
        elif path == "plain":
            cell.choose_path("plain")
        assert cell.path.name == path
    conn.updater("weight").configure(clamp_min=0.0, clamp_max=1.0)
    return conn, post, trainers, gen


@pytest.mark.parametrize("case", list(CASES))
def test_step_has_no_host_sync(case: str, no_host_sync) -> None:  # type: ignore[no-untyped-def]
    conn, post, trainers, gen = _network(case)
    inputs = [
        (torch.rand(4, 20, generator=gen) < 0.2, torch.rand(4, 5, generator=gen) < 0.2)
        for _ in range(5)
    ]
    with torch.no_grad(), no_host_sync():
        for pre, post_spk in inputs:
            conn(pre)
            post.observe(post_spk)
            for trainer in trainers:
                trainer()
            conn.apply_updates()
    assert conn.weight.min() >= 0


def test_sync_detector_catches_item(no_host_sync) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError, match="host sync"), no_host_sync():
        torch.ones(2).sum().item()
    with pytest.raises(AssertionError, match="host sync"), no_host_sync():
        bool(torch.ones(2).sum() > 0)


@pytest.mark.parametrize("case", list(CASES))
def test_step_traces_as_one_graph(case: str) -> None:
    conn, post, trainers, gen = _network(case)

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


@pytest.mark.parametrize("batch", [1, 4])
def test_default_experiment_network_step_has_no_host_sync(
    batch: int,
    no_host_sync,  # type: ignore[no-untyped-def]
) -> None:
    """The whole step the default experiment runs (Poisson input, ALIF, lateral inhibition,
    cached KernelSTDP at batch 1, separable at batch 4 in a compiled step, the updater and its
    bounds), step after step, with the trainer refreshed outside the step as the loop does."""
    from hydra import compose, initialize_config_module

    import runner.config.schema  # noqa: F401  (registers the schema)
    from runner.build import build_experiment

    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"run.batch_size={batch}"])
    network = build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32).network
    network.train()
    network.plan_batch(50, compiled=True)
    network.reset_state()
    cell = network.trainers["weight"].cells["input_exc"]
    assert cell.path.name == ("cached" if batch == 1 else "separable")
    gen = torch.Generator().manual_seed(0)
    drive = [torch.rand(batch, 64, generator=gen) < 0.3 for _ in range(20)]
    before = network.connections["input_exc"].weight.clone()
    with torch.no_grad():
        for spikes in drive:
            network.refresh_caches()  # host-side, between compiled calls
            with no_host_sync():
                network.step({"input": spikes})
                network.apply_updates()
    assert not torch.equal(network.connections["input_exc"].weight, before)
