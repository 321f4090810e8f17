"""Time a whole ``stdp-run`` command from start to exit, as a user's stopwatch would.

    python scripts/cli_wall.py                       # the default experiment, 3 runs
    python scripts/cli_wall.py --repeats 5 -- experiment=delay_adjusted
    python scripts/cli_wall.py --json wall.json

Each run is a fresh process in a fresh temporary folder (``hydra.run.dir``), so the inductor cache
(``~/.cache/stdp-run/torchinductor``) is the only thing one run leaves to the next: the first run
of a new machine or torch version compiles cold, the later ones warm. One untimed run first warms
the cache unless ``--cold`` is given. Reported per run: the wall time from start to exit, the
in-process ``wall_s`` of summary.json, its ``compile_s`` and simulation times, and the rest
(start-up, writing outputs and exiting) as the difference; then the median over the runs and the
load average, since a busy machine stretches every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def one_run(overrides: list[str], folder: Path) -> dict[str, Any]:
    """Run ``stdp-run OVERRIDES`` once in ``folder``; the stopwatch and summary.json figures."""
    script = Path(sys.executable).parent / "stdp-run"  # the console script a user runs
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "runner.cli"]
    cmd = [*entry, *overrides, f"hydra.run.dir={folder}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    summary = json.loads((folder / "summary.json").read_text())
    metrics = summary["metrics"]
    row = {
        "wall_s": wall,
        "in_process_s": float(summary["wall_s"]),
        "compile_s": float(metrics.get("compile_s", 0.0)),
        "accuracy": metrics.get("accuracy"),
    }
    row["outside_s"] = wall - row["in_process_s"]  # interpreter start, imports before the run, exit
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="no untimed warm-up run")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("overrides", nargs="*", help="stdp-run overrides (after --)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.cold:
            one_run(args.overrides, Path(tmp) / "warmup")
        for i in range(args.repeats):
            row = one_run(args.overrides, Path(tmp) / f"run{i}")
            rows.append(row)
            print(
                f"run {i + 1}: {row['wall_s']:.1f} s start to exit (in-process {row['in_process_s']:.1f}"
                f" s, of it compiling {row['compile_s']:.1f} s; outside the run "
                f"{row['outside_s']:.1f} s), accuracy {row['accuracy']}",
                flush=True,
            )
    median = statistics.median(r["wall_s"] for r in rows)
    load = os.getloadavg()
    print(f"median {median:.1f} s over {len(rows)} runs; load average {load[0]:.2f} {load[1]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "median_s": median, "load": load}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
