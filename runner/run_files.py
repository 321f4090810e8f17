"""Atomic writes of the run folder's files (summary.json, FAILED, JSON, safetensors).

Everything a later step trusts (summary.json, safetensors, rewritten CSVs) goes through
:func:`atomic_write`: write a temporary file in the same folder, flush and fsync, then
``os.replace`` it over the target, so a reader never sees a half-written file. The file gets the
mode a plain ``open()`` would give it (``0o666 & ~umask``, or the mode of the file it replaces),
so colleagues sharing a folder can read the results as the umask intends.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

SUMMARY = "summary.json"
FAILED = "FAILED"


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux's
    ``/proc/self/status``); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_open_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: those of the existing file, else
    ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:  # no such file (yet)
        return 0o666 & ~current_umask()


def atomic_write(
    path: str | Path, write_fn: Callable[[IO[Any]], object], *, binary: bool = False
) -> Path:
    """Write ``path`` atomically: ``write_fn(f)`` fills a temp file that then replaces ``path``.

    The temp file (``mkstemp`` makes it 0600) gets the mode of :func:`plain_open_mode` before
    it is renamed, so the result is as readable as a plainly written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_open_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        f: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with f:
            os.chmod(tmp, mode)
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf become None, tensors and numpy scalars become numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Atomically write ``data`` as indented JSON (NaN/inf as null)."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda f: f.write(text))


def write_summary(run_dir: str | Path, metrics: Mapping[str, Any], **info: Any) -> Path:
    """Write ``summary.json`` (status completed, the final metrics, extra info) atomically."""
    return write_json(Path(run_dir) / SUMMARY, {"status": "completed", **info, "metrics": metrics})


def write_failed(run_dir: str | Path, message: str) -> Path:
    """Write the ``FAILED`` marker with the one-line error."""
    line = " ".join(message.split()) if message else "failed"
    return atomic_write(Path(run_dir) / FAILED, lambda f: f.write(line + "\n"))


def save_tensors(
    path: str | Path, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> Path:
    """Save named tensors as safetensors (moved to the CPU, made contiguous) atomically."""
    from safetensors.torch import save

    data = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    blob = save(data, metadata=dict(metadata) if metadata else None)
    return atomic_write(path, lambda f: f.write(blob), binary=True)


def load_tensors(path: str | Path) -> dict[str, Any]:
    """Load a safetensors file written by :func:`save_tensors` (CPU tensors)."""
    from safetensors.torch import load_file

    return load_file(str(path))
