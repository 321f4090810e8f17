"""LIF, ALIF and ForcedPopulation against closed forms and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from runner.core.neurons import ALIF, LIF, NEURONS, ForcedPopulation, whole_steps

F64 = torch.float64


LIF_PARAMS = dict(
    dt=1.0, rest_v=-65.0, reset_v=-60.0, thresh_v=-52.0, refrac_t=5.0, time_constant=100.0
)


def make_lif(n: int = 1, batch_size: int = 1, **overrides) -> LIF:
    return LIF(n, **{**LIF_PARAMS, "batch_size": batch_size, "dtype": F64, **overrides})


def make_alif(n: int = 1, batch_size: int = 1, **overrides) -> ALIF:
    params = {**LIF_PARAMS, "tc_adaptation": 20.0, "spike_increment": 0.5}
    return ALIF(n, **{**params, "batch_size": batch_size, "dtype": F64, **overrides})


def spike_steps(neuron, current: torch.Tensor, steps: int) -> list[int]:
    """Steps at which neuron 0 of sample 0 spiked under a constant current."""
    return [t for t in range(steps) if bool(neuron(current)[0, 0])]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 1e-4)])
def test_lif_subthreshold_trajectory_matches_closed_form(dtype, tol):
    # R I = 2 * 5 = 10 mV: v -> -55 < -52, never fires; dt 0.5, tau 20
    lif = make_lif(dt=0.5, time_constant=20.0, resistance=2.0, dtype=dtype)
    current = torch.full((1, 1), 5.0, dtype=dtype)
    for t in range(1, 201):
        assert not lif(current).any()
        expected = -65.0 + 10.0 * (1.0 - math.exp(-t * 0.5 / 20.0))
        assert abs(float(lif.voltage[0, 0]) - expected) < tol


@pytest.mark.parametrize("refrac_t,k", [(0.0, 0), (1.0, 1), (3.0, 3), (2.5, 3)])
def test_lif_interspike_interval_matches_closed_form(refrac_t, k):
    # R I = 20 mV: from reset -60 towards -45, crossing -52 after t* = tau ln(15 / 7)
    lif = make_lif(refrac_t=refrac_t, time_constant=20.0)
    t_star = 20.0 * math.log((-60.0 + 65.0 - 20.0) / (-52.0 + 65.0 - 20.0))
    integrate = math.ceil(t_star / 1.0)  # 15.24 -> 16 steps from reset to threshold
    times = spike_steps(lif, torch.full((1, 1), 20.0, dtype=F64), 200)
    intervals = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert intervals == {max(k - 1, 0) + integrate}
    # first spike from rest: v(t) = rest + R I (1 - exp(-t / tau)) crosses -52 at tau ln(20/7)
    assert times[0] == math.ceil(20.0 * math.log(20.0 / 7.0)) - 1  # step index t-1


@pytest.mark.parametrize("refrac_t,dt,expected_isi", [(5.0, 1.0, 5), (0.3, 0.1, 3), (1.1, 0.1, 11)])
def test_refractory_blocks_k_minus_one_steps(refrac_t, dt, expected_isi):
    # a huge current fires on every step the neuron is not refractory
    lif = make_lif(refrac_t=refrac_t, dt=dt)
    big = torch.full((1, 1), 1e7, dtype=F64)
    times = spike_steps(lif, big, 40)
    assert times == list(range(0, 40, expected_isi))
    assert whole_steps(refrac_t, dt) == expected_isi


def test_refractory_neuron_ignores_input_and_stays_at_reset():
    lif = make_lif(refrac_t=4.0)
    lif(torch.full((1, 1), 1e7, dtype=F64))
    assert bool(lif.spike[0, 0]) and float(lif.voltage[0, 0]) == -60.0
    for _ in range(3):  # blocked for 4 - 1 steps
        assert not lif(torch.full((1, 1), 1e7, dtype=F64)).any()
        assert float(lif.voltage[0, 0]) == -60.0
    assert lif(torch.full((1, 1), 1e7, dtype=F64)).all()


def test_zero_refractory_does_not_spike_every_step():
    lif = make_lif(n=4, batch_size=2, refrac_t=0.0)
    for _ in range(50):
        out = lif(torch.zeros(2, 4, dtype=F64))
        assert not out.any() and not lif.spike.any()
    # with a moderate drive the output is the real, periodic one: spikes on few steps only
    lif.reset_state()
    times = spike_steps(lif, torch.full((2, 4), 20.0, dtype=F64), 300)
    assert len(times) == 3  # first at ceil(100 ln(20/7)) - 1 = 104, then every ceil(100 ln(15/7))
    assert times == [104, 104 + 77, 104 + 2 * 77]


def test_forward_returns_the_spike_buffer_and_reset_state_restores_rest():
    lif = make_lif(n=3, batch_size=2)
    out = lif(torch.tensor([[1e7, 0.0, 1e7], [0.0, 1e7, 0.0]], dtype=F64))
    assert out is lif.spike
    assert out.tolist() == [[True, False, True], [False, True, False]]
    assert lif.refrac[0, 0] == pytest.approx(5.0)
    lif.reset_state()
    assert torch.equal(lif.voltage, torch.full((2, 3), -65.0, dtype=F64))
    assert not lif.refrac.any() and not lif.spike.any()


def test_set_batch_size_reallocates_state():
    lif = make_lif(n=3, batch_size=2)
    lif.set_batch_size(5)
    assert lif.voltage.shape == lif.refrac.shape == lif.spike.shape == (5, 3)
    assert lif(torch.zeros(5, 3, dtype=F64)).shape == (5, 3)
    assert set(lif.state_dict()) == {"voltage", "refrac", "spike"}


@pytest.mark.parametrize(
    "overrides,name",
    [
        ({"rest_v": -50.0}, "rest_v"),
        ({"reset_v": -52.0}, "reset_v"),
        ({"time_constant": 0.0}, "time_constant"),
        ({"refrac_t": -1.0}, "refrac_t"),
        ({"dt": 0.0}, "dt"),
        ({"resistance": -1.0}, "resistance"),
        ({"batch_size": 0}, "batch_size"),
        ({"dtype": torch.int32}, "dtype"),
    ],
)
def test_lif_rejects_bad_arguments(overrides, name):
    with pytest.raises(ValueError, match=name):
        make_lif(**overrides)


def test_alif_theta_grows_by_batch_mean_of_increments():
    alif = make_alif(n=2, batch_size=2, tc_adaptation=1e7, spike_increment=0.05)
    alif(torch.tensor([[1e7, 0.0], [1e7, 1e7]], dtype=F64))
    assert alif.theta.tolist() == pytest.approx([0.05, 0.025], abs=1e-12)


def test_alif_matches_inferno_worked_example():
    # SEMANTICS 8.2: mean([1 + 0.5, e^{-1/20}]) = 1.22561; the spiking sample is refractory
    # after the step and keeps its theta, the silent one decays
    alif = make_alif(n=1, batch_size=2)
    alif.theta.fill_(1.0)
    alif.voltage.fill_(-40.0)  # above thresh + theta: fires without input
    alif.voltage[1] = -65.0
    alif(torch.zeros(2, 1, dtype=F64))
    assert alif.spike[:, 0].tolist() == [True, False]
    assert float(alif.theta[0]) == pytest.approx((1.5 + math.exp(-1 / 20)) / 2, abs=1e-12)
    assert float(alif.theta[0]) == pytest.approx(1.22561, abs=1e-5)


def test_alif_theta_decays_exponentially_and_is_held_while_refractory():
    alif = make_alif(refrac_t=3.0)  # blocked at steps 1, 2; integrates again at step 3
    alif.theta.fill_(1.0)
    decay = math.exp(-1.0 / 20.0)
    alif(torch.full((1, 1), 1e7, dtype=F64))
    assert float(alif.theta[0]) == pytest.approx(1.5, abs=1e-12)
    zero = torch.zeros(1, 1, dtype=F64)
    alif(zero)
    alif(zero)
    assert float(alif.theta[0]) == pytest.approx(1.5, abs=1e-12)
    for n in range(1, 30):
        alif(zero)
        assert float(alif.theta[0]) == pytest.approx(1.5 * decay**n, rel=1e-12)


def test_alif_threshold_includes_theta():
    # steady state rest + R I = -50 > -52: LIF fires, ALIF with theta = 5 (threshold -47) not
    current = torch.full((1, 1), 15.0, dtype=F64)
    alif = make_alif(tc_adaptation=1e7).eval()
    alif.theta.fill_(5.0)
    assert spike_steps(alif, current, 1000) == []
    alif.theta.fill_(0.0)
    assert len(spike_steps(alif, current, 1000)) > 0


def test_alif_eval_mode_freezes_theta_and_reset_state_keeps_it():
    alif = make_alif(n=3, batch_size=2)
    alif.theta.copy_(torch.tensor([0.1, 0.2, 0.3], dtype=F64))
    alif.eval()
    for _ in range(20):
        alif(torch.full((2, 3), 1e7, dtype=F64))
    assert alif.theta.tolist() == pytest.approx([0.1, 0.2, 0.3], abs=0)
    alif.train()
    alif(torch.full((2, 3), 1e7, dtype=F64))
    learned = alif.theta.clone()
    assert learned.tolist() == pytest.approx([0.6, 0.7, 0.8], abs=1e-12)
    alif.reset_state()
    assert torch.equal(alif.theta, learned)
    assert "theta" in alif.state_dict()
    alif.reset_adaptation()
    assert not alif.theta.any()


def test_alif_rejects_bad_adaptation_arguments():
    with pytest.raises(ValueError, match="tc_adaptation"):
        make_alif(tc_adaptation=0.0)
    with pytest.raises(ValueError, match="spike_increment"):
        make_alif(spike_increment=-0.1)


def test_registry_names():
    assert {"lif": LIF, "alif": ALIF, "forced": ForcedPopulation} == NEURONS


def test_forced_population_emits_given_spikes():
    pop = ForcedPopulation(3, batch_size=2, dt=1.0)
    given = torch.tensor([[True, False, True], [False, False, True]])
    out = pop(given)
    assert out is pop.spike and torch.equal(out, given)
    numbers = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    assert pop(numbers).tolist() == [[False, True, False], [True, False, False]]
    pop.reset_state()
    assert not pop.spike.any()
    pop.set_batch_size(4)
    assert pop.spike.shape == (4, 3)


def test_steps_do_not_sync_with_the_host(no_host_sync):
    lif, alif = make_lif(n=4, batch_size=3), make_alif(n=4, batch_size=3)
    pop = ForcedPopulation(4, batch_size=3)
    current = torch.full((3, 4), 30.0, dtype=F64)
    with no_host_sync():
        for _ in range(10):
            lif(current)
            alif(current)
            pop(lif.spike)


def test_steps_compile_without_graph_breaks():
    lif, alif = make_lif(n=4, batch_size=3, refrac_t=2.0), make_alif(n=4, batch_size=3)
    ref_lif, ref_alif = make_lif(n=4, batch_size=3, refrac_t=2.0), make_alif(n=4, batch_size=3)
    step_lif = torch.compile(lif, fullgraph=True, backend="eager")
    step_alif = torch.compile(alif, fullgraph=True, backend="eager")
    current = torch.linspace(0.0, 40.0, 12, dtype=F64).reshape(3, 4)
    for _ in range(30):
        assert torch.equal(step_lif(current), ref_lif(current))
        assert torch.equal(step_alif(current), ref_alif(current))
    assert torch.equal(alif.theta, ref_alif.theta)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_steps_match_cpu_and_do_not_sync():
    cpu = [make_lif(n=8, batch_size=4, refrac_t=2.0), make_alif(n=8, batch_size=4)]
    gpu = [
        make_lif(n=8, batch_size=4, refrac_t=2.0, device="cuda"),
        make_alif(n=8, batch_size=4, device="cuda"),
    ]
    current = torch.linspace(0.0, 60.0, 32, dtype=F64).reshape(4, 8)
    current_cuda = current.cuda()
    recorded = torch.zeros(50, 2, 4, 8, dtype=torch.bool, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        for t in range(50):
            for k, neuron in enumerate(gpu):
                recorded[t, k].copy_(neuron(current_cuda))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for t in range(50):
        for k, neuron in enumerate(cpu):
            assert torch.equal(neuron(current), recorded[t, k].cpu())
    assert torch.allclose(gpu[1].theta.cpu(), cpu[1].theta, rtol=1e-12, atol=0)
    assert torch.allclose(gpu[0].voltage.cpu(), cpu[0].voltage, rtol=1e-12, atol=1e-12)
