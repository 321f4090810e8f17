"""Run-folder files honour the umask (issue 13, item 6): atomic writes get the mode of a plain
``open()``, not ``mkstemp``'s 0600, and stay atomic."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.record import atomic_write, current_umask, write_failed, write_json
from runner.report import collect, write_csv


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Set the process umask to ``request.param`` for the test, then restore it."""
    saved = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("umask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], indirect=["umask"]
)
def test_atomic_write_gives_the_mode_of_a_plain_open(
    tmp_path: Path, umask: int, expected: int
) -> None:
    assert current_umask() == umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = atomic_write(tmp_path / "atomic.txt", lambda f: f.write("x"))
    assert _mode(atomic) == _mode(plain) == expected
    binary = atomic_write(tmp_path / "blob.bin", lambda f: f.write(b"\0"), binary=True)
    assert _mode(binary) == expected
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("umask", [0o022], indirect=True)
def test_rewriting_keeps_the_mode_of_the_replaced_file(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "summary.json"
    write_json(target, {"a": 1})
    target.chmod(0o640)  # as a user may have set it; a plain open("w") would keep it
    write_json(target, {"a": 2})
    assert _mode(target) == 0o640
    assert target.read_text().strip().endswith("}") and '"a": 2' in target.read_text()


@pytest.mark.parametrize("umask", [0o022], indirect=True)
def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, umask: int) -> None:
    target = atomic_write(tmp_path / "FAILED", lambda f: f.write("old\n"))

    def boom(f: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_text() == "old\n" and _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["FAILED"]


@pytest.mark.parametrize(("umask", "expected"), [(0o002, 0o664)], indirect=["umask"])
def test_every_file_of_a_run_folder_honours_the_umask(
    tmp_path: Path, compose_cfg, umask: int, expected: int
) -> None:  # type: ignore[no-untyped-def]
    from runner.app import run_experiment

    run_dir = tmp_path / "run"
    cfg = compose_cfg("debug=default", "logger.plots=true", "run.checkpoint_every=1")
    run_experiment(cfg, run_dir)
    write_failed(tmp_path / "other", "boom")  # the marker of a failed run
    table = write_csv(collect(run_dir), tmp_path / "report.csv")  # the sweep table
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(run_dir).as_posix() for p in files}
    for wanted in ("summary.json", "metrics.csv", "weights/final.safetensors",
                   "plots/learning_curves.png", "plots/weights_input_exc.png"):  # fmt: skip
        assert wanted in names, wanted
    assert any(n.startswith("checkpoint/ckpt_") for n in names)
    wrong = {
        p.relative_to(run_dir).as_posix(): oct(_mode(p)) for p in files if _mode(p) != expected
    }
    assert not wrong, f"not {oct(expected)}: {wrong}"
    assert _mode(tmp_path / "other" / "FAILED") == expected
    assert _mode(table) == expected
