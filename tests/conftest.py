"""Shared fixtures: composing configs with the Compose API, running the CLI in-process.

Hydra keeps global state (GlobalHydra, HydraConfig, the logging config); every fixture that
touches it clears GlobalHydra afterwards and restores the working directory, so tests can run
in any order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from torch.utils._python_dispatch import TorchDispatchMode
from typer.testing import CliRunner, Result

#: Overrides that make any experiment tiny: a few samples, a few steps, no plots.
TINY = ("debug=default",)


def write_fake_mnist(folder: Path, n: int = 20) -> Path:
    """A tiny MNIST folder in the IDX format (random images), for configs that need one."""
    import struct

    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes()
        )
    return folder


def write_mnist_headers(folder: Path, n_train: int = 60000, n_test: int = 10000) -> Path:
    """An MNIST folder whose IDX files hold only their headers (the real sample counts).

    Validation reads nothing but the headers, so the full-MNIST configs validate against it;
    a run would fail reading the bodies.
    """
    import struct

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n))
    return folder


@pytest.fixture(scope="session", autouse=True)
def _fake_mnist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point STDP_RUN_MNIST at an IDX folder of MNIST's sizes so the full-MNIST configs
    validate offline."""
    folder = write_mnist_headers(tmp_path_factory.mktemp("mnist"))
    saved = os.environ.get("STDP_RUN_MNIST")
    os.environ["STDP_RUN_MNIST"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("STDP_RUN_MNIST", None)
    else:
        os.environ["STDP_RUN_MNIST"] = saved


@pytest.fixture(autouse=True)
def _clean_hydra_state() -> Iterator[None]:
    """Clear GlobalHydra and restore cwd and the root log level around every test."""
    cwd = os.getcwd()
    level = logging.getLogger().level
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()
    os.chdir(cwd)
    logging.getLogger().setLevel(level)


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides, with_hydra=False)`` -> the composed config."""
    from runner.config.compose import compose

    def _compose(*overrides: str, with_hydra: bool = False) -> DictConfig:
        return compose(list(overrides), with_hydra=with_hydra)

    return _compose


@pytest.fixture
def cli() -> Callable[..., Result]:
    """``cli(*args)`` runs ``stdp-run ARGS`` in-process and returns the click Result."""
    from runner.cli import app

    runner = CliRunner()

    def _invoke(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return _invoke


@pytest.fixture
def run_cli(cli: Callable[..., Result], tmp_path: Path) -> Callable[..., tuple[Result, Path]]:
    """``run_cli(*overrides)`` runs an experiment into ``tmp_path/run``; returns (result, dir)."""

    def _run(*overrides: str, tiny: bool = True) -> tuple[Result, Path]:
        run_dir = tmp_path / "run"
        args: Sequence[str] = [*(TINY if tiny else ()), *overrides, f"hydra.run.dir={run_dir}"]
        return cli(*args), run_dir

    return _run


PLUGIN_SOURCE = '''
"""A third-party kernel package used by the tests (installed as a .dist-info on sys.path)."""
import torch

CALLS = [0]


def triangle(diff, *, amplitude, width=10.0):
    """Triangle window: amplitude * max(0, 1 - |diff| / width)."""
    CALLS[0] += 1
    return amplitude * torch.clamp(1.0 - diff.abs() / width, min=0.0)
'''


@pytest.fixture
def kernel_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A plugin distribution ``stdp-plugin-demo`` whose entry point registers kernel ``triangle``.

    Yields the imported plugin module (its ``CALLS[0]`` counts kernel calls).
    """
    import importlib
    import sys

    from runner.registry import KERNELS

    root = tmp_path / "site"
    (root / "stdp_plugin_demo").mkdir(parents=True)
    (root / "stdp_plugin_demo" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = root / "stdp_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stdp-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[stdp_run.kernels]\ntriangle = stdp_plugin_demo:triangle\n"
    )
    monkeypatch.syspath_prepend(str(root))
    KERNELS.clear_cache()
    try:
        yield importlib.import_module("stdp_plugin_demo")
    finally:
        KERNELS.unregister("triangle")
        KERNELS.clear_cache()
        sys.modules.pop("stdp_plugin_demo", None)


class ForbidHostSync(TorchDispatchMode):
    """Raise on the ops behind ``.item()``, ``float(t)``, ``bool(t)``, ``if t:`` and ``nonzero``:
    on a GPU each makes the host wait for the device."""

    SYNC_OPS = frozenset({"_local_scalar_dense", "nonzero", "item"})

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        if name in self.SYNC_OPS:
            raise AssertionError(f"host sync inside the step: aten.{name}")
        return func(*args, **(kwargs or {}))


@pytest.fixture
def no_host_sync() -> Callable[[], ForbidHostSync]:
    """``with no_host_sync(): ...`` fails the test on any host sync inside the block."""
    return ForbidHostSync
