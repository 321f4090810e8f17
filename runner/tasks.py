"""Tasks: what an experiment feeds the network and what it measures.

A task makes the input batches of each phase (``train``/``eval``) and turns the spike record of
each batch into metrics. Metrics are computed on the host after a batch, never inside a step.
A task may also draw its own figures into the run folder (``write_figures(plot_dir)``).

- :class:`ImageTask`: rate-coded images, accuracy of a max-rate classifier.
- :class:`PatternTask`: a pattern hidden in noise; hit rate, false alarms, latency, and how the
  arrival times (spike time + delay) of the learned pattern afferents change.
- :class:`SpikeTrainTask`: given spike trains (a pairing protocol, an npz file); with a pairing
  it measures the weight change against the kernel (:func:`pairing_metrics`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from runner.loop import Batch, Record

Encoder = Callable[[Tensor, torch.Generator], Tensor]


def _generator_state(gen: torch.Generator) -> Tensor:
    return gen.get_state()


class ImageTask:
    """Rate-coded images (e.g. digits); with ``readout`` a max-rate classifier measures accuracy.

    The train/held-out split is fixed by ``split_seed``; the training order is shuffled per epoch
    from ``seed`` and the epoch number, so it is reproducible without saved state.
    """

    record_raster = False

    def __init__(
        self,
        *,
        images: Tensor,
        labels: Tensor,
        n_train: int | None,
        n_eval: int,
        batch_size: int,
        encode: Encoder,
        input: str,
        readout: str | None = None,
        n_classes: int = 10,
        seed: int = 0,
        split_seed: int = 1234,
        device: torch.device | str = "cpu",
    ) -> None:
        total = images.shape[0]
        n_train = total - n_eval if n_train is None else n_train
        if n_train < 1 or n_train + n_eval > total:
            raise ValueError(
                f"n_train={n_train} + n_eval={n_eval} must be between 1 and the {total} samples "
                "of the data set"
            )
        order = torch.randperm(total, generator=torch.Generator().manual_seed(split_seed))
        self.train_idx, self.eval_idx = order[:n_train], order[n_train : n_train + n_eval]
        self.images = images.reshape(total, -1).to(device)
        self.labels = labels.to(device)
        self.batch_size, self.encode, self.seed = batch_size, encode, seed
        self.input = input
        self.readout = readout
        self.watch: tuple[str, ...] = (readout,) if readout else ()
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.n_classes = n_classes
        self.device = device
        self._reset_readout()

    def _reset_readout(self) -> None:
        self.classifier: Any = None
        self._eval_counts: list[Tensor] = []
        self._eval_labels: list[Tensor] = []
        self._train_counts: list[Tensor] = []
        self._train_labels: list[Tensor] = []

    def n_batches(self, phase: str) -> int:
        idx = self.train_idx if phase == "train" else self.eval_idx
        return (len(idx) + self.batch_size - 1) // self.batch_size

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train":
            perm = torch.randperm(
                len(self.train_idx),
                generator=torch.Generator().manual_seed(self.seed * 1000 + epoch),
            )
            idx = self.train_idx[perm]
        else:
            idx = self.eval_idx
        for b in range(start, self.n_batches(phase)):
            pick = idx[b * self.batch_size : (b + 1) * self.batch_size].to(self.device)
            yield Batch(self.encode(self.images[pick], self.generator), labels=self.labels[pick])

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        if not self.readout or batch.labels is None:
            return
        counts = record.counts[self.readout]
        store = (
            (self._train_counts, self._train_labels)
            if phase == "train"
            else (self._eval_counts, self._eval_labels)
        )
        store[0].append(counts.clone())
        store[1].append(batch.labels)

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        if not self.readout:
            return {}
        from runner.core.readout import MaxRateClassifier

        if phase == "train":
            if not self._train_counts:
                return {}
            counts, labels = torch.cat(self._train_counts), torch.cat(self._train_labels)
            self.classifier = MaxRateClassifier(
                counts.shape[1], self.n_classes, device=counts.device
            )
            self.classifier.observe(counts, labels)
            self.classifier.assign()
            acc = float(self.classifier.accuracy(counts, labels))
            self._train_counts, self._train_labels = [], []
            return {"train_accuracy": acc}
        if self.classifier is None or not self._eval_counts:
            return {}
        counts, labels = torch.cat(self._eval_counts), torch.cat(self._eval_labels)
        self._eval_counts, self._eval_labels = [], []
        return {"accuracy": float(self.classifier.accuracy(counts, labels))}

    def state_dict(self) -> dict[str, Any]:
        """Generator state and this epoch's readout statistics (for an exact resume)."""
        state: dict[str, Any] = {"generator": _generator_state(self.generator)}
        if self._train_counts:
            state["train_counts"] = torch.cat(self._train_counts)
            state["train_labels"] = torch.cat(self._train_labels)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        if "train_counts" in state:
            self._train_counts = [state["train_counts"].to(self.device)]
            self._train_labels = [state["train_labels"].to(self.device)]


