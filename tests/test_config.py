"""The schema, the shipped configs, validation and the per-cell merge rule."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from runner.config.cells import cell_settings
from runner.config.compose import compose, expand_cases, group_options
from runner.config.errors import ConfigError
from runner.config.schema import (
    CellOverrides,
    KernelConf,
    KernelOverride,
    RunConf,
    StdpRunConfig,
    TrainerConf,
)
from runner.config.validate import extra_keys, validate_config

EXPERIMENTS = group_options("experiment")
SWEEPS = group_options("sweep")


def test_shipped_experiments_and_sweeps_exist() -> None:
    assert {"default", "delay_adjusted"} <= set(EXPERIMENTS)
    assert "seed_reduction" in SWEEPS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment: str) -> None:
    cfg = validate_config(compose([f"experiment={experiment}"]))
    assert isinstance(cfg, StdpRunConfig)
    assert cfg.name == experiment
    assert cfg.trainer, "an experiment should train something"


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_job_composes_and_validates(sweep: str) -> None:
    hydra_cfg = compose([f"sweep={sweep}"], with_hydra=True).hydra
    assert str(hydra_cfg.mode) == "RunMode.MULTIRUN"
    cases = expand_cases([f"sweep={sweep}"])
    assert len(cases) >= 2
    for case in cases:
        validate_config(compose(case))


def test_seed_reduction_sweep_is_2x2() -> None:
    cases = expand_cases(["sweep=seed_reduction"])
    jobs = {(c[1], c[2]) for c in cases}
    assert jobs == {
        (f"seed={s}", f"trainer.weight.batch_reduction={r}")
        for s in (0, 1)
        for r in ("mean", "sum")
    }


def test_command_line_sweep_values_win_over_the_sweep_preset() -> None:
    cases = expand_cases(["sweep=seed_reduction", "seed=7"])
    assert len(cases) == 2
    assert all("seed=7" in case for case in cases)


@pytest.mark.parametrize(
    ("group", "option"),
    [
        (g, o)
        for g in ("device", "network", "stimulus", "trainer", "logger", "kernel", "debug")
        for o in group_options(g)
    ],
)
def test_every_group_option_composes_with_the_schema(group: str, option: str) -> None:
    if group == "kernel":  # kernels are placed by their package, e.g. into a trainer side
        cfg = compose([f"kernel@trainer.weight.kernel_post={option}"])
        assert cfg.trainer.weight.kernel_post.name
    else:
        cfg = compose([f"{group}={option}"])
    assert not extra_keys(cfg)


def test_defaults_follow_the_documented_tree() -> None:
    cfg = compose([])
    assert OmegaConf.get_type(cfg) is StdpRunConfig
    assert cfg.dtype.value == "float32" and cfg.dt == 1.0 and cfg.device.name == "auto"
    assert set(cfg.run) == {f.name for f in dataclasses.fields(RunConf)}
    assert set(cfg.trainer) == {"weight"}
    assert cfg.trainer.weight.kernel_post == {
        "name": "exp_stdp_post",
        "kwargs": {"learning_rate": 1.0e-3, "time_constant": 20.0},  # kernel/exp_stdp_post_fast
    }
    assert cfg.network.connections.input_exc.pre == "input"


def test_delay_adjusted_experiment_trains_weights_and_delays() -> None:
    cfg = validate_config(compose(["experiment=delay_adjusted"]))
    assert cfg.trainer["weight"].kind == "DelayAdjustedKernelSTDP"
    assert cfg.trainer["delay"].kind == "DelayAdjustedKernelSTDPD"
    # causal sync: a post spike after the arrival shortens the delay
    assert cfg.trainer["delay"].kernel_post.name == "exp_stdp_post"
    assert cfg.trainer["delay"].kernel_post.kwargs["learning_rate"] < 0
    assert cfg.trainer["delay"].kernel_pre.kwargs["learning_rate"] > 0
    max_delay = cfg.network.connections["input_exc"].max_delay
    assert max_delay is not None and max_delay > 0


def test_command_line_override_beats_the_experiment() -> None:
    cfg = compose(["experiment=delay_adjusted", "device=cpu", "run.batch_size=3"])
    assert cfg.device.name == "cpu" and cfg.run.batch_size == 3


def test_kernel_preset_swap_replaces_name_and_kwargs() -> None:
    cfg = validate_config(compose(["kernel@trainer.weight.kernel_post=gaussian"]))
    assert cfg.trainer["weight"].kernel_post.name == "gaussian"
    assert set(cfg.trainer["weight"].kernel_post.kwargs) == {"amplitude", "center", "width"}


def test_kernel_kwarg_override_reaches_the_typed_config() -> None:
    cfg = validate_config(compose(["trainer.weight.kernel_post.kwargs.learning_rate=2e-4"]))
    assert cfg.trainer["weight"].kernel_post.kwargs["learning_rate"] == pytest.approx(2e-4)


def test_plus_key_is_caught_even_though_hydra_accepts_it() -> None:
    cfg = compose(["+trainer.weight.foo=1", "+run.extra=2"])
    assert cfg.trainer.weight.foo == 1  # Hydra's force-add bypassed the schema
    problems = extra_keys(cfg)
    assert [p.split(":")[0] for p in problems] == ["run.extra", "trainer.weight.foo"]
    with pytest.raises(ConfigError):
        validate_config(cfg)


def test_plus_inside_free_form_kwargs_is_allowed_when_the_factory_takes_it() -> None:
    cfg = validate_config(compose(["+stimulus.params.refrac_ms=2.0"]))
    assert cfg.stimulus.params == {"max_rate_hz": 400.0, "refrac_ms": 2.0}


def test_validation_ignores_the_hydra_node() -> None:
    cfg = compose(["experiment=default"], with_hydra=True)
    assert "hydra" in cfg
    assert validate_config(cfg).name == "default"


# -- per-cell merge rule -----------------------------------------------------------------------


def _trainer(**cells: CellOverrides) -> TrainerConf:
    return TrainerConf(
        kind="KernelSTDP",
        kernel_post=KernelConf("exp_stdp_post", {"learning_rate": 1.0, "time_constant": 20.0}),
        kernel_pre=KernelConf("exp_stdp_pre", {"learning_rate": -0.5, "time_constant": 20.0}),
        batch_reduction="mean",
        cells=dict(cells),
    )


def test_cell_without_overrides_uses_the_trainer_defaults() -> None:
    s = cell_settings(_trainer(c=CellOverrides()), "c")
    assert (s.kernel_post, s.kernel_post_kwargs) == (
        "exp_stdp_post",
        {"learning_rate": 1.0, "time_constant": 20.0},
    )
    assert s.batch_reduction == "mean" and s.delayed is False and s.overridden == set()


def test_cell_kwargs_merge_over_the_trainer_kwargs() -> None:
    over = CellOverrides(
        kernel_post=KernelOverride(kwargs={"learning_rate": 3.0}), batch_reduction="sum"
    )
    s = cell_settings(_trainer(c=over), "c")
    assert s.kernel_post_kwargs == {"learning_rate": 3.0, "time_constant": 20.0}
    assert s.kernel_pre_kwargs == {"learning_rate": -0.5, "time_constant": 20.0}
    assert s.batch_reduction == "sum"
    assert s.overridden == {"kernel_post", "batch_reduction"}


def test_cell_with_a_new_kernel_starts_from_empty_kwargs() -> None:
    over = CellOverrides(kernel_pre=KernelOverride(name="gaussian", kwargs={"amplitude": 2.0}))
    s = cell_settings(_trainer(c=over), "c")
    assert (s.kernel_pre, s.kernel_pre_kwargs) == ("gaussian", {"amplitude": 2.0})


def test_same_name_override_is_a_kwargs_merge() -> None:
    over = CellOverrides(
        kernel_post=KernelOverride(name="exp_stdp_post", kwargs={"time_constant": 5.0})
    )
    s = cell_settings(_trainer(c=over), "c")
    assert s.kernel_post_kwargs == {"learning_rate": 1.0, "time_constant": 5.0}


def test_per_cell_override_from_the_command_line() -> None:
    cfg = validate_config(
        compose(
            [
                "trainer.weight.cells.input_exc.batch_reduction=sum",
                "+trainer.weight.cells.input_exc.kernel_post.kwargs.learning_rate=1e-3",
            ]
        )
    )
    s = cell_settings(cfg.trainer["weight"], "input_exc")
    assert s.batch_reduction == "sum"
    assert s.kernel_post_kwargs == {"learning_rate": 1e-3, "time_constant": 20.0}


def test_cell_override_errors_name_the_cell_key() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(compose(["trainer.weight.cells.input_exc.batch_reduction=maen"]))
    assert str(info.value).startswith("trainer.weight.cells.input_exc.batch_reduction: unknown")


def test_unknown_cell_has_did_you_mean() -> None:
    cfg = compose(["experiment=delay_adjusted"])
    cfg.trainer.delay.cells = {"input_ex": CellOverrides()}
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert (
        "trainer.delay.cells.input_ex: unknown connection 'input_ex'; did you mean 'input_exc'?"
        in (str(info.value))
    )


def test_lateral_connections_cannot_be_trained() -> None:
    cfg = compose([])
    cfg.trainer.weight.cells = {"input_exc": CellOverrides(), "inh_exc": CellOverrides()}
    with pytest.raises(
        ConfigError, match="trainer.weight.cells.inh_exc: lateral connections cannot be trained"
    ):
        validate_config(cfg)
