"""The batched launcher (hydra/launcher=batched): grouping rules, per-job folders, equality with
the basic launcher, a failing replica, checkpoints, and discovery from a fresh install."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runner.batched.grouping import (
    Group,
    balanced,
    batchable_key,
    cache_capacity,
    group_jobs,
    memory_capacity,
    replica_bytes,
    split_key,
    step_bytes,
)
from runner.batched.watch import split, tag
from runner.callbacks import StopRequest
from runner.record import load_tensors

LR = "trainer.weight.kernel_post.kwargs.learning_rate"
TINY = ("debug=default", "run.compile=false", "logger.level=INFO")


# ------------------------------------------------------------------------------ grouping rule
def _cfg(**changes: object) -> dict:
    cfg: dict = {
        "seed": 0,
        "dtype": "float32",
        "run": {"batch_size": 2, "n_train": 4, "steps_per_sample": 20},
        "network": {
            "populations": {
                "input": {"kind": "input", "size": 64, "params": {}},
                "exc": {"kind": "alif", "size": 100, "params": {"thresh_v": -52.0}},
            },
            "connections": {
                "input_exc": {
                    "kind": "dense", "pre": "input", "post": "exc", "max_delay": None,
                    "weight_init": {"kind": "uniform", "low": 0.0, "high": 0.3},
                    "weight_bounds": {"upper": {"fn": "multiplicative", "limit": 1.0}},
                    "normalize": {"target": 3.2},
                }
            },
        },
        "trainer": {"weight": {"kind": "kernel_stdp", "kernel_post": {
            "name": "exp_stdp_post", "kwargs": {"learning_rate": 1e-3, "time_constant": 20.0}}}},
        "stimulus": {"kind": "poisson", "params": {"max_rate_hz": 400.0}},
        "hydra": {"job": {"num": 0}},
    }  # fmt: skip
    for path, value in changes.items():
        node = cfg
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("seed", 3),
        ("trainer__weight__kernel_post__kwargs__learning_rate", 4e-4),
        ("trainer__weight__kernel_post__kwargs__time_constant", 5),  # int vs float: still a number
        ("network__populations__exc__params__thresh_v", -50.0),
        ("network__connections__input_exc__weight_bounds__upper__limit", 0.5),
        ("network__connections__input_exc__normalize__target", 6.4),
        ("network__connections__input_exc__weight_init__high", 0.1),
        ("stimulus__params__max_rate_hz", 200.0),
        ("hydra__job__num", 7),  # Hydra's own node never splits a group
    ],
)
def test_values_that_may_vary_per_replica_keep_one_group(change: str, value: object) -> None:
    assert split_key(_cfg(), _cfg(**{change: value})) is None


@pytest.mark.parametrize(
    ("change", "value", "key"),
    [
        ("network__populations__exc__size", 400, "network.populations.exc.size"),
        ("network__populations__exc__kind", "lif", "network.populations.exc.kind"),
        ("trainer__weight__kernel_post__name", "gaussian", "trainer.weight.kernel_post.name"),
        ("trainer__weight__kind", "delay_adjusted", "trainer.weight.kind"),
        ("run__n_train", 8, "run.n_train"),
        ("run__batch_size", 4, "run.batch_size"),
        ("run__steps_per_sample", 50, "run.steps_per_sample"),
        ("dtype", "float64", "dtype"),
        ("network__connections__input_exc__max_delay", 10.0, "network.connections.input_exc.max_delay"),
        ("network__connections__input_exc__weight_bounds__upper__fn", "hard",
         "network.connections.input_exc.weight_bounds.upper.fn"),
        ("network__connections__input_exc__normalize", None,
         "network.connections.input_exc.normalize.target"),
        ("trainer__weight__kernel_post__kwargs__learning_rate", True,
         "trainer.weight.kernel_post.kwargs.learning_rate"),  # a bool is no rate
    ],
)  # fmt: skip
def test_structural_overrides_split_a_group_and_name_the_key(
    change: str, value: object, key: str
) -> None:
    assert split_key(_cfg(), _cfg(**{change: value})) == key
    groups = group_jobs([_cfg(), _cfg(seed=1), _cfg(**{change: value})], capacity=16)
    assert groups == [Group([0, 1], ""), Group([2], f"{key} differs")]


def test_a_population_present_in_one_config_only_splits() -> None:
    other = _cfg()
    other["network"]["populations"]["inh"] = {"kind": "lif", "size": 100, "params": {}}
    assert split_key(_cfg(), other) == "network.populations.inh.kind"


def test_groups_are_capped_and_jobs_join_the_first_group_they_fit() -> None:
    configs = [_cfg(seed=s, dtype=d) for s in range(3) for d in ("float32", "float64")]
    groups = group_jobs(configs, capacity=2)
    assert [g.jobs for g in groups] == [[0, 2], [1, 3], [4], [5]]
    assert groups[1].why == "dtype differs"
    assert groups[2].why == "the group is full (2 jobs)"
    with pytest.raises(ValueError, match="capacity"):
        group_jobs(configs, capacity=0)


def test_batchable_keys_are_the_numeric_hyperparameters_only() -> None:
    assert batchable_key("trainer.delay.cells.input_exc.kernel_pre.kwargs.learning_rate")
    assert not batchable_key("network.connections.input_exc.scale")
    assert not batchable_key("trainer.weight.kernel_post.name")


def test_memory_caps_the_group_size() -> None:
    small, big = replica_bytes(_cfg()), replica_bytes(_cfg(network__populations__exc__size=400))
    assert big == pytest.approx(4 * small, rel=0.2)
    assert replica_bytes(_cfg(dtype="float64")) == 2 * small
    assert memory_capacity(small, free_bytes=10 * small, fraction=0.5) == 5
    assert memory_capacity(big, free_bytes=small, fraction=0.5) == 1  # never below one


def test_the_cpu_caches_cap_the_group_size(caplog: pytest.LogCaptureFixture) -> None:
    from runner.batched.launch import capacity

    dense = _cfg(trainer__weight__cells={"input_exc": {}})
    assert step_bytes(_cfg(), lambda kind, i, o: i * o) == 64 * 100 * 4  # fixed: read only
    assert step_bytes(dense, lambda kind, i, o: i * o) == 2 * 64 * 100 * 4  # trained: + update
    assert step_bytes(_cfg(dtype="float64"), lambda kind, i, o: i * o) == 64 * 100 * 8
    assert cache_capacity(640 * 2**10, budget_mb=3.0) == 4
    assert cache_capacity(10 * 2**20, budget_mb=3.0) == 1  # never below one
    assert cache_capacity(10 * 2**20, budget_mb=0) > 10**6  # 0: no cap
    assert [balanced(5, 16), balanced(16, 16), balanced(4, 16), balanced(7, 3)] == [4, 16, 4, 7]
    # mnist_stdp_cpu's input: 784 x 100 trained weights, 0.6 MB a replica -> at most 5 in
    # 3 MB, and 16 jobs as four groups of 4 rather than 5, 5, 5, 1
    mnist = _cfg(
        network__populations__input__size=784, trainer__weight__cells={"input_exc": {}},
        device={"name": "cpu"},
    )  # fmt: skip
    with caplog.at_level("INFO", logger="runner.batched"):
        assert capacity([mnist] * 16, max_replicas=16, fraction=0.5) == 4
    assert "at most 5 replicas per group on the CPU" in caplog.text
    assert "hydra.launcher.cpu_group_mb" in caplog.text
    assert capacity([mnist] * 16, max_replicas=16, fraction=0.5, cpu_group_mb=0) == 16
    assert capacity([mnist] * 3, max_replicas=2, fraction=0.5) == 2  # max_replicas still rules
    small = _cfg(trainer__weight__cells={"input_exc": {}}, device={"name": "cpu"})
    assert capacity([small] * 16, max_replicas=16, fraction=0.5) == 16  # 64 x 100: not capped


def test_metrics_are_tagged_and_split_per_replica() -> None:
    merged = {tag(0, "accuracy"): 0.5, tag(1, "accuracy"): 0.75, "compile_s": 0.0}
    assert split(merged, 2) == [
        {"accuracy": 0.5, "compile_s": 0.0},
        {"accuracy": 0.75, "compile_s": 0.0},
    ]


# ------------------------------------------------------------------------------- whole sweeps
def _sweep(cli: Callable, folder: Path, *overrides: str, batched: bool) -> tuple[int, list[Path]]:
    launcher = ("hydra/launcher=batched",) if batched else ()
    result = cli("-m", *launcher, *TINY, *overrides, f"hydra.sweep.dir={folder}")
    assert folder.is_dir(), f"the sweep never started (exit {result.exit_code}):\n{result.output}"
    return result.exit_code, _jobs(folder)


def _jobs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def _files(job: Path) -> set[str]:
    return {p.relative_to(job).as_posix() for p in job.rglob("*") if p.is_file()}


def _assert_same_parameters(
    basic: list[Path], batched: list[Path], *, rel: float = 0.0, files: bool = True
) -> None:
    assert len(basic) == len(batched) > 1
    for a, b in zip(basic, batched, strict=True):
        assert not files or _files(a) == _files(b), a.name
        for kind in ("weights", "delays"):
            if not (a / kind / "final.safetensors").exists():
                continue
            left = load_tensors(a / kind / "final.safetensors")
            right = load_tensors(b / kind / "final.safetensors")
            assert left.keys() == right.keys()
            for name in left:
                if rel == 0.0:
                    assert torch.equal(left[name], right[name]), f"{a.name} {kind} {name}"
                else:
                    torch.testing.assert_close(right[name], left[name], rtol=rel, atol=1e-9)


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "sweep_summary.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_batched_sweep_equals_the_basic_launcher_bit_for_bit_in_float64(
    cli: Callable, tmp_path: Path
) -> None:
    grid = ("dtype=float64", "seed=0,1", f"{LR}=1e-4,4e-4", "run.n_eval=4", "run.eval_every=2",
            "run.monitor_samples=4")  # fmt: skip
    code, basic = _sweep(cli, tmp_path / "basic", *grid, batched=False)
    assert code == 0
    code, batched = _sweep(cli, tmp_path / "batched", *grid, batched=True)
    assert code == 0
    _assert_same_parameters(basic, batched)
    rows = _rows(tmp_path / "batched")
    assert [r["status"] for r in rows] == ["completed"] * 4
    assert f"seed=1 {LR}=0.0004" in rows[3]["overrides"]
    log = (batched[2] / "stdp_run.log").read_text()
    assert "group 1/1: 4 jobs: 4 replica(s) in one simulation" in log
    assert re.search(r"group 1/1: 4 jobs: epoch 1/1 batch", log)  # the progress names it
    summary = json.loads((batched[2] / "summary.json").read_text())
    assert summary["timing"]["train_samples"] == 4  # the job's own samples, not the group's
    alone = json.loads((basic[2] / "summary.json").read_text())
    assert summary["accuracy_curve"] == alone["accuracy_curve"]  # monitors every 2 samples
    assert [p["samples"] for p in summary["accuracy_curve"]] == [2, 4]
    assert summary["metrics"]["accuracy"] == alone["metrics"]["accuracy"]
    assert "not bit for bit" not in log  # one mode (run.compile=false) for both launchers


def test_a_group_run_in_another_mode_than_its_jobs_alone_says_so(
    cli: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.compile=auto weighs a group's work, not a job's: where the choice differs from a
    job's own, compiled and eager rounding differ, and the log says the jobs then match their
    separate runs to rounding only."""
    import runner.build
    from runner.compile_policy import CompileChoice

    smallest: list[int] = []

    def alone_compiles(mode: str, *, synapse_samples: int, **_: object) -> CompileChoice:
        smallest.append(min([synapse_samples, *smallest]))
        return CompileChoice(synapse_samples <= smallest[-1], f"a test policy ({mode})")

    # each job alone would compile; the stacked pair (twice the synapses) runs eager
    monkeypatch.setattr(runner.build, "choose_compile", alone_compiles)
    code, jobs = _sweep(cli, tmp_path / "s", "run.compile=auto", "seed=0,1", batched=True)
    assert code == 0
    log = (jobs[1] / "stdp_run.log").read_text()
    assert "the group runs eager where each job alone would run compiled" in log
    assert "run.compile=true or false makes them equal" in log


