"""Every public reference case reproduces through the replay, at every step.

The cases (copied from ``shared/golden``) were produced by inferno-ai 0.0.5; the tolerance is the
one the issue sets: float64 within 1e-9 relative to ``max(1, max|ref|)``, float32 within 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runner.replay import main as replay_main

CASES = sorted((Path(__file__).parent / "data" / "golden").glob("*.npz"))


def _tolerance(dtype: np.dtype, ref: np.ndarray) -> float:
    if dtype == np.float64:
        return 1e-9 * max(1.0, float(np.abs(ref).max(initial=0.0)))
    return 1e-5


def test_all_public_cases_present() -> None:
    assert len(CASES) == 8


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_replay_matches_reference(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    replay_main(case, out)
    with np.load(case, allow_pickle=False) as ref, np.load(out, allow_pickle=False) as got:
        for key in ("weight", "delay"):
            assert got[key].dtype == ref[key].dtype
            assert got[key].shape == ref[key].shape
            tol = _tolerance(ref[key].dtype, ref[key])
            err = np.abs(got[key].astype(np.float64) - ref[key].astype(np.float64))
            worst = np.unravel_index(err.argmax(), err.shape)
            assert err.max() <= tol, f"{key} differs by {err.max():.3e} at step/o/i {worst}"
        np.testing.assert_array_equal(got["applied"], ref["applied"])
