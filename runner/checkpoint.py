"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the network's state dict (parameters, neuron and synapse state, spike ages,
accumulated updates), the task's state (random generators, the epoch's readout statistics), the
loop position and metrics so far, and the global random generator states. It is written between
training batches, through a temporary file that replaces the target only once complete, so a
process killed mid-write leaves the previous checkpoint as the latest. Loading uses
``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner.core.network import Network
from runner.loop import LoopState
from runner.record import atomic_write

FORMAT = 1
FOLDER = "checkpoint"
_NAME = re.compile(r"^ckpt_e(\d+)_b(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint; the message is one line for the user."""


def checkpoint_path(run_dir: Path, state: LoopState) -> Path:
    return Path(run_dir) / FOLDER / f"ckpt_e{state.epoch:04d}_b{state.batch:07d}.pt"


def save_checkpoint(
    run_dir: Path, network: Network, task: Any, state: LoopState, *, keep: int = 2
) -> Path:
    """Write a checkpoint of the current position; keep the ``keep`` newest ones."""
    payload = {
        "format": FORMAT,
        "batch_size": network.batch_size,
        "network": network.state_dict(),
        "task": _loadable(task.state_dict() if hasattr(task, "state_dict") else {}),
        "loop": _loadable(dataclasses.asdict(state)),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = atomic_write(
        checkpoint_path(run_dir, state), lambda f: f.write(buffer.getvalue()), binary=True
    )
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _loadable(value: Any) -> Any:
    """Containers of tensors and Python numbers only, so ``weights_only`` loading accepts them."""
    if isinstance(value, dict):
        return {k: _loadable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loadable(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    return value


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary files are ignored)."""
    folder = Path(run_dir) / FOLDER
    if not folder.is_dir():
        return []
    found = [
        (tuple(map(int, m.groups())), p) for p in folder.iterdir() if (m := _NAME.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint of ``run_dir``, or a CheckpointError saying why not."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from (looked in {FOLDER}/)")
    return found[-1]


def load_checkpoint(
    path: Path, network: Network, task: Any, *, device: torch.device | str = "cpu"
) -> LoopState:
    """Restore ``network`` and ``task`` from ``path``; return the loop position to continue at."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a stdp-run checkpoint of format {FORMAT}")
    if payload["batch_size"] != network.batch_size:
        network.set_batch_size(int(payload["batch_size"]))
    network.load_state_dict(payload["network"])
    if hasattr(task, "load_state_dict"):
        task.load_state_dict(payload["task"])
    torch.set_rng_state(payload["rng"]["torch"].cpu())
    if payload["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in payload["rng"]["cuda"]])
    return LoopState(**payload["loop"])


def checkpoint_steps(path: Path) -> int:
    """The global step count stored in a checkpoint (the loop position it resumes at)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return int(payload["loop"]["steps"])
