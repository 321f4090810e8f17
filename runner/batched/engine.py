"""The engine's replica API (:mod:`runner.core.replicas`), or a stand-in for one replica.

Until the engine can stack networks, :func:`stack_networks` accepts a single network (returned
as is) and refuses more with :class:`ReplicaMismatch`, so the launcher runs such a group's jobs
one at a time and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.core.network import Network

try:
    from runner.core.replicas import ReplicaMismatch, stack_networks, write_back
except ImportError:  # an engine without the replica axis

    class ReplicaMismatch(ValueError):  # type: ignore[no-redef]
        """Networks that cannot be stacked (the message is one line)."""

    def stack_networks(networks: Sequence[Network]) -> Network:  # type: ignore[misc]
        """The single network of ``networks`` (this engine cannot stack more)."""
        if len(networks) != 1:
            raise ReplicaMismatch("this engine has no replica axis (runner.core.replicas)")
        return networks[0]

    def write_back(stacked: Network, networks: Sequence[Network]) -> None:  # type: ignore[misc]
        """Nothing to copy: the stacked network is the single solo network."""
        assert len(networks) == 1 and stacked is networks[0]


__all__ = ["ReplicaMismatch", "stack_networks", "write_back"]
