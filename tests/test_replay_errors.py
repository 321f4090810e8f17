"""Bad replay input gives one clear line and never unpickles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runner.replay import ReplayInputError, load_case

GOLDEN = Path(__file__).parent / "data" / "golden" / "p01_kstdp_b1_nodelay_mean.npz"


def _case(tmp_path: Path, drop: str | None = None, params: dict | None = None, **replace) -> Path:
    with np.load(GOLDEN, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if drop:
        arrays.pop(drop)
    if params is not None:
        base = json.loads(str(arrays["params_json"]))
        base.update(params)
        arrays["params_json"] = np.array(json.dumps(base))
    arrays.update(replace)
    path = tmp_path / "case.npz"
    np.savez(path, **arrays)
    return path


def _trainer(**change) -> list[dict]:
    with np.load(GOLDEN, allow_pickle=False) as z:
        spec = json.loads(str(z["params_json"]))["trainers"][0]
    return [{**spec, **change}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop": "pre_spikes"}, "missing array 'pre_spikes'"),
        ({"drop": "params_json"}, "missing 'params_json'"),
        ({"pre_spikes": np.zeros((100, 1), dtype=bool)}, "pre_spikes must be [T, B, I]"),
        ({"post_spikes": np.zeros((99, 1, 4), dtype=bool)}, "does not match pre_spikes"),
        ({"weight_init": np.zeros((3, 8))}, "weight_init must be [O, I]"),
        ({"pre_spikes": np.zeros((100, 1, 8), dtype=np.int8)}, "pre_spikes must be bool"),
        ({"params": {"trainers": _trainer(kernel_post="exp_pst")}}, "unknown kernel 'exp_pst'"),
        ({"params": {"trainers": _trainer(kind="STDP")}}, "unknown trainer kind 'STDP'"),
        ({"params": {"trainers": _trainer(batch_reduction="maen")}}, "unknown batch_reduction"),
        (
            {"params": {"weight_bounds": {"upper": {"fn": "soft", "limit": 1.0}}}},
            "unknown weight_bounds.upper.fn 'soft'",
        ),
        ({"params": {"dt": -1}}, "dt must be a positive number"),
        ({"params": {"update_every": 0}}, "update_every must be an integer >= 1"),
    ],
)
def test_bad_case_gives_one_line(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = _case(tmp_path, **kwargs)
    with pytest.raises(ReplayInputError) as info:
        load_case(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_pickle_inside_npz_is_refused(tmp_path: Path) -> None:
    path = _case(tmp_path, pre_spikes=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ReplayInputError, match="refused to load"):
        load_case(path)


def test_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(ReplayInputError, match="not a readable npz"):
        load_case(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayInputError, match="no such file"):
        load_case(tmp_path / "nope.npz")
