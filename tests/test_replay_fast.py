"""The fast replay path: ``DenseConnection.observe``, the lean ``stdp-run replay`` process."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from runner.core.dense import DenseConnection
from runner.replay import keep_freed_memory, replay_case

GOLDEN = Path(__file__).parent / "data" / "golden"
#: KernelSTDP(delayed=True) plus DelayAdjustedKernelSTDPD on fractional delays.
DELAYED_CASE = GOLDEN / "p08_combined_kstdp_delayed_plus_stdpd.npz"
ROOT = Path(__file__).resolve().parents[1]


def _connection(max_delay: float | None, dt: float, *, track: bool) -> DenseConnection:
    gen = torch.Generator().manual_seed(7)
    n_in, n_out, batch = 6, 4, 3
    delay = None
    if max_delay is not None:
        delay = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * max_delay
    conn = DenseConnection(
        n_in,
        n_out,
        dt=dt,
        batch_size=batch,
        weight=torch.rand(n_out, n_in, generator=gen, dtype=torch.float64),
        delay=delay,
        max_delay=max_delay,
    )
    conn.track_pre_ages()
    if track and conn.delays_active:
        conn.track_age_history()
        conn.track_arrival_ages()
    return conn


@pytest.mark.parametrize(
    ("max_delay", "dt", "track"),
    [
        (None, 1.0, False),  # no delay parameter
        (0.0, 1.0, False),  # delays exist but are inactive
        (5.0, 0.5, True),  # 11 steps of history: SpikeBits
        (40.0, 1.0, True),  # 41 steps of history: a bool History
        (5.0, 0.5, False),  # delayed, nothing tracked per synapse
    ],
)
def test_observe_leaves_the_same_state_as_forward(
    max_delay: float | None, dt: float, track: bool
) -> None:
    stepped, observed = (
        _connection(max_delay, dt, track=track),
        _connection(max_delay, dt, track=track),
    )
    gen = torch.Generator().manual_seed(3)
    for _ in range(60):
        spikes = torch.rand(3, 6, generator=gen) < 0.3
        stepped(spikes)
        assert observed.observe(spikes) is None
    ours, ref = observed.state_dict(), stepped.state_dict()
    assert list(ours) == list(ref)
    for key, value in ref.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0, equal_nan=True, msg=key)
    # not vacuous: spikes were seen, and per-synapse arrivals when they are tracked
    assert torch.isfinite(ours["pre_ages.age"]).any()
    if track:
        assert torch.isfinite(ours["arrival_ages.age"]).any()
        assert torch.isfinite(ours["age_history.data"]).any()


def test_observe_reads_no_delays_unless_arrivals_are_tracked() -> None:
    conn = _connection(5.0, 0.5, track=False)

    def no_lag(*args: object, **kwargs: object) -> None:
        raise AssertionError("observe computed the delayed delivery")

    conn.lag = no_lag  # type: ignore[method-assign]
    conn.observe(torch.ones(3, 6, dtype=torch.bool))
    assert torch.equal(conn.pre_ages.age, torch.zeros(3, 6, dtype=torch.float64))


def _stdp_run(*args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    flags = ["-X", "importtime"] if importtime else []
    cmd = [sys.executable, *flags, "-m", "runner.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _imported(importtime_log: str) -> set[str]:
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_replay_process_is_lean_and_exact(tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    proc = _stdp_run("replay", str(DELAYED_CASE), "--out", str(out), importtime=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"replayed {DELAYED_CASE.name}: ")
    imported = _imported(proc.stderr)
    assert "torch" in imported and "runner.replay" in imported
    heavy = {"hydra", "omegaconf", "rich", "runner.registry", "runner.config"}
    assert not heavy & imported
    ref = replay_case(DELAYED_CASE)
    with np.load(out, allow_pickle=False) as got:
        assert sorted(got.files) == ["applied", "delay", "weight"]
        np.testing.assert_array_equal(got["weight"], ref.weight)
        np.testing.assert_array_equal(got["delay"], ref.delay)
        np.testing.assert_array_equal(got["applied"], ref.applied)


def test_replay_process_reports_a_bad_case(tmp_path: Path) -> None:
    proc = _stdp_run("replay", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o.npz"))
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path / 'nope.npz'}: no such file\n"
    assert not (tmp_path / "o.npz").exists()


def test_cli_import_pulls_no_config_stack() -> None:
    code = (
        "import sys, runner.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'hydra', 'omegaconf', 'torch', 'pydantic', 'rich'}), "
        "sorted(m for m in sys.modules if m.startswith('runner.')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] ['runner.cli']"


def test_replay_in_process_leaves_the_gc_alone(cli, tmp_path: Path) -> None:
    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    result = cli("replay", DELAYED_CASE, "--out", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, enabled)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_keep_freed_memory_on_glibc() -> None:
    assert keep_freed_memory() is True
