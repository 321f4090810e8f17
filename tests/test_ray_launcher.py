"""The Ray launcher preset (hydra/launcher=ray_local) on this machine: slow, needs the extra."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_ray_local_launcher(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    pytest.importorskip("ray")
    sweep = tmp_path / "sweep"
    exe = shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")
    proc = subprocess.run(
        [exe, "-m", "hydra/launcher=ray_local", "debug=default", "seed=0,1",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "TTY_INTERACTIVE": "0"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ray Launcher is launching 2 jobs" in proc.stdout + proc.stderr
    seeds = []
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["status"] == "completed"
        seeds.append(summary["seed"])
    assert seeds == [0, 1]
