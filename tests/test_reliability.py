"""Reliability through the CLI: interrupt and resume, kill and resume, blow-ups, failing jobs."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from runner.checkpoint import latest_checkpoint, load_checkpoint
from runner.loop import LoopState

# long enough to interrupt (about 40 batches), short enough for the default test run
RUN = ["run.n_train=400", "run.n_eval=50", "run.checkpoint_every=2", "logger.plots=false"]


def _exe() -> str:
    return shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")


def _run(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_exe(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([_exe(), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_checkpoints(run_dir: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((run_dir / "checkpoint").glob("ckpt_*.pt"))
        if len(found) >= count or (
            found and max(int(p.stem.split("_b")[1]) for p in found) >= 2 * count
        ):
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    base = tmp_path_factory.mktemp("full")
    proc = _run("hydra.run.dir=run", *RUN, cwd=base)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return load_file(str(base / "run" / "weights" / "final.safetensors"))


def _assert_same(weights: dict[str, torch.Tensor], run_dir: Path) -> None:
    got = load_file(str(run_dir / "weights" / "final.safetensors"))
    assert got.keys() == weights.keys()
    for key in weights:
        assert torch.equal(got[key], weights[key]), key


@pytest.mark.slow
def test_sigint_then_resume_equals_uninterrupted(tmp_path: Path, uninterrupted) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    proc = _start("hydra.run.dir=run", *RUN, cwd=tmp_path)
    _wait_for_checkpoints(run_dir, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "interrupted by SIGINT" in err and "stdp-run resume" in err
    assert "Traceback" not in err
    assert "interrupted by SIGINT" in (run_dir / "FAILED").read_text()
    assert not (run_dir / "summary.json").exists()

    resumed = _run("resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert not (run_dir / "FAILED").exists()
    _assert_same(uninterrupted, run_dir)


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_equals_uninterrupted(
    tmp_path: Path, uninterrupted
) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    proc = _start("hydra.run.dir=run", *RUN, cwd=tmp_path)
    _wait_for_checkpoints(run_dir, 2, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resumed = _run("resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same(uninterrupted, run_dir)
    steps = [int(r["step"]) for r in csv.DictReader((run_dir / "metrics.csv").open()) if r["step"]]
    assert len(steps) == len(set(steps)), "metrics rows after the checkpoint were kept twice"


def test_exploding_learning_rate_stops_cleanly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _run("hydra.run.dir=run", "run.n_train=200", "run.checkpoint_every=1",
                "trainer.weight.kernel_post.kwargs.learning_rate=1e33",
                "network.connections.input_exc.weight_bounds.upper=null",
                "network.connections.input_exc.weight_bounds.clamp_max=null",
                "network.connections.input_exc.normalize=null", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "non-finite" in lines[0] and "learning rate" in lines[0]
    assert "Traceback" not in proc.stderr
    assert "non-finite" in (run_dir / "FAILED").read_text()
    assert not (run_dir / "summary.json").exists()
    # the last checkpoint was written before the blow-up and holds finite weights
    from hydra import compose, initialize_config_module

    import runner.config.schema  # noqa: F401
    from runner.build import build_experiment

    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=["device=cpu", "run.n_train=200"])
    exp = build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)
    state = load_checkpoint(latest_checkpoint(run_dir), exp.network, exp.task)
    assert isinstance(state, LoopState) and state.batch >= 1
    assert all(torch.isfinite(p).all() for p in exp.network.parameters())


def test_one_failing_job_of_three_leaves_the_others_complete(tmp_path: Path) -> None:
    """A job that fails while running (config errors stop a sweep before it starts): the
    others complete, and the sweep table is printed with the failed job marked."""
    import os

    from test_prechecks import BOOM  # tests/ is on sys.path (rootdir conftest)

    (tmp_path / "boom_kernel.py").write_text(BOOM)
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [_exe(), "-m", "debug=default", "trainer.weight.kernel_post.name=boom_kernel:boom",
         "trainer.weight.kernel_post.kwargs.learning_rate=4e-4,2,4e-4",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "300"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert (sweep / "0" / "summary.json").is_file() and (sweep / "2" / "summary.json").is_file()
    failed = (sweep / "1" / "FAILED").read_text()
    assert "boom" in failed and "\n" not in failed.strip()
    with (sweep / "sweep_summary.csv").open() as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    assert [rows[j]["status"] for j in ("0", "1", "2")] == ["completed", "failed", "completed"]
    assert f"sweep {sweep}" in proc.stdout and "failed" in proc.stdout


def test_unwritable_run_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    proc = _run("hydra.run.dir=a_file/run", "debug=default", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: cannot write a_file/run: Not a directory (check the folder, "
        "its permissions and the free space; hydra.run.dir=... picks another run folder)"
    ]


def test_full_disk_while_writing_is_one_line(run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    from runner import record

    def full(self, row):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(record.MetricsWriter, "append", full)
    result, run_dir = run_cli()
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write {run_dir / 'metrics.csv'}: No space left on device (check the "
        "folder, its permissions and the free space; hydra.run.dir=... picks another run folder)"
    ]
