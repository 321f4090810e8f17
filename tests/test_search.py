"""The objective a run returns to a sweeper, the shipped Optuna searches, failed trials."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runner.config.errors import ConfigError
from runner.config.schema import Direction, ObjectiveConf
from runner.config.validate import validate_config
from runner.objective import ObjectiveError, check_objective, objective_value, worst

#: A tiny image run with held-out digits, so that it reports ``accuracy``.
TINY_IMAGE = ("debug=default", "run.n_eval=6", "logger.level=WARNING")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# -- objective values ---------------------------------------------------------------------------


def test_objective_value_reads_the_metric() -> None:
    metrics = {"accuracy": 0.75, "train_accuracy": 0.5}
    assert objective_value(metrics, ObjectiveConf()) == 0.75
    minimise = ObjectiveConf(metric="train_accuracy", direction=Direction.minimize)
    assert objective_value(metrics, minimise) == 0.5


def test_non_finite_objective_is_the_worst_value() -> None:
    assert objective_value({"accuracy": math.nan}, ObjectiveConf()) == -math.inf
    down = ObjectiveConf(metric="latency_ms", direction=Direction.minimize)
    assert objective_value({"latency_ms": math.inf}, down) == math.inf
    assert worst(Direction.maximize) == -math.inf and worst(Direction.minimize) == math.inf


def test_missing_metric_is_nan_in_a_plain_run_and_an_error_in_a_search() -> None:
    assert math.isnan(objective_value({"delta_w": 0.1}, ObjectiveConf()))
    with pytest.raises(ObjectiveError) as err:
        objective_value({"accuracy_ttfs": 0.1}, ObjectiveConf(), required=True)
    message = str(err.value)
    assert "\n" not in message
    assert "no metric 'accuracy'" in message and "accuracy_ttfs" in message


# -- validation ----------------------------------------------------------------------------------


def test_unknown_objective_metric_is_a_one_line_error(compose_cfg) -> None:
    cfg = compose_cfg("debug=default", "objective.metric=acuracy")
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, build_check=False)
    assert len(err.value.problems) == 1
    line = err.value.problems[0]
    assert line.startswith("objective.metric: unknown metric 'acuracy'; did you mean 'accuracy'")
    assert "valid: accuracy," in line


def test_objective_errors_on_the_command_line(cli) -> None:
    bad_metric = cli("validate", "objective.metric=acuracy")
    assert bad_metric.exit_code == 2
    assert bad_metric.stderr.count("objective.metric: unknown metric 'acuracy'") == 1
    bad_direction = cli("validate", "objective.direction=max")
    assert bad_direction.exit_code == 2
    assert "objective.direction: invalid value 'max'" in bad_direction.stderr
    assert "maximize, minimize" in bad_direction.stderr


def test_a_search_checks_the_metric_against_its_task(compose_cfg) -> None:
    image = validate_config(compose_cfg("debug=default", "objective.metric=hit_rate"))
    plain: list[str] = []
    check_objective(image, plain)
    assert plain == []  # some task reports hit_rate: fine outside a search
    searched: list[str] = []
    check_objective(image, searched, searching=True)
    assert len(searched) == 1 and "of a 'poisson' stimulus" in searched[0]
    pattern = validate_config(compose_cfg("experiment=kernel_stdp", "debug=default"))
    assert pattern.objective.metric == "hit_rate"  # the pattern experiments set their own
    ok: list[str] = []
    check_objective(pattern, ok, searching=True)
    assert ok == []


# -- the task's return value ---------------------------------------------------------------------


@pytest.fixture
def in_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``run(*overrides)`` calls the Hydra task as an Optuna trial would, in ``tmp_path/run``."""
    import runner.app as app
    from runner.config.compose import compose

    run_dir = tmp_path / "run"
    monkeypatch.setattr(app, "_output_dir", lambda: run_dir)

    def run(*overrides: str, search: bool = True) -> tuple[float, Path]:
        monkeypatch.setattr(app, "searching", lambda: search)
        monkeypatch.setattr(app, "_multirun", lambda: search)
        return app.task(compose(list(overrides))), run_dir

    return run


def test_task_returns_the_objective(in_search) -> None:
    value, run_dir = in_search(*TINY_IMAGE)
    accuracy = _summary(run_dir)["metrics"]["accuracy"]
    assert value == pytest.approx(accuracy) and 0.0 <= value <= 1.0


def test_a_failing_trial_returns_the_worst_value(in_search) -> None:
    value, run_dir = in_search(*TINY_IMAGE, "trainer.weight.batch_reduction=maen")
    assert value == -math.inf
    assert "unknown reduction 'maen'" in (run_dir / "FAILED").read_text()
    value, _ = in_search(
        *TINY_IMAGE, "trainer.weight.batch_reduction=maen", "objective.direction=minimize"
    )
    assert value == math.inf


