"""Time one sweep with the basic launcher and with the batched one (docs/PERFORMANCE.md).

    python scripts/bench.py --launchers                          # 16 jobs of the default experiment
    python scripts/bench_launchers.py --experiment mnist_stdp_cpu --json launchers.json
    python scripts/bench_launchers.py --overrides run.n_train=200 run.n_eval=100   # shorter

The sweep is ``seed`` x ``trainer.weight.kernel_post.kwargs.learning_rate`` (4 x 4 = 16 jobs by
default). Each launcher runs the whole sweep as one ``stdp-run -m`` process, one after the other
in the same run of this script (same machine load), with one thread (``device.threads=1``);
``--joblib N`` adds the joblib launcher with N workers and the batched launcher with N groups side
by side (``hydra.launcher.n_jobs=N``). Reported: wall seconds of each process,
the ratios to the batched one, and the largest relative difference between the jobs' final
weights under the two launchers (0 when the batched jobs equal the separate runs bit for bit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LR = "trainer.weight.kernel_post.kwargs.learning_rate"
#: in the batched log when the group's compile mode differs from its jobs' own (group_run.py)
MODE_NOTE = "not bit for bit"


def _exe() -> list[str]:
    found = shutil.which("stdp-run")
    return [found] if found else [sys.executable, "-m", "runner.cli"]


def sweep(launcher: list[str], grid: list[str], folder: Path) -> dict[str, Any]:
    """Run the sweep as one process; its wall seconds and exit code."""
    cmd = [*_exe(), "-m", *launcher, *grid, f"hydra.sweep.dir={folder}", "run.progress=off"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=folder.parent)
    wall = time.perf_counter() - start
    (folder.parent / f"{folder.name}.log").write_text(proc.stdout + proc.stderr)
    return {"command": " ".join(cmd), "wall_s": round(wall, 2), "returncode": proc.returncode}


def max_rel_diff(a: Path, b: Path) -> float | None:
    """The largest relative difference between the final weights of matching jobs."""
    from safetensors.torch import load_file

    worst = 0.0
    jobs = sorted(p.name for p in a.iterdir() if p.name.isdigit())
    if not jobs:
        return None
    for job in jobs:
        left, right = (load_file(str(d / job / "weights" / "final.safetensors")) for d in (a, b))
        for name, x in left.items():
            scale = x.abs().max().clamp_min(1e-30)
            worst = max(worst, float((x - right[name]).abs().max() / scale))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="default")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--learning-rates", default="1e-4,2e-4,4e-4,8e-4")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra overrides for every job")
    parser.add_argument("--joblib", type=int, default=0, help="also time joblib with N workers")
    parser.add_argument("--quick", action="store_true", help="a tiny sweep (the smoke test)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep the sweeps here")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.seeds, opts.learning_rates = "0,1", "1e-4,2e-4"
        opts.overrides = ["debug=default", "logger.level=INFO", *opts.overrides]
    grid = [
        f"experiment={opts.experiment}", f"seed={opts.seeds}", f"{LR}={opts.learning_rates}",
        "device.threads=1", "logger.plots=false", *opts.overrides,
    ]  # fmt: skip
    launchers = {"basic": [], "batched": ["hydra/launcher=batched"]}
    if opts.joblib:
        workers = f"hydra.launcher.n_jobs={opts.joblib}"
        launchers["joblib"] = ["hydra/launcher=parallel", workers]
        launchers["batched_parallel"] = ["hydra/launcher=batched", workers]  # groups side by side
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stdp-launchers-") as tmp:
        work = opts.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, launcher in launchers.items():
            results[name] = sweep(launcher, grid, work / name)
            row = results[name]
            print(f"{name:16s} {row['wall_s']:9.1f} s  (exit {row['returncode']})")
        diff = max_rel_diff(work / "basic", work / "batched")
        logs = (work / "batched").glob("*/*.log")  # the jobs' log files (lines not wrapped)
        modes_differ = any(MODE_NOTE in log.read_text() for log in logs)
    batched = results["batched"]["wall_s"]
    ratios = {f"{k}_over_batched": round(v["wall_s"] / batched, 2) for k, v in results.items()}
    if opts.joblib:  # the same workers on both sides
        side = results["batched_parallel"]["wall_s"]
        ratios["joblib_over_batched_parallel"] = round(results["joblib"]["wall_s"] / side, 2)
        ratios["basic_over_batched_parallel"] = round(results["basic"]["wall_s"] / side, 2)
    print("speed-up of the batched launcher: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()))
    print(f"largest relative weight difference, basic vs batched: {diff}")
    if modes_differ:
        print(f"the batched group ran in another compile mode than its jobs alone ({MODE_NOTE}):"
              " weights agree to rounding only; pass --overrides run.compile=true for bit-equal"
              " jobs")  # fmt: skip
    if opts.json:
        meta = {"grid": grid, "load_before": load, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg())}  # fmt: skip
        payload = {"meta": meta, "results": results, "ratios": ratios, "max_rel_diff": diff,
                   "modes_differ": modes_differ}  # fmt: skip
        opts.json.write_text(json.dumps(payload, indent=2))
    return 0 if all(r["returncode"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
