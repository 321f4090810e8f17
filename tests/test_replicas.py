"""Stacked replicas (runner.core.replicas) equal their solo networks, replica by replica.

Three solo networks with different seeds and hyperparameters (a learning rate, a threshold, a
bound limit or clamp, a normalisation target) each run alone for N steps on their own drive;
copies of the same three initial networks, stacked, run on the concatenated drives; every
replica's final state (weights, delays, theta, voltages, ages, ...) must equal its solo run:
bit for bit in float64 on the CPU (eager), within 1e-6 relative in float32, and within float
tolerance when the stacked step is compiled.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pytest
import torch
from torch import Tensor, nn

from runner.build import build_network, typed
from runner.config.compose import compose
from runner.core.network import Network
from runner.core.replicas import ReplicaMismatch, replica_parameters, stack_networks, write_back
from runner.core.stacking import replica_matmul
from runner.loop import make_step
from runner.spec_config import experiment_spec

# name -> (base overrides, one list of per-replica overrides per replica)
W = "trainer.weight"
CASES: dict[str, tuple[list[str], list[list[str]]]] = {
    # the default experiment's network: KernelSTDP (cached path at batch 1), ALIF, lateral
    # inhibition, an upper bound, clamps and the L1 normalisation hook
    "kernel_stdp_default": (
        [],
        [
            ["seed=0"],
            [
                "seed=1",
                f"{W}.kernel_post.kwargs.learning_rate=2e-3",
                "network.populations.exc.params.thresh_v=-53.0",
            ],
            [
                "seed=2",
                f"{W}.kernel_pre.kwargs.learning_rate=-3e-4",
                "network.connections.input_exc.weight_bounds.upper.limit=0.8",
                "network.connections.input_exc.normalize.target=3.0",
                "network.populations.exc.params.refrac_t=3.0",
                "network.populations.exc.params.rest_v=-64.0",
                "network.populations.inh.params.reset_v=-46.0",
                "network.populations.inh.params.time_constant=60.0",
            ],
        ],
    ),
    # learned delays: DelayAdjustedKernelSTDP on the weights, DelayAdjustedKernelSTDPD on the
    # delays (fused path, batch mean over 2 samples), a per-replica clamp and time constant
    "delay_adjusted": (
        ["experiment=delay_adjusted", "run.batch_size=2"],
        [
            ["seed=0"],
            [
                "seed=1",
                f"{W}.kernel_post.kwargs.learning_rate=1e-3",
                "trainer.delay.kernel_pre.kwargs.time_constant=7.0",
                "network.populations.exc.params.spike_increment=1.0",
            ],
            [
                "seed=2",
                "trainer.delay.kernel_post.kwargs.learning_rate=-3e-4",
                "network.connections.input_exc.weight_bounds.clamp_max=0.9",
                "network.populations.exc.params.thresh_v=-59.0",
            ],
        ],
    ),
    # KernelSTDP reading ages at the continuous delay (the age history), plain path (gaussian)
    "kernel_stdp_delayed_plain": (
        [
            "experiment=kernel_stdp",
            f"{W}.delayed=true",
            "kernel@trainer.weight.kernel_post=gaussian",
            "run.batch_size=2",
        ],
        [
            ["seed=0"],
            ["seed=1", f"{W}.kernel_post.kwargs.amplitude=2e-3"],
            ["seed=2", f"{W}.kernel_pre.kwargs.learning_rate=-3e-4"],
        ],
    ),
}


def build(base: Sequence[str], extra: Sequence[str], dtype: torch.dtype) -> Network:
    cfg = compose(["device=cpu", *base, *extra])
    spec = experiment_spec(typed(cfg)).network
    return build_network(spec, device=torch.device("cpu"), dtype=dtype)


def drives(nets: Sequence[Network], steps: int, seed: int = 5) -> list[Tensor]:
    """Each network's own Bernoulli input spikes ``[steps, B, N]`` (30 % per step)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (steps, nets[0].batch_size, nets[0].spikes("input").shape[1])
    return [torch.rand(shape, generator=gen) < 0.3 for _ in nets]


def run(net: Network, drive: Tensor, *, compiled: bool = False, sample: int = 40) -> None:
    """Train on ``drive``: updates every step, hooks and a reset every ``sample`` steps."""
    step = make_step(net, compile=compiled, steps_per_call=1) if compiled else None
    net.train()
    net.reset_state()
    with torch.no_grad():
        for t in range(drive.shape[0]):
            if step is None:
                net.step({"input": drive[t]})
                net.apply_updates()
            else:
                net.refresh_caches()
                step({"input": drive[t]}, True)
            if (t + 1) % sample == 0:
                net.after_batch()
                net.reset_state()


def solo_and_stacked(
    case: str, dtype: torch.dtype, steps: int
) -> tuple[list[Network], Network, list[Tensor]]:
    base, per_replica = CASES[case]
    nets = [build(base, extra, dtype) for extra in per_replica]
    stacked = stack_networks([copy.deepcopy(n) for n in nets])
    return nets, stacked, drives(nets, steps)