class PatternTask:
    """A repeating spatio-temporal pattern in Poisson noise; measures detection by the outputs.

    Metrics per phase (``train_`` prefix while training): ``hit_rate`` (fraction of pattern
    presentations during which some output neuron fired), ``false_alarms_per_s`` (output spikes
    outside pattern windows, per second and per sample), ``latency_ms`` (mean time from onset to
    the first output spike of a hit), ``presentations``. After training also
    ``train_presentations_to_detect``: the presentations seen before the first training batch
    with ``hit_rate >= detect_hit_rate`` and ``false_alarms_per_s <= detect_false_alarms`` (NaN
    if none). After evaluation, with ``connection`` (the trained input -> output connection):
    ``n_selected`` pattern afferents the best output kept (weight >= half its largest weight)
    and the spread (std, ms) of their arrival times (pattern spike time + delay) with the delays
    at the start and now, ``arrival_std_start_ms`` / ``arrival_std_end_ms`` (see
    :func:`arrival_times`).
    """

    record_raster = True

    def __init__(
        self,
        *,
        source: Any,
        n_train: int,
        n_eval: int,
        batch_size: int,
        steps: int,
        dt: float,
        input: str,
        output: str,
        seed: int = 0,
        device: torch.device | str = "cpu",
        connection: Any = None,
        detect_hit_rate: float = 0.9,
        detect_false_alarms: float = 1.0,
    ) -> None:
        self.source, self.n_train, self.n_eval = source, n_train, n_eval
        self.batch_size, self.steps, self.dt = batch_size, steps, dt
        self.input, self.output = input, output
        self.watch: tuple[str, ...] = (output,)
        self.pattern_steps = int(round(source.pattern.shape[0]))
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.connection = connection
        self.detect = (detect_hit_rate, detect_false_alarms)
        self.start = self._parameters()
        self._tally: dict[str, np.ndarray] = {}
        self._output_hits: np.ndarray | None = None
        self.presented = 0.0
        self.detected_at = math.nan
        self.latency_ms = math.nan  # of the last evaluation
        self.history: list[dict[str, Any]] = []

    def _parameters(self) -> dict[str, np.ndarray]:
        """Weights and delays ``[O, I]`` of ``connection`` now, as float64 arrays."""
        conn, out = self.connection, {}  # type: Any, dict[str, np.ndarray]
        if conn is None:
            return out
        out["weight"] = conn.weight.detach().double().cpu().numpy().copy()
        if getattr(conn, "delay", None) is not None:
            out["delay"] = conn.delay.detach().double().cpu().numpy().copy()
        return out

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        count = self.n_train if phase == "train" else self.n_eval
        n = (count + self.batch_size - 1) // self.batch_size
        for _ in range(start, n):
            spikes, onsets = self.source.sample(self.steps, self.batch_size, self.generator)
            yield Batch(spikes, labels=onsets)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        assert batch.labels is not None
        onsets = batch.labels.cpu().numpy()
        raster = record.raster[self.output].cpu().numpy()  # [T, B, O]
        stats = detection_stats(onsets, np.asarray(raster.any(-1)), self.pattern_steps)
        metrics = stats_to_metrics(stats, self.dt)
        if phase == "train":
            self.presented += stats[0]
            hit_ok = metrics["hit_rate"] >= self.detect[0]
            if (
                math.isnan(self.detected_at)
                and hit_ok
                and metrics["false_alarms_per_s"] <= self.detect[1]
            ):
                self.detected_at = self.presented - stats[0]
        else:
            hits = np.array(
                [
                    detection_stats(onsets, raster[..., o], self.pattern_steps)[1]
                    for o in range(raster.shape[-1])
                ]
            )
            self._output_hits = hits if self._output_hits is None else self._output_hits + hits
        self.history.append({"phase": phase, "presented": self.presented, **metrics})
        tally = self._tally.setdefault(phase, np.zeros(5))
        tally += stats

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        stats = self._tally.pop(phase, np.zeros(5))
        prefix = "" if phase == "eval" else "train_"
        out = {prefix + k: float(v) for k, v in stats_to_metrics(stats, self.dt).items()}
        if phase == "train":
            out["train_presentations_to_detect"] = float(self.detected_at)
        else:
            self.latency_ms = out["latency_ms"]
            if self.connection is not None:
                out.update(self.arrival_summary(out["latency_ms"]))
        return out

    def best_output(self) -> int:
        """The output with the most hits in evaluation (0 before any evaluation)."""
        return 0 if self._output_hits is None else int(np.argmax(self._output_hits))

    def arrival_summary(self, latency_ms: float) -> dict[str, float]:
        """Selected afferents of the best output and the spread of their arrival times.

        The arrival of each selected afferent is its latest one at or before the output's mean
        latency ``latency_ms`` (all of them when that is NaN), with the delays at the start and
        at the end of training.
        """
        now, out = self._parameters(), self.best_output()
        mask = self.source.pattern_mask.cpu().numpy()
        pattern = self.source.pattern.cpu().numpy()
        selected = select_afferents(now["weight"][out], mask)
        before = None if math.isnan(latency_ms) else latency_ms
        result = {"n_selected": float(selected.sum())}
        for tag, params in (("start", self.start), ("end", now)):
            delay = params["delay"][out] if "delay" in params else np.zeros(mask.shape)
            times = arrival_times(pattern, selected, delay, self.dt, before)
            result[f"arrival_std_{tag}_ms"] = float(times.std()) if times.size else math.nan
            result[f"delay_mean_{tag}_ms"] = (
                float(delay[selected].mean()) if selected.any() else math.nan
            )
        return result

    def write_figures(self, plot_dir: str | Path) -> list[Path]:
        """``detection.png`` (over training) and, with a connection, ``arrivals.png``."""
        written = [plot_detection(self.history, Path(plot_dir) / "detection.png")]
        if self.connection is not None:
            written.append(
                plot_arrivals(
                    self.start,
                    self._parameters(),
                    self.best_output(),
                    self.source.pattern.cpu().numpy(),
                    self.source.pattern_mask.cpu().numpy(),
                    self.dt,
                    Path(plot_dir) / "arrivals.png",
                    self.latency_ms,
                )
            )
        return written

    def state_dict(self) -> dict[str, Any]:
        """Generator, detection progress and the starting parameters (for an exact resume)."""
        state: dict[str, Any] = {
            "generator": _generator_state(self.generator),
            "presented": self.presented,
            "detected_at": self.detected_at,
        }
        if "train" in self._tally:
            state["train_tally"] = torch.from_numpy(self._tally["train"].copy())
        state.update({f"start_{k}": torch.from_numpy(v) for k, v in self.start.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.presented = float(state.get("presented", 0.0))
        self.detected_at = float(state.get("detected_at", math.nan))
        if "train_tally" in state:
            self._tally["train"] = state["train_tally"].double().numpy().copy()
        for key in ("weight", "delay"):
            if f"start_{key}" in state:
                self.start[key] = state[f"start_{key}"].double().numpy().copy()


def select_afferents(weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pattern afferents (``mask``) whose weight is at least half the largest pattern weight."""
    if not mask.any():
        return mask
    return mask & (weight >= 0.5 * weight[mask].max())


def detection_stats(onsets: np.ndarray, fired: np.ndarray, window: int) -> np.ndarray:
    """``[presentations, hits, latency_sum_steps, false_alarm_steps, outside_steps]``.

    ``onsets`` and ``fired`` are ``[T, B]`` bool; a presentation occupies ``window`` steps from
    its onset.
    """
    steps, batch = onsets.shape
    inside = np.zeros_like(fired)
    presentations = hits = latency = 0
    for b in range(batch):
        for t0 in np.flatnonzero(onsets[:, b]):
            end = min(t0 + window, steps)
            inside[t0:end, b] = True
            presentations += 1
            spikes = np.flatnonzero(fired[t0:end, b])
            if spikes.size:
                hits += 1
                latency += int(spikes[0])
    outside = ~inside
    return np.array(
        [presentations, hits, latency, (fired & outside).sum(), outside.sum()], dtype=np.float64
    )


def stats_to_metrics(stats: np.ndarray, dt: float) -> dict[str, float]:
    presentations, hits, latency, false_alarms, outside = stats
    return {
        "hit_rate": float(hits / presentations) if presentations else 0.0,
        "false_alarms_per_s": float(false_alarms / (outside * dt / 1000.0)) if outside else 0.0,
        "latency_ms": float(latency * dt / hits) if hits else math.nan,
        "presentations": float(presentations),
    }


def arrival_times(
    pattern: np.ndarray,
    selected: np.ndarray,
    delay: np.ndarray,
    dt: float,
    before: float | None = None,
) -> np.ndarray:
    """Arrival times (ms after the onset) of the pattern spikes of the selected afferents.

    ``pattern`` is ``[P, N]`` bool, ``selected`` ``[N]`` bool and ``delay`` ``[N]`` (ms, towards
    one output): a spike of afferent i at step t arrives at ``t * dt + delay[i]``. With ``before``
    only the latest arrival of each afferent at or before that time is kept (the one that can
    have driven an output spike at latency ``before``); afferents without one are left out.
    """
    index = np.flatnonzero(selected)
    spikes = pattern[:, index]
    arrivals = np.arange(pattern.shape[0])[:, None] * dt + delay[index][None, :]
    if before is None:
        return arrivals[spikes]
    latest = np.where(spikes & (arrivals <= before + 1e-9), arrivals, -np.inf).max(
        0, initial=-np.inf
    )
    return latest[np.isfinite(latest)]


class SpikeTrainTask:
    """Recorded spike trains: ``pre [T, B, I]`` drives the input, optional ``post`` is imposed.

    With ``measure`` (the connection ``input -> output`` and the trainer cell that trains its
    weights) the task reports after training how far the weights moved and, for a pairing
    protocol (``delta_t_ms``), the measured learning window (:func:`pairing_metrics`).
    """

    record_raster = False

    def __init__(
        self,
        *,
        pre: Tensor,
        post: Tensor | None,
        input: str,
        output: str | None,
        watch: tuple[str, ...] = (),
        dt: float = 1.0,
        measure: Any = None,
        delta_t_ms: float | None = None,
    ) -> None:
        self.pre, self.post = pre, post
        self.input, self.output = input, output
        self.watch = watch
        self.dt, self.delta_t_ms = dt, delta_t_ms
        self.measure = measure  # (connection, cell) or None
        self.start = None if measure is None else measure[0].weight.detach().clone()

    def batches(self, phase: str, epoch: int, start: int = 0) -> Iterator[Batch]:
        if phase == "train" and start == 0:
            drive = {self.output: self.post} if self.post is not None and self.output else {}
            yield Batch(self.pre, drive=drive)

    def observe(self, phase: str, batch: Batch, record: Record) -> None:
        pass

    def end_phase(self, phase: str, epoch: int) -> dict[str, float]:
        if phase != "train" or self.measure is None or self.post is None:
            return {}
        connection, cell = self.measure
        delta_w = (connection.weight.detach() - self.start).double().cpu()
        if cell is None:
            return {"delta_w": float(delta_w.mean())}
        return pairing_metrics(
            self.pre, self.post, delta_w, cell, dt=self.dt, delta_t_ms=self.delta_t_ms
        )

    def state_dict(self) -> dict[str, Any]:
        return {} if self.start is None else {"start_weight": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "start_weight" in state and self.start is not None:
            self.start = state["start_weight"].to(self.start)


def pair_differences(pre: Tensor, post: Tensor, dt: float) -> Tensor:
    """Δ = t_post - t_pre (ms) of the most recent pair at every step, ``[T, B, O, I]`` float64.

    ``pre [T, B, I]`` and ``post [T, B, O]`` are bool spike trains; Δ is NaN until both sides
    have spiked. This is what the kernel trainers evaluate every step on an undelayed synapse
    (SEMANTICS section 0), computed here independently of the engine.
    """
    steps = pre.shape[0]
    t = torch.arange(steps, dtype=torch.float64).view(steps, 1, 1)

    def last(spikes: Tensor) -> Tensor:
        marked = torch.where(spikes.cpu(), t, -math.inf).cummax(0).values
        return marked.masked_fill(marked == -math.inf, math.nan)

    return (last(post).unsqueeze(3) - last(pre).unsqueeze(2)) * dt


def pairing_metrics(
    pre: Tensor, post: Tensor, delta_w: Tensor, cell: Any, *, dt: float, delta_t_ms: float | None
) -> dict[str, float]:
    """The measured weight change of a pairing protocol against the kernel, in float64.

    Every step the trainer adds ``K(Δ)`` (both kernels) for the most recent pair; with one pair
    programmed at ``delta_t_ms`` the steps whose Δ equals it are the ``contributing_steps``, and
    the few steps after the next pairing's first spike pair across pairings (``cross_terms``, of
    order ``K(±(period - |Δt|))``). So

        window = (delta_w - cross_terms) / contributing_steps        should equal K(delta_t).

    Returns ``delta_w`` (mean over synapses), ``expected_delta_w`` (the sum of the kernels over
    :func:`pair_differences`, batch-averaged), and with ``delta_t_ms`` also
    ``contributing_steps``, ``cross_terms``, ``window``, ``kernel`` and ``window_rel_error``
    (the largest over synapses).
    """
    delta = pair_differences(pre, post, dt)  # [T, B, O, I]

    def kernel(x: Tensor) -> Tensor:
        x = x.to(device=cell.connection.weight.device)
        post_k = cell.kernel_post(x, **cell.kernel_post_kwargs.as_dict())
        pre_k = cell.kernel_pre(x, **cell.kernel_pre_kwargs.as_dict())
        return (post_k + pre_k).double().cpu().nan_to_num(nan=0.0)

    k = kernel(delta)
    out = {"delta_w": float(delta_w.mean()), "expected_delta_w": float(k.sum(0).mean(0).mean())}
    if delta_t_ms is None:
        return out
    main = (delta - delta_t_ms).abs() <= 1e-9 * max(1.0, abs(delta_t_ms))
    steps = main.sum(0).double().mean(0)  # [O, I]
    cross = torch.where(main, 0.0, k).sum(0).mean(0)
    value = float(kernel(torch.tensor([float(delta_t_ms)], dtype=torch.float64))[0])
    window = (delta_w - cross) / steps
    error = (window - value).abs() / max(abs(value), 1e-300)
    out.update(
        {
            "contributing_steps": float(steps.mean()),
            "cross_terms": float(cross.mean()),
            "window": float(window.mean()),
            "kernel": value,
            "window_rel_error": float(error.max()),
        }
    )
    return out


# -- figures (matplotlib's object API on the Agg canvas, no pyplot) ------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save_png(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from runner.record import atomic_write

    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)


def plot_detection(history: list[dict[str, Any]], path: Path) -> Path:
    """Hit rate, false alarms/s and latency per training batch against presentations seen."""
    rows = [h for h in history if h["phase"] == "train"]
    x = np.array([h["presented"] for h in rows])
    fig = _figure(10, 2.8)
    for i, (key, label) in enumerate(
        (
            ("hit_rate", "hit rate"),
            ("false_alarms_per_s", "false alarms / s"),
            ("latency_ms", "latency (ms)"),
        )
    ):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(x, [h[key] for h in rows], marker=".", linewidth=1)
        ax.set(xlabel="presentations", title=label)
    return _save_png(fig, path)


def plot_arrivals(
    start: dict[str, np.ndarray],
    end: dict[str, np.ndarray],
    output: int,
    pattern: np.ndarray,
    mask: np.ndarray,
    dt: float,
    path: Path,
    latency_ms: float = math.nan,
) -> Path:
    """Delays and arrival times of the selected pattern afferents, at the start and the end.

    The arrivals are those of :func:`arrival_times` before ``latency_ms`` (all when NaN).
    """
    selected = select_afferents(end["weight"][output], mask)
    before = None if math.isnan(latency_ms) else latency_ms
    fig = _figure(10, 3)
    titles = (
        f"delays of the {int(selected.sum())} selected afferents (ms)",
        "their arrival times after the onset (ms)",
    )
    for i, title in enumerate(titles):
        ax = fig.add_subplot(1, 2, i + 1)
        for tag, params in (("start", start), ("end", end)):
            delay = params.get("delay", np.zeros_like(end["weight"]))[output]
            values = (
                delay[selected] if i == 0 else arrival_times(pattern, selected, delay, dt, before)
            )
            label = (
                f"{tag} (mean {values.mean():.2f}, std {values.std():.2f})" if values.size else tag
            )
            ax.hist(
                values,
                bins=np.arange(0.0, values.max() + 1.0, 0.5) if values.size else 10,
                alpha=0.6,
                label=label,
            )
        if i == 1 and before is not None:
            ax.axvline(before, color="k", linestyle=":", label="mean output latency")
        ax.set(title=title)
        ax.legend(fontsize=7)
    return _save_png(fig, path)


def plot_window(
    delta_t: np.ndarray, window: np.ndarray, fine_t: np.ndarray, fine_kernel: np.ndarray, path: Path
) -> Path:
    """The measured learning window (weight change per contributing step) over the kernel."""
    fig = _figure(5, 3.5)
    ax = fig.add_subplot()
    causal = fine_t >= 0
    for part in (causal, ~causal):
        ax.plot(
            fine_t[part],
            fine_kernel[part],
            color="0.6",
            linewidth=3,
            label="kernel K(Δt)" if part is causal else None,
        )
    ax.plot(delta_t, window, "o", color="tab:red", markersize=4, label="measured Δw / steps")
    ax.axhline(0.0, color="0.8", linewidth=0.8)
    ax.set(xlabel="Δt = t_post - t_pre (ms)", ylabel="weight change per step")
    ax.legend(fontsize=8)
    return _save_png(fig, path)
