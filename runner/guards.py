"""Device-side watches of a running network, read to the host in one transfer: finite
parameters and voltages (:class:`FiniteGuard`), and the metrics of the trained connections
(:class:`MetricProbe`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from runner.core.dense import DenseConnection
from runner.core.network import Network


class NonFiniteError(RuntimeError):
    """A weight, delay or membrane value became NaN or infinite; the message is one line."""


class FiniteGuard:
    """Checks that parameters and membrane voltages are finite, on the device.

    The flags of all watched tensors are combined on the device and read in one transfer, which
    the loop does only every ``log_every`` steps and at batch ends (never every step).
    """

    def __init__(self, network: Network) -> None:
        self.watched: list[tuple[str, Tensor]] = []
        for name, conn in network.connections.items():
            for param in ("weight", "delay"):
                tensor = getattr(conn, param, None)
                if isinstance(tensor, Tensor):
                    self.watched.append((f"network.connections.{name}.{param}", tensor))
        for name, pop in network.populations.items():
            voltage = getattr(pop, "voltage", None)
            if isinstance(voltage, Tensor):
                self.watched.append((f"network.populations.{name}.voltage", voltage))
        self.network = network

    def check(self, step: int, extra: Sequence[Tensor] = ()) -> list[float]:
        """Raise :class:`NonFiniteError` naming the first non-finite tensor.

        ``extra`` device scalars (e.g. :meth:`runner.activity.ActivityWatch.flags`) travel in
        the same transfer; their values are returned.
        """
        if not self.watched and not extra:
            return []
        finite = [t.isfinite().all().float() for _, t in self._current()]
        values = torch.stack([*finite, *(x.float() for x in extra)]).tolist()
        flags, rest = values[: len(finite)], values[len(finite) :]
        for (name, _), ok in zip(self.watched, flags, strict=True):
            if ok:
                continue
            if not name.endswith(".voltage"):
                raise NonFiniteError(
                    f"{name} became non-finite (NaN or inf) by step {step}; likely cause: a "
                    "learning rate that is too large or missing bounds/clamps on it"
                )
            raise NonFiniteError(
                f"{name} became non-finite (NaN or inf) by step {step}; {self._largest_weight()}"
            )
        return rest

    def _largest_weight(self) -> str:
        """Which weights drive the blow-up: the connection with the largest |w| (host side)."""
        sizes = [
            (float(t.detach().abs().max()), name)
            for name, t in self.watched
            if name.endswith(".weight") and t.numel() > 0
        ]
        if not sizes:
            return "likely cause: input currents that are too large"
        size, name = max(sizes)
        return (
            f"the largest weight is |{name}| = {size:.3g}; likely cause: a learning rate "
            "that is too large or missing weight bounds, or a connection scale that is "
            "too large"
        )

    def _current(self) -> list[tuple[str, Tensor]]:
        # buffers can be reallocated (set_batch_size), so look voltages up again
        out = []
        for name, tensor in self.watched:
            if name.endswith(".voltage"):
                voltage = self.network.populations[name.split(".")[2]].voltage
                assert isinstance(voltage, Tensor)
                tensor = voltage
            out.append((name, tensor))
        return out


class MetricProbe:
    """Device-side metrics of a network, read to the host in one transfer."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.trained = {
            name: conn
            for name, conn in network.connections.items()
            if isinstance(conn, DenseConnection) and len(conn.updaters) > 0
        }
        self._last = self._snapshot()

    def _snapshot(self) -> dict[str, Tensor]:
        snap: dict[str, Tensor] = {}
        for name, conn in self.trained.items():
            snap[f"{name}.weight"] = conn.weight.detach().clone()
            if conn.delay is not None and "delay" in conn.updaters:
                snap[f"{name}.delay"] = conn.delay.detach().clone()
        return snap

    def read(self, counts: dict[str, Tensor], steps: int) -> dict[str, float]:
        """Rates (Hz) from spike counts over ``steps``, parameter statistics, update sizes."""
        names: list[str] = []
        values: list[Tensor] = []
        seconds = max(steps, 1) * self.network.dt / 1000.0
        for pop, count in counts.items():
            names.append(f"rate.{pop}")
            values.append(count.float().mean() / seconds)
        now = self._snapshot()
        for key, tensor in now.items():
            t = tensor.float()
            for stat, val in (
                ("mean", t.mean()),
                ("std", t.std(unbiased=False)),
                ("min", t.min()),
                ("max", t.max()),
                ("update", (t - self._last[key].float()).abs().mean()),
            ):
                names.append(f"{key}.{stat}")
                values.append(val)
        self._last = now
        if not values:
            return {}
        return dict(zip(names, torch.stack(values).tolist(), strict=True))