Compare = Callable[[Tensor, Tensor, str], None]


def bitwise(a: Tensor, b: Tensor, key: str) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=key)


def within(rtol: float) -> Compare:
    def check(a: Tensor, b: Tensor, key: str) -> None:
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=rtol, atol=rtol, equal_nan=True, msg=key)
        else:
            assert torch.equal(a, b), key

    return check


def assert_replicas_equal(stacked: Network, nets: Sequence[Network], same: Compare) -> None:
    for r, solo in enumerate(nets):
        mine = replica_parameters(stacked, r)
        theirs = {k: v for k, v in solo.state_dict().items() if isinstance(v, Tensor)}
        assert sorted(mine) == sorted(theirs)
        for key, value in theirs.items():
            assert mine[key].shape == value.shape, key
            same(mine[key], value, f"replica {r}: {key}")


@pytest.mark.parametrize("case", list(CASES))
def test_stacked_equals_solo_float64_bit_for_bit(case: str) -> None:
    nets, stacked, inputs = solo_and_stacked(case, torch.float64, 120)
    for net, drive in zip(nets, inputs, strict=True):
        run(net, drive)
    run(stacked, torch.cat(inputs, dim=1))
    assert_replicas_equal(stacked, nets, bitwise)
    spikes = [int(n.populations["exc"].spike.sum()) for n in nets]  # the runs are not idle:
    changed = [not torch.equal(n.connections["input_exc"].weight, s.connections["input_exc"].weight)
               for n, s in zip(nets, [build(CASES[case][0], e, torch.float64) for e in CASES[case][1]], strict=True)]  # fmt: skip
    assert all(changed), spikes


@pytest.mark.parametrize("case", ["kernel_stdp_default", "delay_adjusted"])
def test_stacked_equals_solo_float32_within_1e6(case: str) -> None:
    nets, stacked, inputs = solo_and_stacked(case, torch.float32, 120)
    for net, drive in zip(nets, inputs, strict=True):
        run(net, drive)
    run(stacked, torch.cat(inputs, dim=1))
    assert_replicas_equal(stacked, nets, within(1e-6))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["kernel_stdp_default", "delay_adjusted"])
def test_compiled_stacked_equals_eager_solo(case: str) -> None:
    nets, stacked, inputs = solo_and_stacked(case, torch.float64, 80)
    for net, drive in zip(nets, inputs, strict=True):
        run(net, drive)
    run(stacked, torch.cat(inputs, dim=1), compiled=True)
    assert_replicas_equal(stacked, nets, within(1e-9))


def test_eval_mode_equals_solo() -> None:
    """Learning-free steps (frozen delayed current, theta fixed) after training, at batch 3."""
    nets, stacked, inputs = solo_and_stacked("delay_adjusted", torch.float64, 80)
    for net, drive in zip(nets, inputs, strict=True):
        run(net, drive)
    run(stacked, torch.cat(inputs, dim=1))
    later = drives(nets, 40, seed=11)
    for net in (*nets, stacked):
        net.eval()
        net.set_batch_size(3 * net.replicas)
        net.reset_state()
    with torch.no_grad():
        for t in range(40):
            for net, drive in zip(nets, later, strict=True):
                net.step({"input": drive[t].repeat(2, 1)[:3]})
            stacked.step({"input": torch.cat([d[t].repeat(2, 1)[:3] for d in later])})
    for r, net in enumerate(nets):
        exc = stacked.populations["exc"]
        bitwise(exc.voltage[3 * r : 3 * r + 3], net.populations["exc"].voltage, f"voltage {r}")
        assert torch.equal(exc.spike[3 * r : 3 * r + 3], net.populations["exc"].spike)


def test_one_replica_stacked_equals_solo() -> None:
    nets, _, inputs = solo_and_stacked("delay_adjusted", torch.float64, 60)
    stacked = stack_networks([copy.deepcopy(nets[0])])
    assert stacked.replicas == 1
    assert stacked.connections["input_exc"].weight.shape == (1, 3, 400)
    run(nets[0], inputs[0])
    run(stacked, inputs[0])
    assert_replicas_equal(stacked, nets[:1], bitwise)


def test_write_back_round_trips() -> None:
    nets, stacked, inputs = solo_and_stacked("kernel_stdp_default", torch.float64, 60)
    run(stacked, torch.cat(inputs, dim=1))
    stacked.set_batch_size(6)  # rows: 3 replicas x 2 samples; the solos follow
    write_back(stacked, nets)
    assert [solo.batch_size for solo in nets] == [2, 2, 2]
    assert_replicas_equal(stacked, nets, bitwise)
    restacked = stack_networks(nets)  # and back: the same stacked tensors
    for key, value in stacked.state_dict().items():
        if isinstance(value, Tensor):
            bitwise(restacked.state_dict()[key], value, key)


