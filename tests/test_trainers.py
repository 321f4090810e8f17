"""Semantics of the learning core, from the worked examples and test ideas in SEMANTICS.md."""

from __future__ import annotations

import math

import pytest
import torch

from runner.core.ages import SpikeAges
from runner.core.dense import DenseConnection
from runner.core.trainers import (
    DelayAdjustedKernelSTDP,
    DelayAdjustedKernelSTDPD,
    KernelSTDP,
    KernelTrainer,
)
from runner.core.updater import Bound

EXP = {"kernel_post": "exp_stdp_post", "kernel_pre": "exp_stdp_pre"}
HEBB = {
    **EXP,
    "kernel_post_kwargs": {"learning_rate": 1.0, "time_constant": 10.0},
    "kernel_pre_kwargs": {"learning_rate": -0.5, "time_constant": 10.0},
}


def make(
    n_in: int,
    n_out: int,
    *,
    batch: int = 1,
    dt: float = 1.0,
    max_delay=None,
    delay=None,
    dtype=torch.float64,
) -> tuple[DenseConnection, SpikeAges]:
    conn = DenseConnection(
        n_in,
        n_out,
        dt=dt,
        batch_size=batch,
        weight=torch.zeros(n_out, n_in, dtype=dtype),
        max_delay=max_delay,
        delay=delay,
        dtype=dtype,
    )
    return conn, SpikeAges((batch, n_out), dt=dt, dtype=dtype)


