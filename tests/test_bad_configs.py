"""A catalogue of bad configs, overrides and command-line slips, each run through the CLI.

Every case must exit with code 2, print its problem as exactly one ``error: ...`` line on stderr
naming the key, the bad value and the valid choices (with a "did you mean" where one is close),
never show a traceback, and leave no run folder (nor sweep folder): every job is checked before
Hydra makes one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DA = "experiment=delay_adjusted"
#: A folder that exists but holds no MNIST files.
NO_MNIST = str(Path(__file__).parent / "data")

# (id, overrides, expected substrings of the single error line)
CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "misspelled key",
        ["trainer.weight.lrr=1"],
        ["trainer.weight.lrr: unknown key 'lrr'", "valid: kind, kernel_post"],
    ),
    ("misspelled top key", ["sed=1"], ["sed: unknown key 'sed'; did you mean 'seed'?"]),
    (
        "misspelled cell key",
        ["trainer.weight.cells.input_exc.batch_reducton=sum"],
        [
            "trainer.weight.cells.input_exc.batch_reducton: unknown key 'batch_reducton'; "
            "did you mean 'batch_reduction'?"
        ],
    ),
    (
        "wrong type",
        ["run.batch_size=abc"],
        ["run.batch_size: Value 'abc' of type 'str' could not be converted to Integer"],
    ),
    (
        "wrong bool",
        ["trainer.weight.delayed=maybe"],
        ["trainer.weight.delayed: Value 'maybe' is not a valid bool"],
    ),
    ("bad enum", ["dtype=float16"], ["dtype: invalid value 'float16'", "valid: float32, float64"]),
    (
        "bad enum with suggestion",
        ["network.connections.input_exc.weight_init.kind=unifrm"],
        ["weight_init.kind: invalid value 'unifrm'; did you mean 'uniform'?"],
    ),
    (
        "bad progress mode",
        ["run.progress=fancy"],
        ["run.progress: invalid value 'fancy'", "valid: auto, rich, plain, off"],
    ),
    (
        "unknown experiment",
        ["experiment=delay_ajusted"],
        ["experiment: unknown option 'delay_ajusted'; did you mean 'delay_adjusted'?"],
    ),
    (
        "unknown launcher",
        ["hydra/launcher=jobllib"],
        ["hydra/launcher: unknown option 'jobllib'; did you mean 'joblib'?"],
    ),
    (
        "gpu index as a preset",
        ["device=cuda:1"],
        ["device: unknown option 'cuda:1'", "device=cuda device.name=cuda:1"],
    ),
    (
        "bad device name",
        ["device.name=gpu"],
        ["device.name: invalid device 'gpu'", "valid: auto, cpu, cuda, cuda:N"],
    ),
    ("sweep without -m", ["seed=0,1"], ["Ambiguous value for argument 'seed=0,1'", "add -m"]),
    (
        "unknown kernel",
        ["trainer.weight.kernel_post.name=exp_pst"],
        [
            "trainer.weight.kernel_post.name: unknown kernel 'exp_pst'; did you mean",
            "'exp_stdp_post'",
            "valid: exp_stdp_post, exp_stdp_pre, gaussian",
        ],
    ),
    (
        "unknown reduction",
        ["trainer.weight.batch_reduction=maen"],
        ["trainer.weight.batch_reduction: unknown reduction 'maen'; did you mean 'mean'"],
    ),
    (
        "kwarg the kernel does not take",
        ["+trainer.weight.kernel_post.kwargs.time_constnt=3"],
        [
            "trainer.weight.kernel_post.kwargs: kernel 'exp_stdp_post': unknown kwarg "
            "'time_constnt'; did you mean 'time_constant'?"
        ],
    ),
    (
        "kwarg typo without +",
        ["trainer.weight.kernel_post.kwargs.time_constnt=3"],
        [
            "trainer.weight.kernel_post.kwargs.time_constnt: unknown key 'time_constnt'; "
            "did you mean 'time_constant'?"
        ],
    ),
    (
        "key added with +",
        ["+trainer.weight.foo=1"],
        ["trainer.weight.foo: unknown key 'foo'", "cannot be added with '+'"],
    ),
    (
        "negative time constant",
        ["trainer.weight.kernel_post.kwargs.time_constant=-1"],
        ["trainer.weight.kernel_post.kwargs.time_constant: must be > 0, got -1"],
    ),
    (
        "per-cell kernel without its kwargs",
        ["trainer.weight.cells.input_exc.kernel_post.name=gaussian"],
        [
            "trainer.weight.cells.input_exc.kernel_post.kwargs: kernel 'gaussian': missing required "
            "kwarg(s) 'amplitude', 'center', 'width'"
        ],
    ),
    (
        "new cell from the command line",
        ["+trainer.weight.cells.exc_exc={}"],
        [
            "trainer.weight.cells.exc_exc: a new entry of this kind cannot be added on the command line"
        ],
    ),
    ("zero dt", ["dt=0"], ["dt: must be > 0, got 0.0"]),
    ("zero batch size", ["run.batch_size=0"], ["run.batch_size: must be >= 1, got 0"]),
    ("zero update period", ["run.update_every=0"], ["run.update_every: must be >= 1, got 0"]),
    (
        "unknown population",
        ["network.connections.input_exc.pre=inpt"],
        ["network.connections.input_exc.pre: unknown population 'inpt'; did you mean 'input'?"],
    ),
    (
        "unknown neuron kind",
        ["network.populations.exc.kind=lfi"],
        ["network.populations.exc.kind: unknown neuron 'lfi'; did you mean 'lif'?"],
    ),
    (
        "neuron param it does not take",
        ["+network.populations.exc.params.tau=5"],
        ["network.populations.exc.params: neuron 'alif': unknown kwarg 'tau'"],
    ),
    (
        "neuron param out of range (engine check)",
        ["network.populations.exc.params.reset_v=-40"],
        ["network.populations.exc.params: reset_v must be < thresh_v"],
    ),
    (
        "input size vs data set",
        ["network.populations.input.size=100"],
        ["network.populations.input.size: sklearn images have 64 pixels, got size 100"],
    ),
    (
        "delays on a lateral connection",
        ["network.connections.inh_exc.max_delay=3"],
        ["network.connections.inh_exc.max_delay: lateral connections have no delays"],
    ),
    (
        "delay trainer without delays",
        ["trainer.weight.kind=DelayAdjustedKernelSTDP"],
        [
            "trainer.weight.cells.input_exc: DelayAdjustedKernelSTDP needs learned delays: set "
            "network.connections.input_exc.max_delay"
        ],
    ),
    (
        "KernelSTDP-only setting",
        [DA, "trainer.delay.delayed=true"],
        ["trainer.delay.delayed: DelayAdjustedKernelSTDPD has no setting 'delayed'"],
    ),
    (
        "delays beyond max_delay",
        [DA, "network.connections.input_exc.delay_init.high=20"],
        ["network.connections.input_exc.delay_init: delays must lie in [0, max_delay=10] ms"],
    ),
    (
        "negative max_delay",
        [DA, "network.connections.input_exc.max_delay=-1"],
        ["network.connections.input_exc.max_delay: must be >= 0, got -1.0"],
    ),
    (
        "unknown bound",
        ["network.connections.input_exc.weight_bounds.upper.fn=multiplicativ"],
        ["weight_bounds.upper.fn: unknown bound 'multiplicativ'; did you mean 'multiplicative'"],
    ),
    (
        "bound kwarg it does not take",
        ["+network.connections.input_exc.weight_bounds.upper.kwargs.power=2"],
        [
            "network.connections.input_exc.weight_bounds.upper.kwargs: bound 'multiplicative': "
            "unknown kwarg 'power'"
        ],
    ),
    (
        "clamps crossed",
        ["network.connections.input_exc.weight_bounds.clamp_min=2"],
        ["network.connections.input_exc.weight_bounds: clamp_min=2.0 is above clamp_max=1.0"],
    ),
    (
        "unknown stimulus",
        ["stimulus.kind=poison"],
        ["stimulus.kind: unknown stimulus 'poison'; did you mean 'poisson'?"],
    ),
    (
        "stimulus kwarg typo",
        ["+stimulus.params.max_rate=5"],
        [
            "stimulus.params: stimulus 'poisson': unknown kwarg 'max_rate'; did you mean "
            "'max_rate_hz'?"
        ],
    ),
    (
        "missing value",
        ["readout.population=???"],
        [
            "readout.population: missing value (???); set it in a config or with "
            "readout.population=VALUE"
        ],
    ),
    (
        "MNIST without its folder",
        ["stimulus=mnist_idx", "stimulus.dataset.root=null", "network.populations.input.size=784"],
        ["stimulus.dataset.root: MNIST needs an existing folder with the IDX files, got None"],
    ),
    (
        "readout of an input",
        ["readout.population=input"],
        ["readout.population: 'input' is not a neuron population"],
    ),
    (
        "CUDA where there is none",
        ["device=cuda"],
        ["device.name: 'cuda' requested but CUDA is not available"],
    ),
    # -- what only the data can tell (issue 13, items 1 and 4) ----------------------------------
    (
        "more training samples than the data set has",
        ["run.n_train=3000"],
        [
            "run.n_train: 3000 training + 500 held-out (run.n_eval) samples exceed the 1797 of "
            "the sklearn data set (set run.n_train <= 1297)"
        ],
    ),  # fmt: skip
    (
        "held-out samples leave nothing to train on",
        ["run.n_train=null", "run.n_eval=1797"],
        ["run.n_eval: 1797 held-out samples leave no training sample of the 1797"],
    ),
    (
        "more test samples than the test split has",
        ["experiment=mnist_stdp", "run.n_test=20000"],
        ["run.n_test: 20000 exceeds the 10000 test samples of the mnist data set"],
    ),
    (
        "a data folder without the MNIST files",
        ["experiment=mnist_stdp", f"stimulus.dataset.root={NO_MNIST}"],
        [
            "stimulus.dataset.root: train-images-idx3-ubyte (or train-images-idx3-ubyte.gz) is "
            f"missing from {NO_MNIST!r}"
        ],
    ),  # fmt: skip
    (
        "kwarg of the wrong type",
        ["trainer.weight.kernel_post.kwargs.learning_rate=abc"],
        [
            "trainer.weight.kernel_post.kwargs: kernel 'exp_stdp_post': kwarg 'learning_rate' "
            "must be a number, got 'abc' (str)"
        ],
    ),  # fmt: skip
    (
        "neuron param of the wrong type",
        ["network.populations.exc.params.thresh_v=high"],
        ["network.populations.exc.params: neuron 'alif': kwarg 'thresh_v' must be a number"],
    ),
    # -- sweeps: every job checked before the first runs (item 3) ---------------------------------
    (
        "a bad value in the last job of a sweep",
        ["-m", "trainer.weight.batch_reduction=mean,summ"],
        [
            "[trainer.weight.batch_reduction=summ] trainer.weight.batch_reduction: unknown "
            "reduction 'summ'; did you mean 'sum'?",
            "(1 of 2 jobs invalid; nothing was run)",
        ],
    ),  # fmt: skip
    (
        "a problem shared by every job of a sweep",
        ["-m", "seed=0,1", "run.batch_size=0"],
        ["error: run.batch_size: must be >= 1, got 0 (2 of 2 jobs invalid; nothing was run)"],
    ),
    (
        "an interval for the basic sweeper",
        ["-m", "trainer.weight.kernel_post.kwargs.learning_rate=interval(1e-4,1e-3)"],
        [
            "trainer.weight.kernel_post.kwargs.learning_rate: Hydra's basic sweeper cannot sample "
            "an interval"
        ],
    ),  # fmt: skip
    # -- command-line slips (item 9) ----------------------------------------------------------
    (
        "an experiment name without its key",
        ["delay_adjusted"],
        [
            "'delay_adjusted' is not a command or an override; did you mean "
            "experiment=delay_adjusted?"
        ],
    ),  # fmt: skip
    (
        "a misspelled experiment name without its key",
        ["delay_adjustd"],
        ["did you mean experiment=delay_adjusted?"],
    ),
    ("a misspelled command", ["lsit"], ["unknown command 'lsit'; did you mean 'list'?"]),
    (
        "a misspelled command with an option",
        ["valdate", "--all"],
        ["unknown command 'valdate'; did you mean 'validate'?"],
    ),
    (
        "an override written as an option",
        ["--experiment", "delay_adjusted"],
        ["--experiment is not an option", "did you mean experiment=delay_adjusted?"],
    ),
    (
        "a space in a sweep",
        ["-m", "seed=0,", "1"],
        ["the sweep 'seed=0, 1' has a space after a comma; write seed=0,1"],
    ),
    (
        "a misspelled Hydra flag",
        ["--multirn", "seed=0,1"],
        ["unknown option '--multirn'; did you mean '--multirun'?"],
    ),
]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_exits_2_with_one_line(
    run_cli, tmp_path: Path, overrides: list[str], expected: list[str]
) -> None:
    if overrides == ["device=cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    sweep_dir = tmp_path / "sweep"
    if "-m" in overrides:
        overrides = [*overrides, f"hydra.sweep.dir={sweep_dir}"]
    result, run_dir = run_cli(*overrides, tiny=False)
    lines = _lines(result.stderr)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert not Path(run_dir).exists(), "a config error left a run folder"
    assert not sweep_dir.exists(), "a config error left a sweep folder"
    assert result.stdout == "", "nothing may run or be logged"


def test_several_problems_are_reported_together(run_cli) -> None:
    result, _ = run_cli("dt=0", "run.batch_size=0", "trainer.weight.batch_reduction=maen")
    lines = _lines(result.stderr)
    assert result.exit_code == 2
    assert [line.split(":")[1].strip() for line in lines] == [
        "dt",
        "run.batch_size",
        "trainer.weight.batch_reduction",
    ]


def test_validate_reports_the_same_message(cli) -> None:
    result = cli("validate", "trainer.weight.batch_reduction=maen")
    assert result.exit_code == 2
    assert (
        "error: [trainer.weight.batch_reduction=maen] trainer.weight.batch_reduction: unknown "
        "reduction 'maen'; did you mean 'mean' or 'median'?" in result.stderr
    )


def test_full_error_env_keeps_the_traceback(run_cli, monkeypatch) -> None:
    """HYDRA_FULL_ERROR=1 is the user's way to see the stack: the CLI must not swallow it."""
    from runner.config.errors import ConfigError

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError, match="unknown reduction 'maen'"):
        run_cli("trainer.weight.batch_reduction=maen", tiny=False)
