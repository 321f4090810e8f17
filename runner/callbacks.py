"""What the loop reports to a run and asks it: metrics rows, progress, checkpoints
(:class:`RunCallbacks`), a stop requested by a signal (:class:`StopRequest`), and the
parameters and summaries the run folder receives.
"""

from __future__ import annotations

import logging
import math
import signal
from typing import Any

from runner.checkpoint import save_checkpoint
from runner.config.schema import StdpRunConfig
from runner.loop import Callbacks, LoopState
from runner.progress import Progress
from runner.runtime import Runtime
from runner.tracking import Snapshot

log = logging.getLogger("runner")


class RunCallbacks(Callbacks):
    """Loop -> run folder: metrics rows, progress, checkpoints of weights and delays."""

    def __init__(
        self,
        runtime: Runtime,
        network: Any,
        task: Any,
        progress: Progress,
        *,
        checkpoint_every: int,
    ) -> None:
        self.runtime, self.network, self.task, self.progress = runtime, network, task, progress
        self.checkpoint_every = checkpoint_every
        self.last: dict[str, float] = {}

    def on_metrics(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.last = metrics
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )

    def on_monitor(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )
        self.last = {**self.last, **metrics}
        if "val_accuracy" in metrics:
            log.info(
                "%d samples seen: validation accuracy %.4g", state.samples, metrics["val_accuracy"]
            )

    def on_train_start(self, state: LoopState) -> None:
        # the rate counts from here: building the step and the learning-free phases are not
        # simulation of the training batches
        self.progress.follow(state)

    def on_batch_end(self, state: LoopState, phase: str, n_batches: int | None) -> None:
        if phase != "train":
            return
        self.progress.advance_loop(state, self.last)
        if self.checkpoint_every > 0 and state.batch % self.checkpoint_every == 0:
            state.wall_s = self.runtime.wall_s()
            save_checkpoint(self.runtime.run_dir, self.network, self.task, state)
            weights, delays = parameters(self.network)
            tag = f"epoch{state.epoch:03d}_batch{state.batch:06d}"
            self.runtime.recorder.save_parameters(weights, delays, tag=tag)

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.runtime.recorder.log_metrics(
            {"epoch": state.epoch, "batch": state.batch, "step": state.steps, **metrics}
        )
        log.info(
            "epoch %d: %s", state.epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        )
        tracker = self.runtime.recorder.tracker
        if tracker.wants_parameters:  # the epoch's phases have synced already: one copy each
            weights, delays = parameters(self.network)
            image_shape, inputs = image_inputs(self.runtime.config)
            tracker.log_parameters(Snapshot(state.steps, weights, delays, image_shape, inputs))
        if state.epoch + 1 < self.progress.epochs:
            self.progress.start_epoch(state.epoch + 1)


def parameters(network: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Weights and (learned) delays of every connection, by connection name."""
    weights = {name: conn.weight for name, conn in network.connections.items()}
    delays = {
        name: conn.delay
        for name, conn in network.connections.items()
        if getattr(conn, "delay", None) is not None
    }
    return weights, delays


def fixed_connections(network: Any) -> list[str]:
    """Connections that no learning rule trains (their weights are what the config set)."""
    return [
        name
        for name, conn in network.connections.items()
        if len(getattr(conn, "updaters", {})) == 0
    ]


def learned_delays(network: Any) -> dict[str, Any]:
    """Copies of the delays that a learning rule trains, by connection name."""
    return {
        name: conn.delay.detach().clone()
        for name, conn in network.connections.items()
        if getattr(conn, "delay", None) is not None and "delay" in getattr(conn, "updaters", {})
    }


def distribution(values: Any) -> dict[str, float]:
    """Mean, std and quantiles (min, 10 %, 25 %, median, 75 %, 90 %, max) of a tensor."""
    import torch

    flat = values.detach().double().flatten().cpu()
    points = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=torch.float64)
    names = ("min", "q10", "q25", "median", "q75", "q90", "max")
    out = {"mean": float(flat.mean()), "std": float(flat.std(unbiased=False))}
    out.update(zip(names, (float(q) for q in torch.quantile(flat, points)), strict=True))
    return {k: round(v, 6) for k, v in out.items()}


def timing(state: LoopState) -> dict[str, float]:
    """What the throughput figures are made of, over every process of a resumed run: the
    simulated training steps and samples, their simulation seconds (compilation excluded), the
    learning-free samples and seconds, and the compilation seconds."""
    return {
        "train_steps": state.train_steps,
        "train_samples": state.samples,
        "train_s": round(state.train_s, 3),
        "eval_samples": state.eval_samples,
        "eval_s": round(state.eval_s, 3),
        "compile_s": round(state.compile_s, 3),
    }


def image_inputs(config: StdpRunConfig) -> tuple[tuple[int, int] | None, tuple[str, ...]]:
    """``(H, W)`` of square image inputs and the connections that read them (for plots)."""
    if config.stimulus.dataset is None:
        return None, ()
    inputs = [n for n, p in config.network.populations.items() if p.kind == "input"]
    if len(inputs) != 1:
        return None, ()
    side = math.isqrt(config.network.populations[inputs[0]].size)
    if side * side != config.network.populations[inputs[0]].size:
        return None, ()
    conns = tuple(n for n, c in config.network.connections.items() if c.pre == inputs[0])
    return (side, side), conns


class StopRequest:
    """SIGINT/SIGTERM set a flag that the loop reads after each batch (a second one kills)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        signal.signal(signum, self._saved.get(signum, signal.SIG_DFL))  # a second one stops now
        log.warning(
            "%s received: stopping after this batch (again to stop at once)",
            signal.Signals(signum).name,
        )

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def requested(self) -> bool:
        return self.signum is not None


def record_outputs(
    runtime: Runtime, network: Any, task: Any, state: LoopState, start_delays: dict[str, Any]
) -> dict[str, float]:
    """What a finished run leaves: the task's figures and summary entries (in
    ``runtime.extras``), timing, the delays' distributions, the final weights and delays;
    returns the final metrics. Shared by a single run and the batched launcher's jobs
    (:mod:`runner.batched`), whose folders must look the same."""
    config, run_dir = runtime.config, runtime.run_dir
    write_figures = getattr(task, "write_figures", None)
    if config.logger.plots and callable(write_figures):  # task figures, e.g. detection.png
        write_figures(run_dir / "plots")
    summary = getattr(task, "summary", None)
    runtime.extras = summary() if callable(summary) else {}
    runtime.extras["timing"] = timing(state)
    if start_delays:
        end = learned_delays(network)
        runtime.extras["delays"] = {
            name: {"start": distribution(start_delays[name]), "end": distribution(end[name])}
            for name in start_delays
        }
    weights, delays = parameters(network)
    image_shape, input_conns = image_inputs(config)
    runtime.recorder.save_parameters(
        weights,
        delays,
        image_shape=image_shape,
        input_connections=input_conns,
        initial_delays=start_delays,
        fixed=fixed_connections(network),
    )
    return {k: float(v) for k, v in state.metrics.items()}
