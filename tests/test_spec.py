"""The typed engine spec: built once from the validated config and from a replay case, and
consumed by the same builders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from runner.build import build_experiment
from runner.config.validate import validate_config
from runner.replay_case import trainer_specs, updater_spec
from runner.rules import build_trainer, builtin_names, registry_names
from runner.spec_config import experiment_spec

GOLDEN = Path(__file__).parent / "data" / "golden"
CPU = torch.device("cpu")


def test_values_reach_the_engine_from_the_typed_config(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg("debug=default", "run.eval_batch_size=7", "seed=3")
    spec = experiment_spec(validate_config(cfg))
    assert spec.task.eval_batch_size == 7 and spec.network.seed == 3
    exp = build_experiment(cfg, device=CPU, dtype=torch.float32)
    assert exp.task.eval_batch_size == 7  # type: ignore[attr-defined]
    auto = build_experiment(compose_cfg("debug=default"), device=CPU, dtype=torch.float32)
    assert auto.task.eval_batch_size == 128  # type: ignore[attr-defined]  # the CPU's automatic


def test_the_typed_config_and_its_spec_build_the_same_network(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    config = validate_config(compose_cfg("debug=default"))
    a = build_experiment(config, device=CPU, dtype=torch.float64)
    b = build_experiment(experiment_spec(config), device=CPU, dtype=torch.float64)
    for name, conn in a.network.connections.items():
        assert torch.equal(conn.weight, b.network.connections[name].weight)
    assert a.plan == b.plan


def test_a_case_builds_the_same_rules_through_either_name_table() -> None:
    case = GOLDEN / "p08_combined_kstdp_delayed_plus_stdpd.npz"
    with np.load(case, allow_pickle=False) as z:
        params = json.loads(str(z["params_json"]))
    specs = trainer_specs(params)
    assert [s.kind for s in specs] == ["KernelSTDP", "DelayAdjustedKernelSTDPD"]
    for spec in specs:
        t1, cells1 = build_trainer(spec, registry_names())
        t2, cells2 = build_trainer(spec, builtin_names())
        assert type(t1) is type(t2) and cells1 == cells2
        # only the rule that declares `takes_delayed` gets the setting
        (settings,) = cells1.values()
        assert ("delayed" in settings) == (spec.kind == "KernelSTDP")
    assert updater_spec(params, "weight").accumulate == params["accumulator_reduction"]