def step_parts(
    conn: DenseConnection,
    post: SpikeAges,
    trainers: list[KernelTrainer],
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Run one step; return the net update (pos - neg) pushed to each parameter, then clear."""
    conn(pre_spikes)
    post.observe(post_spikes)
    for trainer in trainers:
        trainer()
    net = {}
    for name, upd in conn.updaters.items():
        pos, neg = upd.accumulated()
        net[name] = (pos - neg).clone()
        upd.clear()
    return net


def spikes(n: int, *on: int) -> torch.Tensor:
    x = torch.zeros(1, n, dtype=torch.bool)
    x[0, list(on)] = True
    return x


def test_ages_nan_before_first_spike_zero_on_spike_then_dt() -> None:
    ages = SpikeAges((1, 2), dt=0.5, dtype=torch.float64)
    ages.observe(torch.tensor([[True, False]]))
    assert ages.age[0, 0] == 0 and math.isnan(ages.age[0, 1])
    ages.observe(torch.tensor([[False, False]]))
    assert ages.age[0, 0] == 0.5 and math.isnan(ages.age[0, 1])


def test_float32_ages_accumulate_by_repeated_addition() -> None:
    ages = SpikeAges((1, 1), dt=0.1, dtype=torch.float32)
    ages.observe(torch.tensor([[True]]))
    for _ in range(1000):
        ages.observe(torch.tensor([[False]]))
    assert ages.age.item() == pytest.approx(99.99905, abs=2e-5)
    assert ages.age.item() != pytest.approx(100.0, abs=1e-5)


def test_worked_example_constant_update_between_spikes() -> None:
    """SEMANTICS 1.3: pre 0 at step 1, pre 1 at step 4, post at step 3."""
    conn, post = make(2, 1)
    trainer = KernelSTDP(**HEBB)
    trainer.register_cell("c", conn, post)
    dw = []
    for t in range(8):
        pre = spikes(2, *([0] if t == 1 else [1] if t == 4 else []))
        dw.append(
            step_parts(conn, post, [trainer], pre, spikes(1, 0) if t == 3 else spikes(1))["weight"]
        )
    assert all(torch.equal(dw[t], torch.zeros(1, 2, dtype=torch.float64)) for t in range(3))
    for t in range(3, 8):
        assert dw[t][0, 0].item() == pytest.approx(math.exp(-0.2), rel=1e-12)
    for t in range(4, 8):
        assert dw[t][0, 1].item() == pytest.approx(-0.5 * math.exp(-0.1), rel=1e-12)


def test_worked_comparison_of_the_three_rules_with_delays() -> None:
    """SEMANTICS 6.4: delays 2.0 and 2.5, pre at steps 1 and 3, post at step 4, sum reduction."""
    expected = {  # step -> rule -> (out0, out1)
        4: {"off": (0.9048, 1.0), "on": (0.9048, 0.9512), "dak": (-0.4524, -0.4304)},
        6: {"off": (-0.4524, -0.4094), "on": (-0.4524, -0.4304), "dak": (-0.4524, -0.4304)},
    }
    results: dict[str, dict[int, torch.Tensor]] = {}
    for rule in ("off", "on", "dak", "dakd"):
        conn, post = make(
            1, 2, max_delay=4.0, delay=torch.tensor([[2.0], [2.5]], dtype=torch.float64)
        )
        kwargs = {**HEBB, "batch_reduction": "sum"}
        trainer: KernelTrainer
        if rule in ("off", "on"):
            trainer = KernelSTDP(**kwargs, delayed=rule == "on")
        elif rule == "dak":
            trainer = DelayAdjustedKernelSTDP(**kwargs)
        else:
            trainer = DelayAdjustedKernelSTDPD(**kwargs)
        trainer.register_cell("c", conn, post)
        results[rule] = {}
        for t in range(7):
            pre = spikes(1, 0) if t in (1, 3) else spikes(1)
            net = step_parts(conn, post, [trainer], pre, spikes(2, 0, 1) if t == 4 else spikes(2))
            results[rule][t] = net["delay" if rule == "dakd" else "weight"][:, 0]
    for t, rules in expected.items():
        for rule, values in rules.items():
            assert results[rule][t].tolist() == pytest.approx(values, abs=1e-4), (rule, t)
        assert torch.equal(results["dakd"][t], results["dak"][t])


@pytest.mark.parametrize(("delay", "arrival_step"), [(0.0, 1), (1.0, 2), (1.5, 3), (2.4, 4)])
def test_non_integer_delays_round_up_to_whole_steps(delay: float, arrival_step: int) -> None:
    conn, _ = make(1, 1, max_delay=3.0, delay=torch.tensor([[delay]], dtype=torch.float64))
    conn.weight.data.fill_(1.0)
    currents = [conn(spikes(1, 0) if t == 1 else spikes(1))[0, 0].item() for t in range(6)]
    assert [t for t, c in enumerate(currents) if c != 0] == [arrival_step]


def test_out_of_range_delay_transmits_nothing() -> None:
    conn, _ = make(1, 2, max_delay=2.0, delay=torch.tensor([[-0.5], [2.5]], dtype=torch.float64))
    conn.weight.data.fill_(1.0)
    assert (
        sum(conn(spikes(1, 0) if t == 0 else spikes(1)).abs().sum().item() for t in range(5)) == 0
    )


def test_continuous_view_reads_age_at_exact_delay() -> None:
    """Spike at step 1, d = 2.5, at step 4: the view is 0.5 (SEMANTICS 2.6)."""
    conn, post = make(1, 1, max_delay=4.0, delay=torch.tensor([[2.5]], dtype=torch.float64))
    trainer = KernelSTDP(**HEBB, delayed=True)
    cell = trainer.register_cell("c", conn, post)
    for t in range(5):
        conn(spikes(1, 0) if t == 1 else spikes(1))
        post.observe(spikes(1, 0) if t == 4 else spikes(1))
    assert trainer.time_difference(cell)[0, 0, 0].item() == pytest.approx(0.5, abs=1e-12)


def _random_run(
    trainers: list[KernelTrainer], conn: DenseConnection, post: SpikeAges, steps: int, seed: int
) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        pre = torch.rand(conn.batch_size, conn.n_in, generator=gen) < 0.3
        post_spk = torch.rand(conn.batch_size, conn.n_out, generator=gen) < 0.3
        out.append(step_parts(conn, post, trainers, pre, post_spk))
    return out


@pytest.mark.parametrize("delayed", [False, True])
def test_kernel_stdp_equals_delay_adjusted_with_zero_delays(delayed: bool) -> None:
    runs = []
    for cls in (KernelSTDP, DelayAdjustedKernelSTDP):
        conn, post = make(5, 4, batch=3, dt=0.9, max_delay=6.0)
        extra = {"delayed": delayed} if cls is KernelSTDP else {}
        trainer = cls(**HEBB, batch_reduction="sum", **extra)
        trainer.register_cell("c", conn, post)
        runs.append(_random_run([trainer], conn, post, 25, seed=3))
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a["weight"], b["weight"], rtol=0, atol=1e-12)
    assert any(r["weight"].abs().sum() > 0 for r in runs[0])


def test_per_cell_override_beats_trainer_default() -> None:
    conn, post = make(1, 1)
    trainer = KernelSTDP(**HEBB)
    over = trainer.register_cell(
        "c",
        conn,
        post,
        kernel_post_kwargs={"learning_rate": 3.0, "time_constant": 10.0},
        batch_reduction="sum",
    )
    assert over.kernel_post_kwargs.as_dict()["learning_rate"] == 3.0
    assert over.batch_reduction.__name__ == "batch_sum"
    net = step_parts(conn, post, [trainer], spikes(1, 0), spikes(1, 0))
    assert net["weight"].item() == pytest.approx(3.0)
    conn2, post2 = make(1, 1)
    default = trainer.register_cell("d", conn2, post2)
    assert default.kernel_post_kwargs.as_dict()["learning_rate"] == 1.0


def test_unknown_override_is_rejected() -> None:
    conn, post = make(1, 1)
    with pytest.raises(ValueError, match="unknown override"):
        DelayAdjustedKernelSTDP(**HEBB).register_cell("c", conn, post, delayed=True)


def test_tensor_kwargs_are_buffers_that_follow_the_module() -> None:
    conn, post = make(3, 2)
    lr = torch.full((2, 3), 0.5, dtype=torch.float64)
    trainer = KernelSTDP(
        **{**HEBB, "kernel_post_kwargs": {"learning_rate": lr, "time_constant": 5.0}}
    )
    trainer.register_cell("c", conn, post)
    assert "cells.c.kernel_post_kwargs.learning_rate" in trainer.state_dict()
    lr.fill_(9.0)  # defaults are cloned per cell
    trainer.to(torch.float32)
    stored = trainer.cells["c"].kernel_post_kwargs.learning_rate
    assert stored.dtype == torch.float32 and stored.max().item() == 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_trainer_step_runs_on_cuda_and_matches_cpu() -> None:
    results = []
    for device in ("cpu", "cuda"):
        conn, post = make(6, 3, batch=2, max_delay=3.0)
        conn.delay.data.uniform_(0, 3, generator=torch.Generator().manual_seed(0))
        conn.to(device)
        post.to(device)
        trainer = DelayAdjustedKernelSTDP(**HEBB).to(device)
        trainer.register_cell("c", conn, post)
        gen = torch.Generator().manual_seed(1)
        for _ in range(10):
            conn((torch.rand(2, 6, generator=gen) < 0.3).to(device))
            post.observe((torch.rand(2, 3, generator=gen) < 0.3).to(device))
            trainer()
            conn.apply_updates()
        results.append(conn.weight.cpu())
    torch.testing.assert_close(results[0], results[1])


def test_custom_batch_reduction_is_used_as_given() -> None:
    calls = []

    def second(x: torch.Tensor, dim: int) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x.select(dim, 1)

    conn, post = make(1, 1, batch=2)
    trainer = KernelSTDP(**HEBB, batch_reduction=second)
    trainer.register_cell("c", conn, post)
    net = step_parts(
        conn, post, [trainer], torch.tensor([[True], [True]]), torch.tensor([[False], [True]])
    )
    assert calls == [(2, 1, 1)] * 4
    assert net["weight"].item() == pytest.approx(1.0)


def test_two_trainer_calls_before_one_update_sum() -> None:
    conn, post = make(1, 1)
    trainer = KernelSTDP(**HEBB)
    trainer.register_cell("c", conn, post)
    conn(spikes(1, 0))
    post.observe(spikes(1, 0))
    trainer()
    trainer()
    conn.apply_updates()
    assert conn.weight.item() == pytest.approx(2.0)


def test_sharp_bound_blocks_updates_exactly_at_the_limit_and_clamps_apply() -> None:
    conn, post = make(2, 1)
    conn.weight.data = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    trainer = KernelSTDP(**HEBB)
    trainer.register_cell("c", conn, post)
    conn.updater("weight").configure(upper=Bound("sharp", 1.0), clamp_max=1.2)
    conn(spikes(2, 0, 1))
    post.observe(spikes(1, 0))
    trainer()
    conn.apply_updates()
    assert conn.weight.tolist() == [[1.0, 1.2]]


def test_multiplicative_soft_bound_and_mean_accumulation() -> None:
    conn, post = make(1, 1)
    conn.weight.data.fill_(0.25)
    trainer = KernelSTDP(**HEBB)
    trainer.register_cell("c", conn, post)
    conn.updater("weight").configure(accumulate="mean", upper=Bound("multiplicative", 1.0))
    conn(spikes(1, 0))
    post.observe(spikes(1, 0))
    trainer()
    trainer()
    conn.apply_updates()  # mean of two pushes of +1 -> P = 1; w += (1 - 0.25) * 1
    assert conn.weight.item() == pytest.approx(1.0)


def test_delay_adjusted_needs_a_delayed_connection() -> None:
    conn, post = make(1, 1)
    with pytest.raises(ValueError, match="needs a connection with delays"):
        DelayAdjustedKernelSTDPD(**HEBB).register_cell("c", conn, post)


def test_eval_mode_pushes_nothing() -> None:
    conn, post = make(1, 1)
    trainer = KernelSTDP(**HEBB)
    trainer.register_cell("c", conn, post)
    trainer.eval()
    conn(spikes(1, 0))
    post.observe(spikes(1, 0))
    trainer()
    assert not conn.updater("weight").pending()
