"""Run the multi-seed comparisons of the shipped experiments and draw their figures.

    python scripts/experiments.py window               # the STDP window: 21 pairing runs
    python scripts/experiments.py pattern --seeds 0 1 2 3 4
    python scripts/experiments.py mnist --seeds 0 1 2   # default, mnist_stdp_cpu, mnist_dr_stdp_cpu
    python scripts/experiments.py all

Each run composes the shipped config (``experiment=NAME`` plus ``--set`` overrides), builds it and
runs the loop in this process on the CPU, exactly as ``stdp-run experiment=NAME device=cpu`` does
(without the run folder). Figures go to ``docs/figures/`` (small PNGs) and every run's metrics and
wall time to ``docs/figures/results.json``, which ``docs/EXPERIMENTS.md`` quotes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.build import Experiment, build_experiment  # noqa: E402
from runner.config.compose import compose  # noqa: E402
from runner.config.validate import validate_config  # noqa: E402
from runner.loop import LoopState, run_loop  # noqa: E402
from runner.tasks import PatternTask, plot_window  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
RESULTS = FIGURES / "results.json"


def run(overrides: Sequence[str]) -> tuple[Experiment, LoopState, float]:
    """Compose, validate, build and run one experiment on the CPU; returns the wall time too."""
    cfg = compose([*overrides, "device=cpu"])
    typed = validate_config(cfg)
    torch.manual_seed(typed.seed)
    if typed.device.threads is not None:  # as stdp-run does (the presets ask for one thread)
        torch.set_num_threads(typed.device.threads)
    dtype = {"float32": torch.float32, "float64": torch.float64}[typed.dtype.value]
    start = time.perf_counter()
    experiment = build_experiment(cfg, device=torch.device("cpu"), dtype=dtype)
    state = run_loop(experiment.network, experiment.task, experiment.plan)
    return experiment, state, time.perf_counter() - start


RECORD = True  # False (--no-record): draw the figures, leave results.json as it is


def record(key: str, rows: list[dict[str, Any]]) -> None:
    """Store ``rows`` under ``key`` in the results file (other keys are kept)."""
    if not RECORD:
        return
    FIGURES.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[key] = rows
    RESULTS.write_text(json.dumps(results, indent=1, default=float) + "\n")


def recorded(key: str) -> list[dict[str, Any]]:
    """The rows stored under ``key`` in the results file (empty when there are none)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    return list(results.get(key, []))


def clean(metrics: dict[str, float]) -> dict[str, float | None]:
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else float(v))
        for k, v in metrics.items()
    }


# -- the STDP window ------------------------------------------------------------------------------


def window(extra: Sequence[str]) -> None:
    rows = []
    cell = None
    for delta in range(-50, 55, 5):
        experiment, state, wall = run(
            ["experiment=stdp_window", f"stimulus.params.delta_t_ms={delta}", *extra]
        )
        cell = experiment.task.measure[1]  # type: ignore[attr-defined]
        rows.append({"delta_t_ms": delta, "wall_s": wall, **clean(state.metrics)})
        print(
            f"window dt={delta:+4d}: dw/steps={rows[-1]['window']:.6g} "
            f"K={rows[-1]['kernel']:.6g} rel.err={rows[-1]['window_rel_error']:.2e} "
            f"({wall:.1f} s)",
            flush=True,
        )
    record("stdp_window", rows)
    assert cell is not None
    fine = torch.linspace(-50.0, 50.0, 1001, dtype=torch.float64)
    kernel = (
        cell.kernel_post(fine, **cell.kernel_post_kwargs.as_dict())
        + cell.kernel_pre(fine, **cell.kernel_pre_kwargs.as_dict())
    ).numpy()
    plot_window(
        np.array([r["delta_t_ms"] for r in rows], dtype=float),
        np.array([r["window"] for r in rows]),
        fine.numpy(),
        kernel,
        FIGURES / "stdp_window.png",
    )


# -- pattern detection ------------------------------------------------------------------------------

PATTERN_KEYS = (
    "hit_rate",
    "false_alarms_per_s",
    "latency_ms",
    "train_presentations_to_detect",
    "n_selected",
    "arrival_std_start_ms",
    "arrival_std_end_ms",
    "delay_mean_start_ms",
    "delay_mean_end_ms",
)


def pattern(seeds: Sequence[int], extra: Sequence[str]) -> None:
    rows = []
    histories: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        for name in ("kernel_stdp", "delay_adjusted"):
            experiment, state, wall = run([f"experiment={name}", f"seed={seed}", *extra])
            task = experiment.task
            assert isinstance(task, PatternTask)
            m = state.metrics
            ok = m["hit_rate"] >= 0.9 and m["false_alarms_per_s"] <= 1.0
            rows.append(
                {
                    "experiment": name,
                    "seed": seed,
                    "wall_s": wall,
                    "detected": ok,
                    **clean({k: m.get(k, math.nan) for k in PATTERN_KEYS}),
                }
            )
            print(
                f"{name:15s} seed {seed}: "
                + ", ".join(f"{k}={m.get(k, math.nan):.3g}" for k in PATTERN_KEYS)
                + f" ({wall:.0f} s)",
                flush=True,
            )
            if seed == seeds[0]:
                histories[name] = task.history
                task.write_figures(FIGURES / f"{name}_seed{seed}")
    record("pattern", rows)
    plot_pattern_comparison(histories, FIGURES / "pattern_detection.png")


