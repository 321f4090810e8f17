"""Whatever validates also builds: a plugin stimulus (entry point) and a plugin connection
(``module:attr``) run end to end through the CLI, built by what their traits declare."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.registry import CONNECTIONS, STIMULI

PLUGIN = '''
"""A third-party package: an image encoder and an all-to-all connection with self-connections."""
import torch
from torch import nn

from runner.traits import ConnectionTraits, StimulusTraits

CALLS = {"encode": 0, "forward": 0}


def flicker(intensity, *, steps, dt, generator=None, p: float = 0.2):
    """Each step, a pixel of intensity x spikes with probability p * x."""
    CALLS["encode"] += 1
    x = intensity.flatten(1).clamp(0, 1) * p
    u = torch.rand((steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return u < x


flicker.stdp_run_traits = StimulusTraits("image")


class Blanket(nn.Module):
    """All-to-all within one population, self-connections included (lateral has none)."""

    stdp_run_traits = ConnectionTraits(weight="square")

    def __init__(self, n, *, dt, weight, scale=1.0, batch_size=1, device=None, dtype=None):
        super().__init__()
        self.n, self.dt, self.scale, self.batch_size = n, dt, scale, batch_size
        self.weight = nn.Parameter(weight.to(device=device, dtype=dtype), requires_grad=False)
        self.register_parameter("delay", None)

    def set_batch_size(self, batch_size):
        self.batch_size = batch_size

    def reset_state(self):
        pass

    @torch.no_grad()
    def forward(self, spikes):
        CALLS["forward"] += 1
        return (spikes.to(self.weight.dtype) * (self.scale / self.dt)) @ self.weight.t()


class Unlabelled(Blanket):
    """The same connection, declaring nothing: it must fail validation, not build wrongly."""

    stdp_run_traits = None
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Distribution ``stdp-plug-demo`` with stimulus entry point ``flicker``; module importable."""
    import importlib

    root = tmp_path / "site"
    (root / "stdp_plug_demo").mkdir(parents=True)
    (root / "stdp_plug_demo" / "__init__.py").write_text(PLUGIN)
    info = root / "stdp_plug_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stdp-plug-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stdp_run.stimuli]\nflicker = stdp_plug_demo:flicker\n")
    monkeypatch.syspath_prepend(str(root))
    STIMULI.clear_cache()
    try:
        yield importlib.import_module("stdp_plug_demo")
    finally:
        STIMULI.unregister("flicker")
        STIMULI.clear_cache()
        sys.modules.pop("stdp_plug_demo", None)


PLUGGED = (
    "stimulus.kind=flicker",
    "~stimulus.params.max_rate_hz",
    "+stimulus.params.p=0.5",
    "network.connections.inh_exc.kind=stdp_plug_demo:Blanket",
    "network.connections.inh_exc.weight_init={kind: constant, value: -1.0}",
)


def test_plugin_stimulus_and_connection_run_end_to_end(run_cli, plugin) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    result, run_dir = run_cli(*PLUGGED)
    assert result.exit_code == 0, result.output
    assert (run_dir / "summary.json").is_file()
    calls = plugin.CALLS  # type: ignore[attr-defined]
    assert calls["encode"] >= 2  # the task encoded its batches with the plugin
    assert calls["forward"] >= 2 * 20  # the network stepped through the plugin connection
    weights = load_file(str(run_dir / "weights" / "final.safetensors"))
    blanket = weights["inh_exc"]
    assert tuple(blanket.shape) == (100, 100)  # the declared square layout, not (n_out,)
    assert float(blanket.diagonal().min()) == -1.0  # self-connections kept: not a lateral


def test_plugin_without_traits_fails_validation_in_one_line(cli, plugin) -> None:  # type: ignore[no-untyped-def]
    result = cli("validate", "network.connections.inh_exc.kind=stdp_plug_demo:Unlabelled")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert any(
        "network.connections.inh_exc.kind: connection 'stdp_plug_demo:Unlabelled' declares no "
        "traits: set its stdp_run_traits = runner.traits.ConnectionTraits(...)" in line
        for line in lines
    ), result.output


def test_traits_are_what_the_builder_reads(plugin) -> None:  # type: ignore[no-untyped-def]
    assert STIMULI.traits("flicker").task == "image"
    traits = CONNECTIONS.traits("stdp_plug_demo:Blanket")
    assert traits.weight_shape(7, 5) == (5, 5) and not traits.trainable
    assert CONNECTIONS.traits("dense").weight_shape(7, 5) == (5, 7)
    assert CONNECTIONS.traits("direct").weight_shape(5, 5) == (5,)
