"""Lateral and direct connections: currents by hand, the zero diagonal, inhibition."""

from __future__ import annotations

import pytest
import torch

from runner.core.connections import CONNECTIONS, DirectConnection, LateralConnection
from runner.core.dense import DenseConnection
from runner.core.neurons import LIF

F64 = torch.float64


def test_lateral_diagonal_is_zero_for_a_number_and_a_tensor():
    conn = LateralConnection(3, dt=1.0, weight=-120.0)
    assert conn.weight.tolist() == [
        [0.0, -120.0, -120.0],
        [-120.0, 0.0, -120.0],
        [-120.0] * 2 + [0.0],
    ]
    full = torch.arange(9.0).reshape(3, 3)
    conn = LateralConnection(3, dt=1.0, weight=full)
    assert torch.equal(conn.weight.diagonal(), torch.zeros(3))
    assert full[0, 0] == 0.0 and full[1, 1] == 4.0  # the caller's tensor is not modified
    assert isinstance(conn.weight, torch.nn.Parameter) and not conn.weight.requires_grad
    assert conn.delay is None


def test_lateral_set_weight_and_zero_diagonal():
    conn = LateralConnection(2, dt=1.0, weight=1.0)
    conn.set_weight(torch.tensor([[5.0, 2.0], [3.0, 7.0]]))
    assert conn.weight.tolist() == [[0.0, 2.0], [3.0, 0.0]]
    conn.set_weight(-4.0)
    assert conn.weight.tolist() == [[0.0, -4.0], [-4.0, 0.0]]
    conn.weight.data.fill_(1.0)
    conn.zero_diagonal_()
    assert conn.weight.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(ValueError, match="weight must have shape"):
        conn.set_weight(torch.ones(3, 3))


def test_lateral_current_by_hand():
    # W (out, in) = [[0, 1, 2], [3, 0, 5], [6, 7, 0]], scale 2, dt 0.5 -> a spike carries 4 nA
    w = torch.tensor([[9.0, 1.0, 2.0], [3.0, 9.0, 5.0], [6.0, 7.0, 9.0]], dtype=F64)
    conn = LateralConnection(3, dt=0.5, weight=w, scale=2.0, batch_size=2, dtype=F64)
    spikes = torch.tensor([[True, False, True], [False, True, False]])
    current = conn(spikes)
    # sample 0: inputs 0 and 2 -> out0 = 4*(0+2), out1 = 4*(3+5), out2 = 4*(6+0)
    # sample 1: input 1 -> out0 = 4*1, out1 = 0 (no self-connection), out2 = 4*7
    assert current.tolist() == [[8.0, 32.0, 24.0], [4.0, 0.0, 28.0]]
    assert current.dtype == F64


def test_lateral_inhibition_silences_the_other_neurons():
    # two LIF neurons with the same drive (R I = 20 mV, tau 20 ms); neuron 0 gets a head start
    # and fires first, about every 5 + 20 ln(15/7) = 20 ms. Each of its spikes kicks neuron 1 by
    # -1000 (1 - e^{-1/20}) = -48.8 mV, after which neuron 1 needs 20 ln(55/7) = 41 ms to reach
    # threshold again, so it never fires.
    lif = LIF(
        2,
        dt=1.0,
        rest_v=-65.0,
        reset_v=-60.0,
        thresh_v=-52.0,
        refrac_t=5.0,
        time_constant=20.0,
        dtype=F64,
    )
    inhibit = LateralConnection(2, dt=1.0, weight=-1000.0, dtype=F64)
    lif.voltage[0, 0] = -53.0
    drive = torch.full((1, 2), 20.0, dtype=F64)
    counts = torch.zeros(2, dtype=F64)
    lateral = torch.zeros(1, 2, dtype=F64)
    for _ in range(200):
        spikes = lif(drive + lateral)
        counts += spikes[0]
        lateral = inhibit(spikes)
        if spikes[0, 0]:
            assert lateral.tolist() == [[0.0, -1000.0]]
    assert counts[0] >= 9 and counts[1] == 0
    # without inhibition both fire at the same rate (within one spike)
    lif.reset_state()
    free = torch.zeros(2, dtype=F64)
    for _ in range(200):
        free += lif(drive)[0]
    assert free[1] > 5 and abs(free[0] - free[1]) <= 1


