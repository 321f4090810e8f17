"""Poisson and Bernoulli encoders, the pattern in noise, pairings and npz spike trains.

Statistical checks use fixed seeds and 4-sigma bounds; the count of a stationary renewal process
whose intervals have a coefficient of variation <= 1 varies no more than a Poisson count, so
sqrt(expected count) bounds its standard deviation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runner.core.stimuli import (
    ENCODERS,
    PatternInNoise,
    bernoulli_encode,
    load_spike_trains,
    pairing_protocol,
    poisson_encode,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def intervals(train: torch.Tensor) -> torch.Tensor:
    """All interspike intervals (steps) of a [T, B, N] train, per element."""
    flat = train.reshape(train.shape[0], -1).T  # [elements, T]
    gaps = []
    for row in flat:
        times = row.nonzero().flatten()
        gaps.append(times.diff())
    return torch.cat(gaps)


@pytest.mark.parametrize("rate_hz", [10.0, 50.0, 127.5])
@pytest.mark.parametrize("refrac_ms,dt", [(0.0, 1.0), (2.0, 1.0), (0.0, 0.5), (1.2, 0.5)])
def test_poisson_rate_within_four_sigma(rate_hz, refrac_ms, dt):
    steps, batch, n = 400, 20, 100
    x = torch.full((batch, n), 0.5)
    spikes = poisson_encode(
        x, steps=steps, dt=dt, max_rate_hz=2 * rate_hz, refrac_ms=refrac_ms, generator=gen(1)
    )
    assert spikes.shape == (steps, batch, n) and spikes.dtype == torch.bool
    expected = batch * n * steps * dt * rate_hz / 1000.0
    assert abs(spikes.sum().item() - expected) < 4 * math.sqrt(expected)


def test_poisson_is_stationary_from_the_first_step():
    # 20,000 trains at 50 Hz: each of the first steps holds 0.05 spikes per train on average
    spikes = poisson_encode(
        torch.ones(200, 100), steps=5, dt=1.0, max_rate_hz=50.0, generator=gen(2)
    )
    per_step = spikes.reshape(5, -1).sum(dim=1).double()
    expected = 20_000 * 0.05
    assert (per_step - expected).abs().max() < 4 * math.sqrt(expected)


@pytest.mark.parametrize("refrac_ms,dt,min_steps", [(3.0, 1.0, 3), (1.2, 0.5, 3), (0.0, 1.0, 1)])
def test_poisson_refractory_is_honoured(refrac_ms, dt, min_steps):
    spikes = poisson_encode(
        torch.ones(4, 50),
        steps=500,
        dt=dt,
        max_rate_hz=150.0,
        refrac_ms=refrac_ms,
        generator=gen(3),
    )
    gaps = intervals(spikes)
    assert gaps.min().item() == min_steps  # reached, never undercut
    assert gaps.min().item() * dt >= refrac_ms


def test_poisson_rate_above_refractory_limit_is_clipped_to_a_regular_train():
    # 1000 / 500 Hz = 2 ms < 5 ms refractory: the train is regular at 1000 / 5 = 200 Hz
    spikes = poisson_encode(
        torch.ones(3, 40), steps=300, dt=1.0, max_rate_hz=500.0, refrac_ms=5.0, generator=gen(4)
    )
    assert set(intervals(spikes).tolist()) == {5}
    assert spikes.sum(dim=0).min().item() == 60 and spikes.sum(dim=0).max().item() == 60


def test_poisson_zero_negative_and_nan_intensity_give_no_spikes():
    x = torch.tensor([[0.0, -0.5, float("nan"), 1.0]])
    spikes = poisson_encode(x, steps=1000, dt=1.0, max_rate_hz=100.0, generator=gen(5))
    assert spikes[:, 0, :3].sum().item() == 0
    assert spikes[:, 0, 3].sum().item() > 50


def test_poisson_intensity_above_one_is_clipped():
    spikes = poisson_encode(
        torch.full((20, 50), 3.0), steps=400, dt=1.0, max_rate_hz=40.0, generator=gen(5)
    )
    expected = 20 * 50 * 400 * 40.0 / 1000.0
    assert abs(spikes.sum().item() - expected) < 4 * math.sqrt(expected)


def test_poisson_same_seed_same_spikes_and_flattening():
    x = torch.rand(3, 2, 4, generator=gen(6))
    a = poisson_encode(x, steps=50, dt=1.0, max_rate_hz=200.0, generator=gen(7))
    b = poisson_encode(x, steps=50, dt=1.0, max_rate_hz=200.0, generator=gen(7))
    c = poisson_encode(x, steps=50, dt=1.0, max_rate_hz=200.0, generator=gen(8))
    assert a.shape == (50, 3, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"steps": 0}, "steps"),
        ({"dt": 0.0}, "dt"),
        ({"max_rate_hz": -1.0}, "max_rate_hz"),
        ({"refrac_ms": -1.0}, "refrac_ms"),
        ({"refrac_ms": float("inf")}, "refrac_ms"),
    ],
)
def test_poisson_rejects_bad_arguments(kwargs, name):
    args = {"steps": 10, "dt": 1.0, "max_rate_hz": 10.0} | kwargs
    with pytest.raises(ValueError, match=name):
        poisson_encode(torch.ones(1, 1), **args)


def test_encoder_names():
    assert {"poisson": poisson_encode, "bernoulli": bernoulli_encode} == ENCODERS


def test_bernoulli_rate_and_saturation():
    x = torch.full((50, 100), 0.25)
    spikes = bernoulli_encode(x, steps=200, dt=1.0, max_rate_hz=200.0, generator=gen(9))
    p, trials = 0.05, 200 * 50 * 100
    assert abs(spikes.sum().item() - p * trials) < 4 * math.sqrt(trials * p * (1 - p))
    full = bernoulli_encode(
        torch.ones(2, 3), steps=10, dt=1.0, max_rate_hz=5000.0, generator=gen(9)
    )
    assert full.all()
    assert not bernoulli_encode(torch.zeros(2, 3), steps=10, dt=1.0, max_rate_hz=50.0).any()


def make_pattern(seed: int = 10, **overrides) -> PatternInNoise:
    params = dict(
        dt=1.0,
        pattern_fraction=0.5,
        pattern_ms=50.0,
        background_hz=30.0,
        pattern_rate_hz=5.0,
        min_gap_ms=50.0,
        generator=gen(seed),
    )
    params.update(overrides)
    return PatternInNoise(400, **params)


def test_pattern_is_copied_in_after_every_onset():
    stim = make_pattern()
    assert stim.pattern.shape == (50, 400) and stim.pattern_mask.sum().item() == 200
    assert not stim.pattern[:, ~stim.pattern_mask].any()
    spikes, onsets = stim.sample(3000, 3)
    assert spikes.shape == (3000, 3, 400) and onsets.shape == (3000, 3)
    mask = stim.pattern_mask
    for b in range(3):
        starts = onsets[:, b].nonzero().flatten().tolist()
        assert len(starts) >= 5
        assert starts[0] >= 50 and starts[-1] + 50 <= 3000  # gap first, and the pattern fits
        assert min(b2 - b1 for b1, b2 in zip(starts, starts[1:], strict=False)) >= 100
        for t in starts:
            assert torch.equal(spikes[t : t + 50, b][:, mask], stim.pattern[:, mask])


def test_pattern_onset_rate_and_rates_inside_and_outside_match():
    stim = make_pattern(seed=11, background_hz=(10.0, 60.0))
    assert stim.rates.min().item() >= 10.0 and stim.rates.max().item() <= 60.0
    steps, batch = 20_000, 4
    spikes, onsets = stim.sample(steps, batch)
    # mean onset interval 1000 / 5 Hz = 200 ms: 100 onsets per 20 s per sample (Poisson-like)
    n_onsets = onsets.sum().item()
    assert abs(n_onsets - 400) < 4 * math.sqrt(400)
    # inside vs outside the pattern windows, for pattern and for other afferents
    inside = torch.zeros(steps, batch, dtype=torch.bool)
    for t, b in onsets.nonzero().tolist():
        inside[t : t + 50, b] = True
    mask = stim.pattern_mask
    for group in (mask, ~mask):
        rate_in = spikes[inside][:, group].double().mean() * 1000
        rate_out = spikes[~inside][:, group].double().mean() * 1000
        expected = stim.rates[group].double().mean()
        assert abs(rate_out / expected - 1) < 0.05
        assert abs(rate_in / expected - 1) < 0.15


def test_pattern_same_seed_same_stream():
    a, b = make_pattern(seed=12), make_pattern(seed=12)
    assert torch.equal(a.pattern, b.pattern) and torch.equal(a.pattern_mask, b.pattern_mask)
    assert all(torch.equal(x, y) for x, y in zip(a.sample(500, 2), b.sample(500, 2), strict=True))
    assert "pattern" in a.state_dict() and "rates" in a.state_dict()


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"pattern_rate_hz": 20.0}, "pattern_rate_hz=20.0 is too high .* at most 10 Hz"),
        ({"pattern_fraction": 0.0}, "pattern_fraction"),
        ({"background_hz": (5.0, 1.0)}, "background_hz"),
        ({"background_hz": 0.0}, "background_hz"),
        ({"pattern_ms": -5.0}, "pattern_ms"),
        ({"min_gap_ms": -1.0}, "min_gap_ms"),
    ],
)
def test_pattern_rejects_bad_arguments(overrides, match):
    with pytest.raises(ValueError, match=match):
        make_pattern(**overrides)


@pytest.mark.parametrize("delta_t_ms", [10.0, -10.0, 0.0, 4.5])
def test_pairing_protocol_times_are_exact(delta_t_ms):
    pre, post = pairing_protocol(dt=0.5, delta_t_ms=delta_t_ms, n_pairings=5, frequency_hz=20.0)
    assert pre.shape == post.shape and pre.shape[1:] == (1, 1) and pre.dtype == torch.bool
    pre_steps = pre.flatten().nonzero().flatten().tolist()
    post_steps = post.flatten().nonzero().flatten().tolist()
    # pre at 10 + 50 k ms = step 20 + 100 k; post delta_t / dt steps later
    assert pre_steps == [20 + 100 * k for k in range(5)]
    assert post_steps == [s + round(delta_t_ms / 0.5) for s in pre_steps]
    # the trains end one period (100 steps) after the last spike
    assert pre.shape[0] == max(pre_steps[-1], post_steps[-1]) + 100


def test_pairing_protocol_rejects_off_grid_and_early_post():
    with pytest.raises(ValueError, match="delta_t_ms must be a multiple of dt"):
        pairing_protocol(dt=1.0, delta_t_ms=2.5, n_pairings=3, frequency_hz=1.0)
    with pytest.raises(ValueError, match="offset_ms \\+ delta_t_ms must be >= 0"):
        pairing_protocol(dt=1.0, delta_t_ms=-20.0, n_pairings=3, frequency_hz=1.0)
    with pytest.raises(ValueError, match="n_pairings"):
        pairing_protocol(dt=1.0, delta_t_ms=5.0, n_pairings=0, frequency_hz=1.0)


def test_load_spike_trains_round_trip(tmp_path):
    pre = np.random.default_rng(0).random((20, 2, 3)) < 0.3
    post = np.zeros((20, 2, 1), dtype=bool)
    np.savez(tmp_path / "ok.npz", pre_spikes=pre, post_spikes=post, note=np.array([1.0]))
    loaded = load_spike_trains(tmp_path / "ok.npz")
    assert set(loaded) == {"pre_spikes", "post_spikes"}
    assert loaded["pre_spikes"].dtype == torch.bool
    assert np.array_equal(loaded["pre_spikes"].numpy(), pre)
    np.savez(tmp_path / "pre_only.npz", pre_spikes=pre)
    assert set(load_spike_trains(str(tmp_path / "pre_only.npz"))) == {"pre_spikes"}


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"post_spikes": np.zeros((2, 1, 1), bool)}, "has no 'pre_spikes'"),
        ({"pre_spikes": np.zeros((2, 1, 1), np.uint8)}, "'pre_spikes' must be a 3-d bool.*uint8"),
        ({"pre_spikes": np.zeros((2, 1), bool)}, "'pre_spikes' must be a 3-d bool.*\\[2, 1\\]"),
        (
            {"pre_spikes": np.zeros((2, 1, 1), bool), "post_spikes": np.zeros((3, 1, 1), bool)},
            "must share \\[T, B\\]",
        ),
        ({"pre_spikes": np.array([{"a": 1}], dtype=object)}, "needs pickle"),
    ],
)
def test_load_spike_trains_errors_name_the_file(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match) as info:
        load_spike_trains(path)
    assert "bad.npz" in str(info.value)


def test_load_spike_trains_missing_and_not_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_spike_trains(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz"):
        load_spike_trains(tmp_path / "text.npz")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_poisson_and_pattern_on_cuda():
    cuda_gen = torch.Generator(device="cuda").manual_seed(13)
    x = torch.full((20, 100), 0.5, device="cuda")
    spikes = poisson_encode(
        x, steps=400, dt=1.0, max_rate_hz=255.0, refrac_ms=2.0, generator=cuda_gen
    )
    assert spikes.device.type == "cuda"
    expected = 20 * 100 * 400 * 127.5 / 1000.0
    assert abs(spikes.sum().item() - expected) < 4 * math.sqrt(expected)
    assert intervals(spikes.cpu()).min().item() == 2
    stim = make_pattern(generator=torch.Generator(device="cuda").manual_seed(14))
    assert stim.pattern.device.type == "cuda"
    spikes, onsets = stim.sample(1000, 2)
    for t, b in onsets.nonzero().tolist():
        assert torch.equal(
            spikes[t : t + 50, b][:, stim.pattern_mask], stim.pattern[:, stim.pattern_mask]
        )