def test_a_diverging_trial_returns_the_worst_value(in_search, monkeypatch) -> None:
    import runner.app as app
    from runner.loop import NonFiniteError

    def diverge(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise NonFiniteError("non-finite weights in input_exc at step 40")

    monkeypatch.setattr(app, "run_experiment", diverge)
    value, run_dir = in_search(*TINY_IMAGE)
    assert value == -math.inf
    assert "non-finite weights" in (run_dir / "FAILED").read_text()


def test_outside_a_search_a_failure_still_raises(in_search) -> None:
    from runner.config.errors import UserAbort

    with pytest.raises(UserAbort, match="unknown reduction 'maen'"):
        in_search(*TINY_IMAGE, "trainer.weight.batch_reduction=maen", search=False)


def test_an_objective_no_trial_reports_stops_the_search(in_search) -> None:
    with pytest.raises(ObjectiveError, match="no metric 'val_accuracy'"):
        in_search(*TINY_IMAGE, "objective.metric=val_accuracy")  # eval_every=0: no curve


# -- the shipped searches ------------------------------------------------------------------------


SEARCHES = {"default_optuna": "default", "mnist_stdp_cpu_optuna": "mnist_stdp_cpu"}


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_shipped_searches_sample_valid_configs(compose_cfg, search: str) -> None:
    """Every searched key exists, and the ends of each range validate."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep

    cfg = compose_cfg(f"hparams_search={search}", with_hydra=True)
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower()
    assert cfg.name == SEARCHES[search]
    direction = OmegaConf.select(cfg, "hydra.sweeper.direction")  # ${objective.direction}
    assert getattr(direction, "value", direction) == "maximize"
    assert str(sweeper.storage).endswith("/optuna.db") and sweeper.storage.startswith("sqlite:")
    parser = OverridesParser.create()
    samples: list[list[str]] = [[], []]
    for key, text in sweeper.params.items():
        assert OmegaConf.select(cfg, key) is not None, key
        sweep = parser.parse_overrides([f"{key}={text}"])[0].value()
        if isinstance(sweep, IntervalSweep):
            ends = [sweep.start, sweep.end]
        else:
            assert isinstance(sweep, ChoiceSweep)
            ends = [sweep.list[0], sweep.list[-1]]
        for i in (0, 1):
            samples[i].append(f"{key}={ends[i]}")
    for overrides in samples:
        validate_config(compose_cfg(f"experiment={SEARCHES[search]}", *overrides))


# -- real searches (subprocess, slow) ------------------------------------------------------------


def _stdp_run(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    exe = shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")
    env = {**os.environ, "TTY_INTERACTIVE": "0"}
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


SMALL = ("run.n_train=20", "run.n_eval=20", "run.steps_per_sample=20", "logger.plots=false")


@pytest.mark.slow
def test_default_search_completes_and_resumes(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    proc = _stdp_run("-m", "hparams_search=default_optuna", "hydra.sweeper.n_trials=6", *SMALL,
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Best value:" in out and "Best parameters:" in out
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    accuracies = [_summary(job)["metrics"]["accuracy"] for job in jobs]
    assert len(jobs) == 6
    assert results.best_value == pytest.approx(max(accuracies))
    assert set(results.best_params) == {
        "trainer.weight.kernel_post.kwargs.learning_rate",
        "network.populations.exc.params.spike_increment",
        "network.connections.input_exc.normalize.target",
        "stimulus.params.max_rate_hz",
    }
    # resume: two more trials of the same study, in a new sweep folder
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    more = tmp_path / "more"
    proc = _stdp_run("-m", "hparams_search=default_optuna", "hydra.sweeper.n_trials=2", *SMALL,
                     f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={more}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="default_search", storage=storage)
    assert len(study.trials) == 8
    assert all(t.state.name == "COMPLETE" for t in study.trials)


@pytest.mark.slow
def test_a_failed_trial_does_not_stop_a_parallel_search(tmp_path: Path) -> None:
    """A trial that fails while running gets the worst value and the search goes on (a value
    that fails validation, such as a misspelt choice, stops the search before it starts:
    tests/test_prechecks.py)."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from test_prechecks import BOOM  # tests/ is on sys.path (rootdir conftest)

    (tmp_path / "boom_kernel.py").write_text(BOOM)  # fails in the run for a learning rate > 1
    sweep = tmp_path / "search"
    proc = _stdp_run("-m", "hparams_search=default_optuna", "hydra/launcher=parallel",
                     "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=3",
                     "hydra.sweeper.sampler.seed=2",
                     "trainer.weight.kernel_post.name=boom_kernel:boom",
                     "trainer.weight.kernel_post.kwargs.learning_rate=choice(4e-4,2)",
                     *SMALL, f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    failed = [j for j in jobs if (j / "FAILED").is_file()]
    completed = [j for j in jobs if (j / "summary.json").is_file()]
    assert len(jobs) == 3 and failed and completed
    assert all("boom: learning rate above 1" in (j / "FAILED").read_text() for j in failed)
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.best_params["trainer.weight.kernel_post.kwargs.learning_rate"] == 4e-4
    assert math.isfinite(results.best_value)


def test_a_missing_sweeper_plugin_names_its_extra() -> None:
    from hydra.errors import MissingConfigException

    from runner.config.errors import describe_error

    exc = MissingConfigException("not found", "hydra/sweeper/optuna", options=["basic"])
    assert describe_error(exc) == (
        "hydra/sweeper: unknown option 'optuna' valid: basic "
        "(its plugin is not installed: pip install 'stdp-run[optuna]')"
    )