def test_direct_current_by_hand():
    conn = DirectConnection(
        3, dt=0.5, weight=torch.tensor([1.0, -2.0, 3.0]), scale=75.0, batch_size=2
    )
    spikes = torch.tensor([[True, True, False], [False, True, True]])
    assert conn(spikes).tolist() == [[150.0, -300.0, 0.0], [0.0, -300.0, 450.0]]
    number = DirectConnection(2, dt=1.0, weight=22.5)
    assert number.weight.tolist() == [22.5, 22.5] and number.delay is None
    assert number(torch.tensor([[True, False]])).tolist() == [[22.5, 0.0]]


def test_forward_does_not_modify_float_spikes_in_place():
    conn = DirectConnection(2, dt=0.5, weight=3.0)
    spikes = torch.tensor([[1.0, 0.0]])
    assert conn(spikes).tolist() == [[6.0, 0.0]]
    assert spikes.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize(
    "cls,kwargs,name",
    [
        (LateralConnection, {"n": 0, "dt": 1.0, "weight": 1.0}, "n must be"),
        (LateralConnection, {"n": 2, "dt": -1.0, "weight": 1.0}, "dt must be"),
        (LateralConnection, {"n": 2, "dt": 1.0, "weight": torch.ones(2, 3)}, "weight must have"),
        (LateralConnection, {"n": 2, "dt": 1.0, "weight": float("nan")}, "weight must be"),
        (DirectConnection, {"n": 2, "dt": 1.0, "weight": torch.ones(3)}, "weight must have"),
        (DirectConnection, {"n": 2, "dt": 1.0, "weight": 1.0, "scale": float("inf")}, "scale"),
        (DirectConnection, {"n": 2, "dt": 1.0, "weight": 1.0, "batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(cls, kwargs, name):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=name):
        cls(n, **kwargs)


def test_registry_names_and_batch_size():
    assert {"lateral": LateralConnection, "direct": DirectConnection} == CONNECTIONS
    conn = LateralConnection(2, dt=1.0, weight=1.0, batch_size=2)
    conn.set_batch_size(5)
    assert conn.batch_size == 5 and conn(torch.ones(5, 2, dtype=torch.bool)).shape == (5, 2)
    with pytest.raises(ValueError, match="batch_size"):
        conn.set_batch_size(0)


def test_forward_does_not_sync_with_the_host(no_host_sync):
    lateral = LateralConnection(4, dt=1.0, weight=-1.0, batch_size=2)
    direct = DirectConnection(4, dt=1.0, weight=2.0, batch_size=2)
    spikes = torch.tensor([[True, False, True, False], [False, False, True, True]])
    with no_host_sync():
        lateral(spikes)
        direct(spikes)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_eval_mode_delayed_current_equals_the_training_path(dtype: torch.dtype) -> None:
    """Eval mode stacks the per-lag weights into one matrix product; the currents are the
    training path's up to the order of summation (delays past max_delay transmit nothing)."""
    gen = torch.Generator().manual_seed(4)
    w = torch.rand(7, 30, generator=gen, dtype=dtype)
    d = torch.rand(7, 30, generator=gen, dtype=dtype) * 7.0  # some beyond max_delay = 6
    conns = [
        DenseConnection(30, 7, dt=0.5, batch_size=3, weight=w, delay=d, max_delay=6.0, scale=2.0)
        for _ in range(2)
    ]
    conns[1].eval()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for _ in range(40):
        x = torch.rand(3, 30, generator=gen) < 0.3
        train, frozen = conns[0](x), conns[1](x)
        assert torch.allclose(train, frozen, rtol=tol, atol=tol)
    conns[1].weight.data.mul_(2.0)  # a change of parameters between evaluations ...
    conns[1].train()
    conns[1].eval()  # ... is seen after the next switch to eval mode
    conns[0].weight.data.mul_(2.0)
    x = torch.rand(3, 30, generator=gen) < 0.3
    assert torch.allclose(conns[0](x), conns[1](x), rtol=tol, atol=tol)
