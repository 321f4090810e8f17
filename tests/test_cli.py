"""The ``stdp-run`` CLI: routing to Hydra, list/show/validate/replay/report/resume, real runs.

In-process runs use ``debug=default`` (a few samples, 20 steps) and ``hydra.run.dir=tmp``.
Multirun tests start ``stdp-run`` as a subprocess (as a user would) and are marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden" / "p01_kstdp_b1_nodelay_mean.npz"


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# -- routing and help --------------------------------------------------------------------------


def test_help_lists_the_subcommands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in ("run", "list", "show", "validate", "replay", "report", "resume"):
        assert name in result.stdout


def test_dash_h_is_hydras_app_help(cli) -> None:
    result = cli("-h")
    assert result.exit_code == 0
    assert "== Configuration groups ==" in result.stdout
    assert "experiment: default, delay_adjusted" in result.stdout


def test_cfg_job_prints_the_config_and_runs_nothing(cli, tmp_path: Path) -> None:
    # Hydra 1.3.8: flags must not sit between overrides (CLI-CONFIG-GUIDE 6.4, pitfall 2)
    result = cli(
        "experiment=delay_adjusted", "seed=5", f"hydra.run.dir={tmp_path}/r", "--cfg", "job"
    )
    assert result.exit_code == 0
    cfg = yaml.safe_load(result.stdout)
    assert cfg["seed"] == 5 and cfg["trainer"]["delay"]["kind"] == "DelayAdjustedKernelSTDPD"
    assert not (tmp_path / "r").exists()


# -- list / show / validate --------------------------------------------------------------------


def test_list_kernels_shows_kwargs(cli) -> None:
    result = cli("list", "kernels")
    assert result.exit_code == 0
    out = " ".join(result.stdout.split())
    for name in ("exp_stdp_post", "exp_stdp_pre", "gaussian", "rectangular", "mexican_hat"):
        assert name in out
    assert "learning_rate (required)" in out and "amplitude (required)" in out


@pytest.mark.parametrize("what", ["reductions", "bounds", "trainers", "neurons", "connections",
                                  "stimuli", "datasets"])  # fmt: skip
def test_list_every_registry(cli, what: str) -> None:
    from runner.registry import REGISTRIES

    result = cli("list", what)
    assert result.exit_code == 0
    out = " ".join(result.stdout.split())
    for name in REGISTRIES[what].names():
        assert name in out


def test_list_groups(cli) -> None:
    from runner.config.compose import group_options

    experiments = [line.split()[0] for line in cli("list", "experiments").stdout.splitlines()]
    assert experiments == group_options("experiment")
    assert {"default", "delay_adjusted"} <= set(experiments)
    assert "seed_reduction" in cli("list", "sweeps").stdout.split()
    launchers = cli("list", "hydra/launcher").stdout.split()
    assert {"basic", "joblib", "parallel", "slurm", "slurm_local", "submitit_local"} <= set(
        launchers
    )
    summary = cli("list").stdout
    assert "kernels: exp_stdp_post" in summary and "experiment/: default, delay_adjusted" in summary
    assert "trainer/: delay_adjusted, kernel_stdp" in summary


def test_list_unknown_group_exits_2(cli) -> None:
    result = cli("list", "kernal")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: list: unknown config group 'kernal'; did you mean 'kernel'?"
    )


def test_show_prints_the_resolved_config(cli) -> None:
    result = cli("show", "experiment=delay_adjusted", "trainer.weight.batch_reduction=sum")
    assert result.exit_code == 0
    cfg = yaml.safe_load(result.stdout)
    assert cfg["name"] == "delay_adjusted"
    assert cfg["trainer"]["weight"]["batch_reduction"] == "sum"
    assert "hydra" not in cfg
    with_hydra = yaml.safe_load(cli("show", "--hydra").stdout)
    assert with_hydra["hydra"]["job"]["name"] == "stdp_run"


def test_show_bad_override_exits_2(cli) -> None:
    result = cli("show", "trainer.weight.lrr=1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: trainer.weight.lrr: unknown key 'lrr'")


def test_validate_ok_and_all(cli) -> None:
    result = cli("validate", "experiment=delay_adjusted")
    assert result.exit_code == 0 and result.stdout.strip() == "ok  experiment=delay_adjusted"
    from runner.config.compose import group_options

    result = cli("validate", "--all")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    experiments = group_options("experiment")
    assert lines[: len(experiments)] == [f"ok  experiment={e}" for e in experiments]
    sweep_lines = [line for line in lines if "sweep=seed_reduction" in line]
    assert len(sweep_lines) == 4  # the 2x2 sweep is expanded into its four jobs


def test_validate_expands_command_line_sweeps(cli) -> None:
    result = cli("validate", "seed=0,1,2")
    assert result.exit_code == 0
    assert result.stdout.split("\n")[:3] == ["ok  seed=0", "ok  seed=1", "ok  seed=2"]


# -- runs ----------------------------------------------------------------------------------------


def test_default_run_writes_the_run_folder(run_cli) -> None:
    result, run_dir = run_cli("logger.plots=true")
    assert result.exit_code == 0, result.output
    for rel in (".hydra/config.yaml", ".hydra/overrides.yaml", "stdp_run.log", "metrics.csv",
                "summary.json", "weights/final.safetensors", "plots/weights_input_exc.png",
                "plots/receptive_fields_input_exc.png", "plots/learning_curves.png"):  # fmt: skip
        assert (run_dir / rel).is_file(), rel
    summary = _summary(run_dir)
    assert summary["status"] == "completed" and summary["device"] == "cpu"
    assert summary["overrides"] == ["debug=default", "logger.plots=true"]
    metrics = summary["metrics"]
    assert metrics["train_steps_per_s"] > 0 and metrics["compile_s"] == 0.0  # debug: eager
    assert "steps_per_second" not in metrics
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {"epoch", "step"} <= set(rows[0])
    assert not any(p.name.endswith(".tmp") for p in run_dir.rglob("*"))


def test_run_restores_argv_and_environment(run_cli, monkeypatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    argv = list(sys.argv)
    result, _ = run_cli()
    assert result.exit_code == 0
    assert sys.argv == argv and "HYDRA_FULL_ERROR" not in os.environ


def test_delay_adjusted_experiment_runs_and_saves_delays(run_cli) -> None:
    result, run_dir = run_cli("experiment=delay_adjusted")
    assert result.exit_code == 0, result.output
    from omegaconf import OmegaConf

    from runner.record import load_tensors

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    conn = cfg.network.connections.input_exc
    shape = (cfg.network.populations[conn.post].size, cfg.network.populations[conn.pre].size)
    delays = load_tensors(run_dir / "delays" / "final.safetensors")
    assert set(delays) == {"input_exc"}
    assert tuple(delays["input_exc"].shape) == shape
    low, high = conn.delay_bounds.clamp_min, conn.delay_bounds.clamp_max
    assert float(delays["input_exc"].min()) >= low and float(delays["input_exc"].max()) <= high


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.weight.kernel_post.kwargs.learning_rate=2e-4"],
        ["trainer.weight.cells.input_exc.batch_reduction=sum"],
        ["+trainer.weight.cells.input_exc.kernel_post.kwargs.learning_rate=1e-3"],
        ["device=cpu"],
    ],
    ids=["kernel-kwarg", "per-cell-reduction", "per-cell-kwarg", "device-cpu"],
)
def test_everyday_overrides_run(run_cli, overrides: list[str]) -> None:
    result, run_dir = run_cli(*overrides)
    assert result.exit_code == 0, result.output
    assert _summary(run_dir)["overrides"][1:] == overrides
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    key, _, value = overrides[0].lstrip("+").partition("=")
    if key == "device":  # a group override: the preset's value
        key = "device.name"
    node = saved
    for part in key.split("."):
        node = node[part]
    assert str(node) == value or float(node) == float(value)


def test_same_seed_gives_the_same_weights(run_cli, tmp_path: Path) -> None:
    from runner.record import load_tensors

    result, run_dir = run_cli("seed=3")
    assert result.exit_code == 0
    first = load_tensors(run_dir / "weights" / "final.safetensors")
    shutil.rmtree(run_dir)
    result, run_dir = run_cli("seed=3")
    second = load_tensors(run_dir / "weights" / "final.safetensors")
    assert all(bool((first[k] == second[k]).all()) for k in first)


def test_plugin_kernel_is_listed_and_runs(cli, run_cli, kernel_plugin) -> None:
    listed = " ".join(cli("list", "kernels").stdout.split())
    assert "triangle" in listed and "plugin stdp-plugin-demo" in listed
    assert "amplitude (required), width=10.0" in listed
    result, run_dir = run_cli(
        "trainer.weight.cells.input_exc.kernel_post.name=triangle",
        "+trainer.weight.cells.input_exc.kernel_post.kwargs.amplitude=1e-3",
    )
    assert result.exit_code == 0, result.output
    assert kernel_plugin.CALLS[0] > 0  # the plugin kernel was evaluated by the trainer
    assert (run_dir / "summary.json").is_file()


def test_module_attr_kernel_runs(run_cli, tmp_path: Path, monkeypatch) -> None:
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "my_kernels_demo.py").write_text(
        "import torch\nCALLS = [0]\n"
        "def exp_both(diff, *, learning_rate, time_constant):\n"
        "    CALLS[0] += 1\n"
        "    return learning_rate * torch.exp(-diff.abs() / time_constant)\n"
    )
    monkeypatch.syspath_prepend(str(mod))
    result, run_dir = run_cli("trainer.weight.kernel_pre.name=my_kernels_demo:exp_both")
    assert result.exit_code == 0, result.output
    import my_kernels_demo  # type: ignore[import-not-found]

    assert my_kernels_demo.CALLS[0] > 0
    sys.modules.pop("my_kernels_demo", None)


# -- replay / report / resume ------------------------------------------------------------------


@pytest.mark.skipif(not GOLDEN.is_file(), reason="golden case not in tests/data")
def test_replay_is_wired(cli, tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    result = cli("replay", GOLDEN, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_replay_missing_case_exits_2(cli, tmp_path: Path) -> None:
    result = cli("replay", tmp_path / "nope.npz", "--out", tmp_path / "o.npz")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "nope.npz" in result.stderr


def test_resume_checks_the_folder(cli, tmp_path: Path) -> None:
    result = cli("resume", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path}: not a run folder (no .hydra/config.yaml)"
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    result = cli("resume", tmp_path)
    assert result.exit_code == 2
    assert "no checkpoint to resume from" in result.stderr


def test_report_of_a_single_run(cli, run_cli) -> None:
    result, run_dir = run_cli()
    assert result.exit_code == 0
    rep = cli("report", run_dir)
    assert rep.exit_code == 0, rep.output
    assert "completed" in rep.stdout
    with (run_dir / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["status"] == "completed"


# -- multirun (subprocess, slow) ---------------------------------------------------------------


def _stdp_run(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")
    env = {**os.environ, "TTY_INTERACTIVE": "0"}
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _check_sweep(sweep_dir: Path) -> list[dict[str, str]]:
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    for job in jobs:
        assert _summary(job)["status"] == "completed"
        assert (job / "metrics.csv").is_file() and (job / ".hydra" / "overrides.yaml").is_file()
    with (sweep_dir / "sweep_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert all(r["status"] == "completed" for r in rows)
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "parallel"])
def test_multirun_2x2_sweep(tmp_path: Path, launcher: str) -> None:
    sweep = tmp_path / "sweep"
    proc = _stdp_run("-m", "debug=default", f"hydra/launcher={launcher}", "seed=0,1",
                     "trainer.weight.batch_reduction=mean,sum", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _check_sweep(sweep)
    combos = {tuple(r["overrides"].split()[-2:]) for r in rows}
    assert combos == {
        (f"seed={s}", f"trainer.weight.batch_reduction={r}")
        for s in (0, 1)
        for r in ("mean", "sum")
    }
    assert "sweep summary" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    proc = _stdp_run("-m", "debug=default", "hydra/launcher=slurm_local", "seed=0,1",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [_summary(sweep / j)["status"] for j in ("0", "1")] == ["completed", "completed"]
    assert (sweep / ".submitit").is_dir()


@pytest.mark.slow
def test_sweep_preset_runs_without_dash_m(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = _stdp_run(
        "sweep=seed_reduction", "debug=default", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_sweep(sweep)


@pytest.mark.slow
def test_bad_sweep_job_stops_the_sweep_before_it_starts(tmp_path: Path) -> None:
    """A config error in the last job: one line naming it, exit 2, no job run, no folder.
    (A job that fails while running: tests/test_reliability.py.)"""
    sweep = tmp_path / "sweep"
    proc = _stdp_run("-m", "debug=default", "trainer.weight.batch_reduction=mean,maen",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: [trainer.weight.batch_reduction=maen] trainer.weight.batch_reduction: unknown "
        "reduction 'maen'; did you mean 'mean' or 'median'? valid: mean, sum, amax, amin, "
        "median (1 of 2 jobs invalid; nothing was run)"
    ]
    assert proc.stdout == ""
    assert not sweep.exists() and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_default_experiment_runs_within_a_minute(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = _stdp_run("hydra.run.dir=run", cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert elapsed < 60
    metrics = _summary(tmp_path / "run")["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_main_freezes_the_heap_for_a_quick_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` leaves every object to the permanent generation, so interpreter shutdown skips
    its full collections (seconds after a compiled run); the objects are still freed."""
    import gc

    from runner import cli

    monkeypatch.setattr(sys, "argv", ["stdp-run", "--help"])
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
        assert exc.value.code == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