def plot_pattern_comparison(histories: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Hit rate, false alarms and latency over training for both experiments (one seed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.8))
    keys = (
        ("hit_rate", "hit rate"),
        ("false_alarms_per_s", "false alarms / s"),
        ("latency_ms", "latency (ms)"),
    )
    for i, (key, title) in enumerate(keys):
        ax = fig.add_subplot(1, 3, i + 1)
        for name, history in histories.items():
            rows = [h for h in history if h["phase"] == "train"]
            ax.plot(
                [h["presented"] for h in rows],
                [h[key] for h in rows],
                marker=".",
                linewidth=1,
                label=name,
            )
        ax.set(title=title, xlabel="presentations")
        ax.legend(fontsize=7)
    save(fig, path)


# -- MNIST ----------------------------------------------------------------------------------------


MNIST_PRESETS = ("default", "mnist_stdp_cpu", "mnist_dr_stdp_cpu")


def mnist(seeds: Sequence[int], extra: Sequence[str], names: Sequence[str] = MNIST_PRESETS) -> None:
    """Each digit preset in ``names`` for each seed; the rows of the other presets are kept."""
    rows = []
    for seed in seeds:
        for name in names:
            experiment, state, wall = run([f"experiment={name}", f"seed={seed}", *extra])
            m = state.metrics
            rows.append(
                {
                    "experiment": name,
                    "seed": seed,
                    "wall_s": wall,
                    **clean(
                        {
                            k: m.get(k, math.nan)
                            for k in (
                                "accuracy",
                                "accuracy_ttfs",
                                "train_accuracy",
                                "train_steps_per_s",
                                "compile_s",
                            )
                        }
                    ),
                }
            )
            print(
                f"{name:18s} seed {seed}: accuracy={m.get('accuracy', math.nan):.4f} "
                f"train={m.get('train_accuracy', math.nan):.4f} ({wall:.0f} s)",
                flush=True,
            )
            if seed == seeds[0]:
                weight = experiment.network.connections["input_exc"].weight
                plot_fields(
                    weight.detach().float().numpy(),
                    FIGURES / f"{name}_fields.png",
                    title=f"{name}: input -> exc weights (seed {seed})",
                )
    kept = [row for row in recorded("mnist") if row["experiment"] not in names]
    record("mnist", kept + rows)


def plot_fields(weight: np.ndarray, path: Path, *, title: str, scale: int = 2) -> None:
    """All receptive fields (28x28 each) tiled into one mosaic, ``scale`` pixels per weight.

    Written as a 64-colour palette PNG (noisy weights compress poorly in RGBA: this keeps the
    100-neuron grid well under 200 KB). ``title`` goes into the PNG's metadata.
    """
    from matplotlib import colormaps
    from PIL import Image

    n = weight.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    side = math.isqrt(weight.shape[1])
    low, high = float(weight.min()), float(weight.max())
    mosaic = np.ones((rows * (side + 1) + 1, cols * (side + 1) + 1))
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = 1 + r * (side + 1), 1 + c * (side + 1)
        mosaic[y : y + side, x : x + side] = 1.0 - (weight[i].reshape(side, side) - low) / max(
            high - low, 1e-12
        )
    rgb = colormaps["hot"](np.kron(mosaic, np.ones((scale, scale))))[..., :3] * 255
    image = Image.fromarray(rgb.astype(np.uint8)).quantize(colors=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Title", title)
    image.save(path, optimize=True, pnginfo=info)


def save(fig: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("window", "pattern", "mnist", "all"))
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--experiments",
        nargs="+",
        choices=MNIST_PRESETS,
        default=MNIST_PRESETS,
        help="mnist: the digit presets to run (the others' recorded rows are kept)",
    )
    parser.add_argument(
        "--set",
        dest="extra",
        nargs="*",
        default=[],
        help="extra config overrides for every run, e.g. run.n_train=40",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="only draw the figures; do not replace results in results.json",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1 is fastest on a shared 2-core machine)",
    )
    args = parser.parse_args(argv)
    global RECORD
    RECORD = not args.no_record
    torch.set_num_threads(args.threads)
    if args.what in ("window", "all"):
        window(args.extra)
    if args.what in ("pattern", "all"):
        pattern(args.seeds or [0, 1, 2, 3, 4], args.extra)
    if args.what in ("mnist", "all"):
        mnist(args.seeds or [0, 1, 2], args.extra, args.experiments)


if __name__ == "__main__":
    main()
