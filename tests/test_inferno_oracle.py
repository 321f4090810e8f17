"""The inferno oracle (``scripts/inferno_replay.py``) reproduces the stored golden trajectories.

The oracle runs inferno-ai 0.0.5 itself, so it needs its own Python environment; these tests run
only when ``$STDP_RUN_INFERNO_PYTHON`` names a Python that can import inferno, e.g.

    python3 -m venv /work/infvenv && /work/infvenv/bin/pip install torch==2.13.0 numpy einops
    /work/infvenv/bin/pip install --no-deps inferno-ai==0.0.5
    STDP_RUN_INFERNO_PYTHON=/work/infvenv/bin/python pytest -m slow tests/test_inferno_oracle.py
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
ORACLE = ROOT / "scripts" / "inferno_replay.py"


@functools.cache
def _oracle_python() -> str | None:
    python = os.environ.get("STDP_RUN_INFERNO_PYTHON")
    if not python:
        return None
    try:
        probe = subprocess.run([python, "-c", "import inferno"], capture_output=True, timeout=120)
    except OSError:
        return None
    return python if probe.returncode == 0 else None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _oracle_python() is None,
        reason="needs $STDP_RUN_INFERNO_PYTHON pointing at a python that can import inferno-ai",
    ),
]


def _run_oracle(case: Path, out: Path) -> dict[str, np.ndarray]:
    python = _oracle_python()
    assert python is not None
    cmd = [python, str(ORACLE), str(case), "--out", str(out), "--threads", "1"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    with np.load(out) as result:
        return {key: result[key] for key in result.files}


@pytest.mark.parametrize(
    "name",
    [
        "p08_combined_kstdp_delayed_plus_stdpd",  # float64, weights and delays trained together
        "p07_stdpd_b5_f32_sum_every4_mean",  # float32, update every 4 steps, mean accumulator
    ],
)
def test_oracle_matches_stored_trajectories(name: str, tmp_path: Path) -> None:
    case = GOLDEN / f"{name}.npz"
    ours = _run_oracle(case, tmp_path / "out.npz")
    with np.load(case) as ref:
        dtype = json.loads(str(ref["params_json"]))["dtype"]
        assert ours["weight"].dtype == np.dtype(dtype)
        assert np.array_equal(ours["applied"], ref["applied"])
        for key in ("weight", "delay"):
            expected = ref[key].astype(np.float64)
            scale = max(1.0, float(np.abs(expected).max()))
            rel = np.abs(ours[key].astype(np.float64) - expected).max() / scale
            assert rel <= (1e-9 if dtype == "float64" else 2e-4), (key, rel)  # FORMAT.md 8
        assert np.abs(ref["delay"][-1] - ref["delay_init"]).max() > 0.1  # delays really moved


def test_oracle_agrees_with_stdp_run_replay(tmp_path: Path) -> None:
    """A small DR-STDP case without reference trajectories: inferno and ours agree (float32)."""
    case = tmp_path / "case.npz"
    sizes = ["--batch", "2", "--n-in", "50", "--n-out", "6", "--steps", "60"]
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_replay_case.py"), str(case), *sizes],
        check=True,
    )
    inferno = _run_oracle(case, tmp_path / "inferno.npz")
    from runner.replay import replay_case

    ours = replay_case(case)
    assert np.array_equal(inferno["applied"], ours.applied)
    assert np.abs(inferno["weight"] - ours.weight).max() <= 1e-6
    assert np.abs(inferno["delay"] - ours.delay).max() <= 1e-5
    with np.load(case) as c:
        assert np.abs(inferno["delay"][-1] - c["delay_init"]).max() > 1e-3  # it learned


def test_bench_times_inferno_in_the_same_run(tmp_path: Path) -> None:
    """``bench.py --workloads replay --inferno-python``: both medians, the ratio and the diff."""
    out = tmp_path / "bench.json"
    python = _oracle_python()
    assert python is not None
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--workloads", "replay"]
    cmd += ["--repeats", "1", "--inferno-python", python, "--json", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=600)
    (row,) = json.loads(out.read_text())["results"]
    assert row["workload"] == "replay" and "vs_inferno_issue_60s" not in row
    assert row["inferno_s"] == row["inferno"]["times_s"][0] > 0
    assert row["vs_inferno"] == pytest.approx(row["inferno_s"] / row["engine_rate"])
    assert row["inferno_max_abs_diff"]["weight"] <= 1e-6
    assert row["inferno_max_abs_diff"]["delay"] <= 1e-5
