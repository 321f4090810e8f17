"""The run folder outside the loop: the overrides a run was started with, removing the folder
of a run whose config was wrong, and the log file of a resumed run.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from omegaconf import OmegaConf


def _saved_overrides(run_dir: Path) -> list[str]:
    """The overrides Hydra recorded in a run folder (what a resumed run was started with)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    saved = OmegaConf.load(path)
    return [str(x) for x in saved] if OmegaConf.is_list(saved) else []


#: Files Hydra writes into a run folder before the task starts (besides the job's log).
HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")


def discard_run_folder(run_dir: Path, log_name: str = "stdp_run.log") -> bool:
    """Remove the folder Hydra made for a run that failed its config check; True if removed.

    Only when the folder holds nothing but Hydra's files and the log (a folder the user pointed
    ``hydra.run.dir`` at, with other files in it, is left alone and marked FAILED instead).
    """
    known = {run_dir / f for f in (*HYDRA_FILES, log_name)}
    present = [p for p in run_dir.rglob("*") if p.is_file() or p.is_symlink()]
    if any(p not in known for p in present):
        return False
    for path in present:
        path.unlink()
    with contextlib.suppress(OSError):
        (run_dir / ".hydra").rmdir()
    try:
        run_dir.rmdir()
    except OSError:
        return False
    cwd = Path.cwd().resolve()
    parent = run_dir.resolve().parent
    while parent != cwd and cwd in parent.parents:  # the empty date folders above it, too
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
    return True


def _attach_file_log(run_dir: Path) -> None:
    """Outside Hydra: log to the console and append to the run's log file."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) for h in root.handlers):
        handler = logging.FileHandler(run_dir / "stdp_run.log")
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        )
        root.addHandler(handler)
    if not any(
        type(h) is logging.StreamHandler or h.__class__.__name__ == "RichHandler"
        for h in root.handlers
    ):
        from rich.logging import RichHandler

        root.addHandler(RichHandler(show_path=False))
    root.setLevel(logging.INFO)
