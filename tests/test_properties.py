"""Property-based tests: malformed replay cases and config overrides never end in a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GOLDEN = Path(__file__).parent / "data" / "golden" / "p04_dakstdp_b2_dt07_fracdelay_mean_clamp.npz"

with np.load(GOLDEN, allow_pickle=False) as _z:
    BASE = {k: _z[k] for k in _z.files}
PARAMS = json.loads(str(BASE["params_json"]))

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
param_keys = st.sampled_from(
    [
        "dt",
        "max_delay",
        "update_every",
        "accumulator_reduction",
        "dtype",
        "trainers",
        "weight_bounds",
        "delay_bounds",
    ]
)
trainer_keys = st.sampled_from(
    [
        "kind",
        "kernel_post",
        "kernel_pre",
        "kernel_post_kwargs",
        "kernel_pre_kwargs",
        "batch_reduction",
        "delayed",
        "interp_tolerance",
    ]
)
array_keys = st.sampled_from(["pre_spikes", "post_spikes", "weight_init", "delay_init"])
arrays = st.one_of(
    st.builds(lambda s: np.zeros(s, dtype=bool), st.lists(st.integers(0, 4), max_size=4)),
    st.builds(lambda s: np.ones(s), st.lists(st.integers(0, 4), max_size=4)),
    st.builds(
        lambda s: np.full(s, np.nan, dtype=np.float32), st.lists(st.integers(1, 3), max_size=3)
    ),
    st.just(np.array("text")),
)


@st.composite
def broken_cases(draw: st.DrawFn) -> dict[str, np.ndarray]:
    case = dict(BASE)
    params = json.loads(json.dumps(PARAMS))
    for _ in range(draw(st.integers(0, 3))):
        params[draw(param_keys)] = draw(junk)
    for _ in range(draw(st.integers(0, 2))):
        if isinstance(params.get("trainers"), list) and params["trainers"]:
            trainer = params["trainers"][0]
            if isinstance(trainer, dict):
                trainer[draw(trainer_keys)] = draw(junk)
    case["params_json"] = np.array(json.dumps(params))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(array_keys)
        if draw(st.booleans()):
            case.pop(key, None)
        else:
            case[key] = draw(arrays)
    return case


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=broken_cases())
def test_malformed_replay_case_gives_one_line(
    case: dict[str, np.ndarray], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "case.npz"
    np.savez(path, **case)
    result = cli("replay", path, "--out", tmp_path / "out.npz")
    if result.exit_code == 0:
        assert (tmp_path / "out.npz").is_file()
        return
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


override_keys = st.sampled_from(
    [
        "seed",
        "dt",
        "dtype",
        "device",
        "device.name",
        "device.threads",
        "run.epochs",
        "run.batch_size",
        "run.n_train",
        "run.update_every",
        "run.progress",
        "trainer.weight.kind",
        "trainer.weight.batch_reduction",
        "trainer.weight.delayed",
        "trainer.weight.kernel_post.name",
        "trainer.weight.kernel_post.kwargs.learning_rate",
        "trainer.weight.kernel_post.kwargs.time_constant",
        "trainer.weight.kernel_pre.kwargs.tau",
        "trainer.weight.cells.input_exc.batch_reduction",
        "trainer.weight.cells.nope.delayed",
        "network.populations.exc.size",
        "network.populations.exc.kind",
        "network.populations.exc.params.thresh_v",
        "network.connections.input_exc.max_delay",
        "network.connections.input_exc.weight_bounds.upper.fn",
        "network.connections.input_exc.pre",
        "stimulus.kind",
        "stimulus.params.max_rate_hz",
        "experiment",
        "readout.population",
        "+extra",
        "++run.epochs",
        "~run.epochs",
        "run.nope",
    ]
)
override_values = st.one_of(
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "1e9",
            "nan",
            "inf",
            "true",
            "null",
            "mean",
            "maen",
            "cpu",
            "cuda:7",
            "exp_stdp_post",
            "gaussian",
            "KernelSTDP",
            "Kernel",
            "[1,2]",
            "{a: 1}",
            "delay_adjusted",
            "nope",
            "'quoted'",
            "",
            "1,2",
        ]
    ),
    st.text(alphabet="abc019.-_ ,:=[]{}'\"", max_size=6),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=st.lists(st.tuples(override_keys, override_values), min_size=1, max_size=3))
def test_random_overrides_validate_or_give_one_line(pairs: list[tuple[str, str]], cli) -> None:  # type: ignore[no-untyped-def]
    overrides = [k if k.startswith("~") else f"{k}={v}" for k, v in pairs]
    result = cli("validate", *overrides)
    assert result.exit_code in (0, 2), (overrides, result.output)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert lines and all(ln.startswith("error: ") for ln in lines), (overrides, result.stderr)
        assert "Traceback" not in result.output