@pytest.mark.slow
def test_batched_sweep_equals_the_basic_launcher_in_float32(cli: Callable, tmp_path: Path) -> None:
    grid = ("seed=2", f"{LR}=8e-4", "network.populations.exc.params.thresh_v=-52,-51")
    _, basic = _sweep(cli, tmp_path / "basic", *grid, batched=False)
    _, batched = _sweep(cli, tmp_path / "batched", *grid, batched=True)
    _assert_same_parameters(basic, batched, rel=1e-6)


def test_learned_delays_equal_the_basic_launcher(cli: Callable, tmp_path: Path) -> None:
    grid = (
        "experiment=delay_adjusted", "dtype=float64", "run.n_train=4", "run.n_eval=2",
        "run.steps_per_sample=60", "run.log_every=30", "seed=1",
        "trainer.delay.kernel_post.kwargs.learning_rate=-1.5e-4,-3e-4",
    )  # fmt: skip
    code, basic = _sweep(cli, tmp_path / "basic", *grid, batched=False)
    assert code == 0
    code, batched = _sweep(cli, tmp_path / "batched", *grid, batched=True)
    assert code == 0
    assert all((job / "delays" / "final.safetensors").is_file() for job in batched)
    _assert_same_parameters(basic, batched)


def test_groups_split_on_structure_with_one_line_each(cli: Callable, tmp_path: Path) -> None:
    code, jobs = _sweep(cli, tmp_path / "s", "run.steps_per_sample=10,20", "seed=0,1", batched=True)
    assert code == 0
    assert [r["status"] for r in _rows(tmp_path / "s")] == ["completed"] * 4
    log = (jobs[2] / "stdp_run.log").read_text()
    assert "group 2/2: 2 jobs" in log


