"""A ``module:function`` kernel in the working directory works without ``PYTHONPATH=.``
(issue 13, item 11), as docs/CLI.md says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.registry import KERNELS, RegistryError

KERNEL = '''
import torch

CALLS = [0]


def triangle(diff, *, amplitude, width=10.0):
    """Triangle window: amplitude * max(0, 1 - |diff| / width)."""
    CALLS[0] += 1
    return amplitude * torch.clamp(1.0 - diff.abs() / width, min=0.0)
'''
OVERRIDES = (
    "trainer.weight.cells.input_exc.kernel_post.name=cwd_kernels_demo:triangle",
    "+trainer.weight.cells.input_exc.kernel_post.kwargs.amplitude=1e-3",
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory holding ``cwd_kernels_demo.py``, not on ``sys.path``."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "cwd_kernels_demo.py").write_text(KERNEL)
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(work))])
    monkeypatch.delitem(sys.modules, "cwd_kernels_demo", raising=False)
    yield work
    sys.modules.pop("cwd_kernels_demo", None)


def test_kernel_module_in_the_working_directory_runs(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    result, run_dir = run_cli(*OVERRIDES)
    assert result.exit_code == 0, result.output
    assert (run_dir / "summary.json").is_file()
    module = sys.modules["cwd_kernels_demo"]
    assert module.__file__ == str(workdir / "cwd_kernels_demo.py")
    assert module.CALLS[0] > 0  # the trainer evaluated the kernel
    assert sys.path[-1] == str(workdir)  # after the installed packages: they are not shadowed


def test_missing_module_is_still_an_error(workdir: Path) -> None:
    with pytest.raises(RegistryError, match="cannot import kernel 'no_such_kernels:f'"):
        KERNELS.get("no_such_kernels:f")
    assert str(workdir) not in sys.path  # nothing to find there: the path is left alone


def test_console_script_finds_the_module(tmp_path: Path) -> None:
    """The installed ``stdp-run`` (whose sys.path has no working directory) validates it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "cwd_kernels_demo.py").write_text(KERNEL)
    exe = shutil.which("stdp-run") or str(Path(sys.executable).parent / "stdp-run")
    proc = subprocess.run([exe, "validate", *OVERRIDES], cwd=work, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
