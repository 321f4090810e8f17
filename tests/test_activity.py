"""Silence and saturation warnings (issue 13, item 10): a learning rate of 1e6 no longer runs
silently to chance accuracy, and watching costs no extra host sync."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module

import runner.config.schema  # noqa: F401  (registers the schema)
from runner import loop as loop_module
from runner.activity import SATURATION, ActivityWatch
from runner.build import build_experiment
from runner.core.network import Network
from runner.core.neurons import LIF
from runner.loop import run_loop

HUGE_RATE = "trainer.weight.kernel_post.kwargs.learning_rate=1e6"
SMALL = ("device=cpu", "run.n_train=6", "run.n_eval=0", "run.batch_size=1",
         "run.steps_per_sample=50", "run.compile=false", "logger.plots=false")  # fmt: skip


def _network() -> Network:
    net = Network(dt=1.0, batch_size=2)
    net.add_population("inp", LIF(4, dt=1.0, batch_size=2, rest_v=-65.0, reset_v=-65.0,
                                  thresh_v=-50.0, refrac_t=0.0, time_constant=10.0),
                       driven=True)  # fmt: skip
    net.add_population("out", LIF(3, dt=1.0, batch_size=2, rest_v=-65.0, reset_v=-65.0,
                                  thresh_v=-50.0, refrac_t=5.0, time_constant=10.0))  # fmt: skip
    return net


def _values(watch: ActivityWatch, counts: dict[str, torch.Tensor]) -> list[float]:
    return torch.stack(watch.flags(counts)).tolist()


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="runner.activity")
    yield caplog


def test_silent_and_saturated_batches_are_named_once_per_epoch(warnings) -> None:  # type: ignore[no-untyped-def]
    watch = ActivityWatch(_network(), ("inp", "out"))
    assert watch.populations == ("out",)  # driven populations are the stimulus, not the network
    assert watch.interval == {"out": 5}  # refrac_t 5 ms at dt 1 ms: one spike per 5 steps at most
    silent = {"out": torch.zeros(2, 3, dtype=torch.int32)}
    (message,) = watch.report(_values(watch, silent), steps=50, epoch=0, batch=3)
    assert message.startswith("epoch 1, training batch 3: population 'out' fell silent")
    assert "learning rate too high" in message and "threshold" in message
    assert watch.report(_values(watch, silent), steps=50, epoch=0, batch=4) == []  # once
    # 50 steps allow 10 spikes; 8 in both samples is saturated (>= 75 %), 7 is not
    busy = {"out": torch.tensor([[8, 0, 1], [0, 8, 0]], dtype=torch.int32)}
    (message,) = watch.report(_values(watch, busy), steps=50, epoch=1, batch=1)
    assert "population 'out' saturated" in message and "8 or more times in 50 steps" in message
    assert "of the 10 spikes" in message and "learning rate too high" in message
    assert SATURATION * 10 > 7
    normal = {"out": torch.tensor([[8, 0, 1], [0, 7, 0]], dtype=torch.int32)}
    assert watch.report(_values(watch, normal), steps=50, epoch=2, batch=1) == []
    logged = [r.getMessage() for r in warnings.records if r.name == "runner.activity"]
    assert len(logged) == 2 and "fell silent" in logged[0] and "saturated" in logged[1]


def _build(*overrides: str) -> Any:
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*SMALL, *overrides])
    return build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)


class HostReads:
    """Counts the tensor methods that read device values to the host."""

    METHODS = ("tolist", "item", "cpu", "numpy", "__bool__", "__float__", "__int__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original: Any) -> Any:
        def method(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(tensor, *args, **kwargs)

        return method


class Blind(ActivityWatch):
    """A watch over no population: the loop as it was without the warnings."""

    def __init__(self, network: Network, populations: tuple[str, ...]) -> None:
        super().__init__(network, ())


def _reads(monkeypatch: pytest.MonkeyPatch, *overrides: str) -> int:
    exp = _build(*overrides)
    with monkeypatch.context() as patch:
        reads = HostReads(patch)
        run_loop(exp.network, exp.task, exp.plan)
    return reads.count


def test_huge_learning_rate_warns_without_extra_host_reads(  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch, warnings
) -> None:
    watched = _reads(monkeypatch, HUGE_RATE)
    messages = [r.getMessage() for r in warnings.records if r.name == "runner.activity"]
    assert len(messages) == 1  # one population, one epoch: one warning
    assert "population 'exc' saturated" in messages[0]
    assert "learning rate too high" in messages[0]

    monkeypatch.setattr(loop_module, "ActivityWatch", Blind)
    assert _reads(monkeypatch, HUGE_RATE) == watched > 0


def test_a_normal_run_does_not_warn(warnings) -> None:  # type: ignore[no-untyped-def]
    exp = _build()
    run_loop(exp.network, exp.task, exp.plan)
    assert not [r for r in warnings.records if r.name == "runner.activity"]


def test_a_network_without_input_is_silent(warnings) -> None:  # type: ignore[no-untyped-def]
    exp = _build("network.connections.input_exc.scale=0.0", "run.epochs=2")
    run_loop(exp.network, exp.task, exp.plan)
    messages = [r.getMessage() for r in warnings.records if r.name == "runner.activity"]
    assert len(messages) == 2  # once in each epoch
    assert messages[0].startswith("epoch 1, training batch 1: population 'exc' fell silent")
    assert messages[1].startswith("epoch 2, training batch 1: population 'exc' fell silent")
