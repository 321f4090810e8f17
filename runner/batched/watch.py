"""Per-replica metrics and non-finite checks of a stacked network (one transfer each).

The loop's :class:`~runner.loop.MetricProbe` and :class:`~runner.loop.FiniteGuard` see a stacked
network as one; these subclasses compute the same numbers per replica (the replica's rows of the
folded ``[R*B, N]`` state, its slice of the ``[R, O, I]`` parameters) and tag each metric with
its replica (:func:`tag`, :func:`split`). A replica that becomes non-finite does not stop the
loop: the guard records the one-line error its job would have raised alone, and the launcher
fails only that job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from runner.core.network import Network
from runner.loop import FiniteGuard, MetricProbe

_TAG = re.compile(r"^r(\d+)/(.*)$")


def replicas(network: Network) -> int:
    """Replicas of ``network`` (1 for a network that was never stacked)."""
    return int(getattr(network, "replicas", 1))


def tag(replica: int, key: str) -> str:
    """The metric ``key`` of ``replica`` in a group's merged metrics."""
    return f"r{replica}/{key}"


def split(metrics: Mapping[str, float], count: int) -> list[dict[str, float]]:
    """Merged group metrics -> one dict per replica; untagged keys (the loop's throughput, which
    the whole group shares) go to every replica."""
    out: list[dict[str, float]] = [{} for _ in range(count)]
    for key, value in metrics.items():
        match = _TAG.match(key)
        if match is None:
            for part in out:
                part[key] = value
        elif int(match.group(1)) < count:
            out[int(match.group(1))][match.group(2)] = value
    return out


def _rows(tensor: Tensor, count: int) -> Tensor:
    """``tensor`` as ``[R, -1]``: replica r's elements in row r (folded state or stacked
    parameters are replica-major)."""
    return tensor.reshape(count, -1)


class ReplicaProbe(MetricProbe):
    """:class:`~runner.loop.MetricProbe`'s rates and parameter statistics, per replica."""

    def read(self, counts: dict[str, Tensor], steps: int) -> dict[str, float]:
        count = replicas(self.network)
        names: list[str] = []
        values: list[Tensor] = []
        seconds = max(steps, 1) * self.network.dt / 1000.0
        for pop, spikes in counts.items():
            names.append(f"rate.{pop}")
            values.append(_rows(spikes.float(), count).mean(dim=1) / seconds)
        now = self._snapshot()
        for key, tensor in now.items():
            t = _rows(tensor.float(), count)
            last = _rows(self._last[key].float(), count)
            for stat, val in (
                ("mean", t.mean(dim=1)),
                ("std", t.std(dim=1, unbiased=False)),
                ("min", t.amin(dim=1)),
                ("max", t.amax(dim=1)),
                ("update", (t - last).abs().mean(dim=1)),
            ):
                names.append(f"{key}.{stat}")
                values.append(val)
        self._last = now
        if not values:
            return {}
        table = torch.stack(values).tolist()  # [metrics, R]: one transfer
        return {
            tag(r, name): row[r]
            for name, row in zip(names, table, strict=True)
            for r in range(count)
        }


class ReplicaGuard(FiniteGuard):
    """Per-replica :class:`~runner.loop.FiniteGuard`: records failures instead of raising.

    ``failed`` maps a replica to the message its job would have raised running alone; a failed
    replica's parameters are set to zero where non-finite so that it stays quiet.
    """

    def __init__(self, network: Network) -> None:
        super().__init__(network)
        self.count = replicas(network)
        self.failed: dict[int, str] = {}

    def check(self, step: int, extra: Sequence[Tensor] = ()) -> list[float]:
        current = self._current()
        if not current and not extra:
            return []
        finite = [_rows(t, self.count).isfinite().all(dim=1).float() for _, t in current]
        flat = torch.cat([*finite, *(x.float().reshape(1) for x in extra)])
        values = flat.tolist()
        flags, rest = values[: len(finite) * self.count], values[len(finite) * self.count :]
        for r in range(self.count):
            if r in self.failed:
                continue
            for w, (name, _) in enumerate(current):
                if not flags[w * self.count + r]:
                    self.failed[r] = self._message(name, step, r)
                    self._quiet(r)
                    break
        return rest

    def _message(self, name: str, step: int, replica: int) -> str:
        """The one-line error :class:`~runner.loop.FiniteGuard` gives a solo run."""
        head = f"{name} became non-finite (NaN or inf) by step {step}; "
        if not name.endswith(".voltage"):
            return head + (
                "likely cause: a learning rate that is too large or missing bounds/clamps on it"
            )
        sizes = [
            (float(_rows(t.detach(), self.count)[replica].abs().max()), n)
            for n, t in self.watched
            if n.endswith(".weight") and t.numel() > 0
        ]
        if not sizes:
            return head + "likely cause: input currents that are too large"
        size, weight = max(sizes)
        return head + (
            f"the largest weight is |{weight}| = {size:.3g}; likely cause: a learning rate "
            "that is too large or missing weight bounds, or a connection scale that is "
            "too large"
        )

    def _quiet(self, replica: int) -> None:
        """Zero the replica's non-finite parameters (its job has failed; others are unaffected)."""
        for name, tensor in self.watched:
            if not name.endswith(".voltage") and tensor.is_contiguous():
                _rows(tensor.data, self.count)[replica].nan_to_num_(0.0, 0.0, 0.0)