def test_stacked_step_has_no_host_sync(no_host_sync) -> None:  # type: ignore[no-untyped-def]
    nets, stacked, inputs = solo_and_stacked("kernel_stdp_default", torch.float32, 30)
    stacked.train()
    stacked.reset_state()
    stacked.refresh_caches()
    drive = torch.cat(inputs, dim=1)
    with torch.no_grad(), no_host_sync():
        for t in range(drive.shape[0]):
            stacked.step({"input": drive[t]})
            stacked.apply_updates()
        stacked.after_batch()


def test_per_replica_values_become_tensors_and_equal_ones_stay_numbers() -> None:
    _, stacked, _ = solo_and_stacked("kernel_stdp_default", torch.float64, 1)
    cell = stacked.trainers["weight"].cells["input_exc"]
    assert cell.kernel_post_kwargs.numbers == {"time_constant": 20.0}
    assert cell.kernel_post_kwargs.learning_rate.flatten().tolist() == [1e-3, 2e-3, 1e-3]
    exc = stacked.populations["exc"]
    assert exc.thresh_v == -52.0 and "reset_v" not in exc._per_replica
    assert exc._per_replica["thresh_v"].tolist() == [-52.0, -53.0, -52.0]
    assert exc._per_replica["refrac_fill"].tolist() == [5.0, 5.0, 3.0]
    assert stacked.batch_hooks[0].target.flatten().tolist() == [3.2, 3.2, 3.0]
    assert stacked.populations["exc"].voltage.shape == (3, 100)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["network.populations.exc.size=50", "network.populations.inh.size=50"],
            "network.populations.exc.size differs: 100 vs 50 (replicas must share sizes)",
        ),
        (
            ["kernel@trainer.weight.kernel_post=gaussian"],
            "network.trainers.weight.cells.input_exc.kernel_post differs",
        ),
        (["run.batch_size=2"], "network.batch_size differs: 1 vs 2"),
        (["network.connections.input_exc.max_delay=5.0"], "input_exc.max_delay differs"),
    ],
)
def test_mismatched_structure_is_refused_in_one_line(extra: list[str], message: str) -> None:
    a = build([], [], torch.float32)
    b = build([], extra, torch.float32)
    with pytest.raises(
        ReplicaMismatch, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as err:
        stack_networks([a, b])
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)


def test_closure_hooks_and_stacked_networks_are_refused() -> None:
    a, b = build([], [], torch.float32), build([], [], torch.float32)
    b.batch_hooks[0] = lambda: None
    with pytest.raises(ReplicaMismatch, match="batch_hooks"):
        stack_networks([a, b])
    stacked = stack_networks([a, a])
    with pytest.raises(ReplicaMismatch, match="already stacked"):
        stack_networks([stacked, stacked])


class _Plain(nn.Module):
    """A plugin-like population that knows nothing of replicas."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 4
        self.register_buffer("spike", torch.zeros(1, 4, dtype=torch.bool))


def test_population_without_stack_replicas_is_refused() -> None:
    nets = []
    for _ in range(2):
        net = Network(dt=1.0, batch_size=1)
        net.add_population("p", _Plain())
        nets.append(net)
    with pytest.raises(
        ReplicaMismatch, match=r"network.populations.p \(_Plain\) cannot be stacked"
    ):
        stack_networks(nets)


def test_stacked_cells_take_the_cached_path_where_solo_ones_would_separate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The separable path factorises one solo batch: stacked cells stay exact on the cache."""
    _, stacked, _ = solo_and_stacked("kernel_stdp_default", torch.float32, 1)
    cell = stacked.trainers["weight"].cells["input_exc"]
    with caplog.at_level("DEBUG", logger="runner.core.cell"):
        stacked.plan_batch(50, compiled=True)
    assert cell.path.name == "cached"
    assert "stacked replicas take the cached path" in caplog.text


@pytest.mark.parametrize("rows", [1, 2])
def test_compiled_replica_matmul_equals_bmm(rows: int) -> None:
    """The compiled per-replica product (``baddbmm``, kept away from inductor's per-element bmm
    loop) equals ``torch.bmm`` on spikes made from bools, at batch 1 and 2."""
    gen = torch.Generator().manual_seed(3)
    spikes = torch.rand((4, rows, 30), generator=gen) < 0.3
    w_t = torch.rand((4, 30, 20), generator=gen, dtype=torch.float64)

    def product(s: Tensor, w: Tensor) -> Tensor:
        return replica_matmul(s.to(w.dtype) * 2.5, w)

    torch._dynamo.reset()
    compiled = torch.compile(product, fullgraph=True, dynamic=False)(spikes, w_t)
    expected = torch.bmm(spikes.to(torch.float64) * 2.5, w_t)
    assert compiled.shape == (4, rows, 20)
    torch.testing.assert_close(compiled, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(product(spikes, w_t), expected)  # eager: bmm itself
