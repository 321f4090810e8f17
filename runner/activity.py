"""Silent and saturated populations: a warning when learning has broken the network's activity.

A learning rate that is far too high drives the weights to a bound within a few batches; the run
then goes on to chance accuracy without an error. Two patterns show it in the spike counts of a
training batch, which the loop has anyway:

- **silent**: the population did not spike at all during the whole batch (every sample);
- **saturated**: in every sample of the batch its most active neuron fired on at least
  ``SATURATION`` of the steps its refractory period allows (``ceil(T / k)`` for ``T`` steps and
  a shortest interval of ``k`` steps between spikes; ``k = 1`` without a refractory period).

The flags are computed on the device and read to the host in the one transfer the loop makes
after every training batch anyway (:meth:`runner.loop.FiniteGuard.check`), so watching adds no
host sync. Each population is warned about at most once per epoch.
"""

from __future__ import annotations

import logging
import math

from torch import Tensor

from runner.core.network import Network

log = logging.getLogger("runner.activity")

#: Fraction of the refractory-limited maximum spike count that counts as saturated. A neuron
#: that integrates for a step or two after each refractory period cannot reach the maximum itself.
SATURATION = 0.75


def shortest_interval(population: object) -> int:
    """Steps between two spikes of a neuron firing as fast as it can (1 without refractoriness)."""
    return max(int(getattr(population, "refrac_steps", 1)), 1)


class ActivityWatch:
    """Flags watched populations that were silent or saturated over a whole training batch.

    Args:
        network: the network (for the refractory periods and the driven populations).
        populations: the populations whose spikes the loop counts; driven ones are skipped.
    """

    def __init__(self, network: Network, populations: tuple[str, ...]) -> None:
        self.populations = tuple(p for p in populations if p not in network.driven)
        self.interval = {p: shortest_interval(network.populations[p]) for p in self.populations}
        self.warned: set[tuple[str, int]] = set()

    def flags(self, counts: dict[str, Tensor]) -> list[Tensor]:
        """Per population: spikes in the batch, and the smallest (over samples) of the largest
        count of one neuron; device scalars, to be read with the loop's own transfer."""
        out: list[Tensor] = []
        for p in self.populations:
            count = counts[p].flatten(1).float()  # [B, N]
            out += [count.sum(), count.amax(dim=1).amin()]
        return out

    def report(self, values: list[float], *, steps: int, epoch: int, batch: int) -> list[str]:
        """Log a warning for each silent or saturated population not yet warned about in
        ``epoch``; ``values`` are :meth:`flags` read to the host. Returns the messages."""
        messages = []
        for i, p in enumerate(self.populations):
            total, busiest = values[2 * i], values[2 * i + 1]
            message = self._message(p, total, busiest, steps)
            if message is None or (p, epoch) in self.warned:
                continue
            self.warned.add((p, epoch))
            message = f"epoch {epoch + 1}, training batch {batch}: {message}"
            log.warning("%s", message)
            messages.append(message)
        return messages

    def _message(self, population: str, total: float, busiest: float, steps: int) -> str | None:
        if total == 0:
            return (
                f"population {population!r} fell silent (no spikes in the whole batch); likely "
                "cause: weights driven to their lower bound (a learning rate too high or "
                "depression too strong), too little input (connection scale, stimulus rate) "
                "or a threshold too high"
            )
        cap = math.ceil(steps / self.interval[population])
        if busiest >= SATURATION * cap:
            return (
                f"population {population!r} saturated (in every sample one neuron fired "
                f"{busiest:.0f} or more times in {steps} steps, {SATURATION:.0%} or more of the "
                f"{cap} spikes its refractory period allows); likely cause: a learning rate "
                "too high (weights at their upper bound), too much input (connection scale, "
                "normalisation target) or a threshold too low"
            )
        return None