EXPLODE = (
    "run.n_train=4", "run.batch_size=1", "run.steps_per_sample=50",
    "network.connections.input_exc.weight_bounds.upper=null",
    "network.connections.input_exc.weight_bounds.clamp_max=null",
    "network.connections.input_exc.normalize=null", f"{LR}=1e-4,1e38,2e-4",
)  # fmt: skip


def test_a_failing_replica_fails_only_its_job(cli: Callable, tmp_path: Path) -> None:
    from runner.loop import NonFiniteError

    # the sweep reports its failed job at the end, as with the basic launcher
    with pytest.raises(NonFiniteError):
        _sweep(cli, tmp_path / "basic", *EXPLODE, batched=False)
    with pytest.raises(NonFiniteError):
        _sweep(cli, tmp_path / "batched", *EXPLODE, batched=True)
    basic, batched = _jobs(tmp_path / "basic"), _jobs(tmp_path / "batched")
    assert [r["status"] for r in _rows(tmp_path / "batched")] == [
        "completed",
        "failed",
        "completed",
    ]
    failed = (batched[1] / "FAILED").read_text()
    assert "non-finite" in failed and failed == (basic[1] / "FAILED").read_text()
    assert not (batched[1] / "summary.json").exists()
    for good in (0, 2):
        assert (
            load_tensors(batched[good] / "weights" / "final.safetensors")["input_exc"]
            .isfinite()
            .all()
        )
    _assert_same_parameters([basic[0], basic[2]], [batched[0], batched[2]], rel=1e-6)


