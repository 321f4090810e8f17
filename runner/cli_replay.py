"""The lean parts of the command line: imports of torch and the engine without the cyclic GC
(:func:`heavy_imports`, for a run and for the replay) and the body of ``stdp-run replay`` (a
process without the config stack)."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.cli import fail


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import torch and the engine without the cyclic GC, then freeze what they created.

    ``import torch`` (and dynamo, Hydra, the registries) creates ~170,000 GC-tracked objects: the
    import runs without the cyclic GC (its collections cost ~0.14 s there) and ``gc.freeze()``
    then moves everything into the permanent generation, so later collections and the
    interpreter's shutdown skip it (~0.35 s less per process); they live until the process ends
    anyway. An embedding process that has already imported torch (pytest) is left as it is.
    Also, only effective before torch is first imported: ``OMP_WAIT_POLICY=PASSIVE`` unless the
    user set it, so that OpenMP workers sleep between parallel regions instead of spinning (the
    same speed on an idle machine; when another process holds a core, spinning workers wait for
    each other's time slices: measured on 2 cores with one busy, 2.8 s instead of 3.5 s, and up
    to 10 s with a busy neighbour).
    """
    fresh = "torch" not in sys.modules
    if fresh:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        gc.disable()
    try:
        yield
    finally:
        if fresh:
            gc.freeze()
            gc.enable()


def run_replay(case: Path, out: Path) -> None:
    """The body of ``stdp-run replay``: the imports under :func:`heavy_imports`, and glibc's
    malloc kept from returning freed blocks (:func:`runner.replay.keep_freed_memory`; the
    trainers' ``[B, O, I]`` temporaries otherwise page-fault in again every step: trainers 0.47 s
    instead of 0.75-1.0 s in the 100-step case). The thread count stays torch's default
    (``OMP_NUM_THREADS``, else the cores): on 2 cores the whole process takes 1.8 s with 2
    threads and 2.1 s with 1.
    """
    with heavy_imports():
        from runner.replay import ReplayInputError, keep_freed_memory, main
    keep_freed_memory()
    try:
        main(case, out)
    except ReplayInputError as exc:
        fail(str(exc))
