"""Replicas of the Diehl & Cook network on one device: samples/s per replica and in total, and
memory per replica (issue 14's GPU check).

    python scripts/gpu_replicas.py                       # CUDA: R = 1, 16, 64, 256; compiled
    python scripts/gpu_replicas.py --replicas 1 4 --device cpu --digits 2   # a CPU smoke test
    python scripts/gpu_replicas.py --json gpu.json

The network is `mnist_stdp_cpu`'s (784 Poisson inputs -> 100 adaptive excitatory neurons with
their inhibition, KernelSTDP, L1 normalisation), replica r built from `seed=r` with its own
learning rate (1e-3 x (1 + r / R): every replica has its own numbers), at batch 1, trained on
random rate-coded digits drawn on the device (the engine's throughput, not the data pipeline).
Each R is timed after one untimed digit (which compiles): ``--digits`` digits of 150 steps, the
device synchronised before the clock stops. Memory is the peak allocated by the stacked network
and its step (CUDA), divided by R.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = 150  # mnist_stdp_cpu's steps per digit
PEAK_RATE = 63.75 / 1000  # spikes per ms of a white pixel (Diehl & Cook)


def build(replicas: int, device: Any) -> Any:
    """``replicas`` D&C networks (seeds 0..R-1, distinct learning rates) stacked on ``device``."""
    import torch

    from runner.build import build_network, typed
    from runner.config.compose import compose
    from runner.core.replicas import stack_networks
    from runner.spec_config import experiment_spec

    lr = "trainer.weight.kernel_post.kwargs.learning_rate"
    nets = []
    for r in range(replicas):
        cfg = compose(
            ["experiment=mnist_stdp_cpu", f"seed={r}", f"{lr}={1e-3 * (1 + r / replicas)}"]
        )
        spec = experiment_spec(typed(cfg)).network
        nets.append(build_network(spec, device=device, dtype=torch.float32))
    return nets[0] if replicas == 1 else stack_networks(nets)


def measure(replicas: int, device: Any, digits: int, compiled: bool) -> dict[str, Any]:
    """Replica-samples/s of ``digits`` timed digits, and the peak memory per replica."""
    import torch

    from runner.loop import Batch, Callbacks, LoopPlan, LoopState, make_step, run_batch

    torch._dynamo.reset()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device) if cuda else 0
    net = build(replicas, device)
    net.train()
    plan = LoopPlan(epochs=1, update_every=1, log_every=0, eval_each_epoch=False, compile=compiled)
    step = make_step(net, compile=compiled)
    gen = torch.Generator(device=device).manual_seed(0)
    pixels = torch.rand((replicas, 784), generator=gen, device=device)

    class _Task:  # what run_batch reads of a task
        watch = ("exc",)
        record_raster = False
        input = "input"

    def digit() -> None:
        spikes = torch.rand((STEPS, replicas, 784), generator=gen, device=device)
        batch = Batch(spikes < pixels * PEAK_RATE)
        with torch.no_grad():
            run_batch(net, _Task(), batch, plan, LoopState(), train=True, probe=None,
                      callbacks=Callbacks(), step=step)  # fmt: skip
            net.after_batch()

    digit()  # compiles
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(digits):
        digit()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) - base) if cuda else None
    return {
        "replicas": replicas,
        "compiled": compiled,
        "digits": digits,
        "seconds": round(seconds, 4),
        "samples_per_s_total": replicas * digits / seconds,
        "samples_per_s_per_replica": digits / seconds,
        "steps_per_s_per_replica": digits * STEPS / seconds,
        "memory_per_replica_mb": None if peak is None else peak / replicas / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--digits", type=int, default=5, help="timed digits per R")
    parser.add_argument("--eager", action="store_true", help="eager steps (default: compiled)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU machine, or pass --device cpu", file=sys.stderr)
        return 2
    rows = []
    for r in args.replicas:
        row = measure(r, device, args.digits, compiled=not args.eager)
        rows.append(row)
        memory = row["memory_per_replica_mb"]
        print(
            f"R={r:4d}: {row['samples_per_s_total']:9.1f} samples/s in total, "
            f"{row['samples_per_s_per_replica']:7.2f} per replica "
            f"({row['steps_per_s_per_replica']:,.0f} steps/s each)"
            + ("" if memory is None else f", {memory:.2f} MB per replica"),
            flush=True,
        )
    if args.json:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