def test_groups_side_by_side_equal_groups_in_turn(cli: Callable, tmp_path: Path) -> None:
    """hydra.launcher.n_jobs=2: two groups at a time in worker processes, each job's folder and
    weights as when the groups run one after another; a failing replica in a worker fails its
    job alone, and the sweep ends with its error."""
    from runner.loop import NonFiniteError

    grid = ("dtype=float64", "seed=0,1", f"{LR}=1e-4,4e-4", "hydra.launcher.max_replicas=2")
    code, in_turn = _sweep(cli, tmp_path / "in_turn", *grid, batched=True)
    assert code == 0
    result = cli("-m", "hydra/launcher=batched", *TINY, *grid, "hydra.launcher.n_jobs=2",
                 f"hydra.sweep.dir={tmp_path / 'side'}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Launching 4 jobs as 2 group(s) (batched launcher, 2 at a time)" in result.output
    side = _jobs(tmp_path / "side")
    _assert_same_parameters(in_turn, side)
    assert [r["status"] for r in _rows(tmp_path / "side")] == ["completed"] * 4
    assert (
        "group 2/2: 2 jobs: 2 replica(s) in one simulation"
        in (side[3] / "stdp_run.log").read_text()
    )
    split = ("hydra.launcher.max_replicas=2", "hydra.launcher.n_jobs=2")
    with pytest.raises(NonFiniteError):
        _sweep(cli, tmp_path / "explode", *EXPLODE, *split, batched=True)
    assert [r["status"] for r in _rows(tmp_path / "explode")] == [
        "completed",
        "failed",
        "completed",
    ]
    assert "non-finite" in (_jobs(tmp_path / "explode")[1] / "FAILED").read_text()


def test_group_checkpoints_resume_each_job(cli: Callable, tmp_path: Path) -> None:
    grid = ("dtype=float64", "run.checkpoint_every=1", "seed=0,1")
    _, jobs = _sweep(cli, tmp_path / "c", *grid, batched=True)
    for job in jobs:
        assert sorted(p.name for p in (job / "checkpoint").iterdir()) == [
            "ckpt_e0000_b0000001.pt", "ckpt_e0000_b0000002.pt"]  # fmt: skip
    final = load_tensors(jobs[1] / "weights" / "final.safetensors")
    (jobs[1] / "summary.json").unlink()  # as if killed after its last checkpoint
    assert cli("resume", str(jobs[1])).exit_code == 0
    resumed = load_tensors(jobs[1] / "weights" / "final.safetensors")
    assert all(torch.equal(final[k], resumed[k]) for k in final)


@pytest.mark.slow
def test_a_fresh_install_finds_the_launcher(tmp_path: Path) -> None:
    """Build the wheel, unpack it alone on the path, run a batched sweep in a subprocess."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheel"), str(root)], check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("stdp_run-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "hydra_plugins" / "stdp_run_batched" / "batched_launcher.py").is_file()
    assert not (site / "hydra_plugins" / "__init__.py").exists()  # a namespace package
    code = "import runner, sys; assert runner.__file__.startswith(sys.argv[1]); " \
           "from runner.cli import main; sys.argv[1:] = sys.argv[2:]; main()"  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, str(site), "-m", "hydra/launcher=batched", *TINY,
         "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "as 1 group(s) (batched launcher)" in proc.stdout + proc.stderr
    assert [r["status"] for r in _rows(tmp_path / "sweep")] == ["completed"] * 2


class _StopAfterFirstBatch(StopRequest):
    """As if Ctrl-C came during the first batch."""

    def requested(self) -> bool:
        self.signum = signal.SIGINT
        return True


def test_an_interrupted_group_checkpoints_every_job_and_each_resumes(
    cli: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.batched.group_run as group_run

    grid = ("dtype=float64", "seed=0,1")
    _, alone = _sweep(cli, tmp_path / "alone", *grid, batched=False)
    monkeypatch.setattr(group_run, "StopRequest", _StopAfterFirstBatch)
    code, jobs = _sweep(cli, tmp_path / "b", *grid, batched=True)
    assert code == 128 + signal.SIGINT
    for job in jobs:
        assert "interrupted by SIGINT at epoch 1, batch 1" in (job / "FAILED").read_text()
        assert [p.name for p in (job / "checkpoint").iterdir()] == ["ckpt_e0000_b0000001.pt"]
    monkeypatch.undo()
    for job in jobs:
        assert cli("resume", str(job)).exit_code == 0
        assert not (job / "FAILED").exists()
    _assert_same_parameters(alone, jobs, files=False)


def test_an_interrupted_group_ends_the_sweep(
    cli: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with single runs, a stopped group ends the sweep: the next groups never start."""
    import runner.batched.group_run as group_run

    monkeypatch.setattr(group_run, "StopRequest", _StopAfterFirstBatch)
    code, jobs = _sweep(cli, tmp_path / "b", "seed=0,1,2", "hydra.launcher.max_replicas=1",
                        batched=True)  # fmt: skip
    assert code == 128 + signal.SIGINT
    assert [job.name for job in jobs] == ["0"]  # groups 2 and 3 were not started
    assert "interrupted by SIGINT" in (jobs[0] / "FAILED").read_text()


@pytest.mark.slow
def test_ctrl_c_reaches_groups_side_by_side(tmp_path: Path) -> None:
    """hydra.launcher.n_jobs=2 and a real SIGINT to the launcher's process group (Ctrl-C): both
    running groups checkpoint their jobs, the third group never starts, the sweep exits 130."""
    import time

    cmd = [sys.executable, "-m", "runner.cli", "-m", "hydra/launcher=batched", *TINY,
           "hydra.launcher.max_replicas=1", "hydra.launcher.n_jobs=2", "seed=0,1,2",
           "run.n_train=1000", "run.batch_size=1", "logger.level=INFO",
           f"hydra.sweep.dir={tmp_path / 's'}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)  # fmt: skip
    logs = [tmp_path / "s" / str(j) / "stdp_run.log" for j in (0, 1)]
    deadline = time.monotonic() + 120
    while not all(p.is_file() and "in one simulation" in p.read_text() for p in logs):
        assert proc.poll() is None and time.monotonic() < deadline, "the groups never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, output[-2000:]
    for job in (0, 1):
        folder = tmp_path / "s" / str(job)
        assert "interrupted by SIGINT" in (folder / "FAILED").read_text()
        assert len(list((folder / "checkpoint").glob("ckpt_*.pt"))) == 1
    assert not (tmp_path / "s" / "2").exists()


def test_a_group_the_engine_cannot_stack_runs_one_job_at_a_time(
    cli: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.batched.group_run as group_run
    from runner.core.replicas import ReplicaMismatch

    def refuse(networks: object) -> None:
        raise ReplicaMismatch("network.populations.exc.size differs: 100 vs 400 (a test)")

    monkeypatch.setattr(group_run, "stack_networks", refuse)
    code, jobs = _sweep(cli, tmp_path / "s", "seed=0,1", batched=True)
    assert code == 0
    assert [r["status"] for r in _rows(tmp_path / "s")] == ["completed"] * 2
    log = (jobs[0] / "stdp_run.log").read_text()
    assert "its 2 jobs run one at a time: network.populations.exc.size differs" in log
    assert "group 1/1: 2 jobs, job 1/2: 1 replica(s) in one simulation" in log


@pytest.mark.slow
def test_the_launcher_benchmark_writes_its_json(tmp_path: Path) -> None:
    """``scripts/bench.py --launchers --quick``: both launchers, equal weights, the ratios."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "launchers.json"
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "bench.py"), "--launchers", "--quick",
         "--json", str(out)], capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"basic", "batched"}
    assert data["ratios"]["basic_over_batched"] > 0
    assert data["max_rel_diff"] == 0.0
    assert data["modes_differ"] is False  # both launchers ran the same step


def test_hydra_finds_the_batched_launcher_from_any_folder(tmp_path: Path) -> None:
    # An editable install reaches hydra_plugins/ through setuptools' import hook, which Hydra's
    # plugin scan (pkgutil over hydra_plugins.__path__) cannot list: outside the checkout,
    # `stdp-run -m hydra/launcher=batched` said "unknown option 'batched'" until the schema
    # put the folder on the namespace path. An entry put into hydra_plugins.__path__ itself was
    # dropped whenever sys.path changed before Hydra's scan (pytest's collection did, in CI).
    script = (
        "import sys\n"
        "import runner.config.schema\n"
        "sys.path.insert(0, 'elsewhere')\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.launcher import Launcher\n"
        "print(sorted(c.__name__ for c in Plugins.instance().discover(Launcher)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BatchedLauncher" in done.stdout
