"""The body of ``stdp-run replay``: a lean process (no config stack) and the replay itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from runner.cli import fail


def run_replay(case: Path, out: Path) -> None:
    """The body of ``stdp-run replay``.

    Two process-level settings, both only effective before the process first imports torch:

    - ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it: OpenMP workers sleep between parallel
      regions instead of spinning. The same speed on an idle machine; when another process holds
      a core, spinning workers wait for each other's time slices (measured on 2 cores with one
      busy: 2.8 s instead of 3.5 s, and up to 10 s with a busy neighbour).
    - ``import torch`` creates ~170,000 GC-tracked objects: the import runs without the cyclic
      GC (its collections cost ~0.14 s there) and ``gc.freeze()`` then moves everything into
      the permanent generation, so the collections of the interpreter's shutdown skip it too
      (~0.35 s less per process). They live until the process ends anyway. An embedding process
      that has already imported torch (pytest) is left as it is.

    and one for the loop: glibc's malloc keeps freed blocks for reuse
    (:func:`runner.replay.keep_freed_memory`; the trainers' ``[B, O, I]`` temporaries otherwise
    page-fault in again every step: trainers 0.47 s instead of 0.75-1.0 s in the 100-step case).
    The thread count stays torch's default (``OMP_NUM_THREADS``, else the cores): on 2 cores the
    whole process takes 1.8 s with 2 threads and 2.1 s with 1.
    """
    import gc

    fresh = "torch" not in sys.modules
    if fresh:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        gc.disable()
    try:
        from runner.replay import ReplayInputError, keep_freed_memory, main
    finally:
        if fresh:
            gc.freeze()
            gc.enable()
    keep_freed_memory()
    try:
        main(case, out)
    except ReplayInputError as exc:
        fail(str(exc))
