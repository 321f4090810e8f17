"""Checkpoint and exact resume at the engine level (the CLI-level tests are in test_reliability)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

import runner.config.schema  # noqa: F401  (registers the schema)
from runner.build import build_experiment
from runner.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from runner.loop import Callbacks, LoopState, NonFiniteError, run_loop

OVERRIDES = [
    "device=cpu",
    "run.n_train=12",
    "run.n_eval=4",
    "run.batch_size=3",
    "run.steps_per_sample=30",
    "run.epochs=2",
    "run.update_every=2",
]


def _build(experiment: str = "delay_adjusted", extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", *OVERRIDES, *extra])
    return build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)


def _params(network) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {
        k: v.clone()
        for k, v in network.state_dict().items()
        if k.endswith((".weight", ".delay", ".theta"))
    }


@pytest.mark.parametrize("experiment", ["default", "delay_adjusted"])
def test_stop_checkpoint_resume_equals_uninterrupted(tmp_path: Path, experiment: str) -> None:
    full = _build(experiment)
    end = run_loop(full.network, full.task, full.plan)

    part = _build(experiment)
    stops = iter([False, False, False, True])  # stop after the 4th training batch (epoch 0)
    state = run_loop(part.network, part.task, part.plan, should_stop=lambda: next(stops, False))
    assert (state.epoch, state.batch) == (0, 4)
    save_checkpoint(tmp_path, part.network, part.task, state)

    resumed = _build(experiment)
    state = load_checkpoint(latest_checkpoint(tmp_path), resumed.network, resumed.task)
    end2 = run_loop(resumed.network, resumed.task, resumed.plan, state=state)

    a, b = _params(full.network), _params(resumed.network)
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert end2.steps == end.steps


def test_interrupted_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exp = _build("default")
    state = LoopState(epoch=0, batch=1)
    first = save_checkpoint(tmp_path, exp.network, exp.task, state)

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, exp.network, exp.task, LoopState(epoch=0, batch=2))
    monkeypatch.undo()
    assert list_checkpoints(tmp_path) == [first]
    assert not [p for p in (tmp_path / "checkpoint").iterdir() if p.name.endswith(".tmp")]
    again = _build("default")
    assert load_checkpoint(latest_checkpoint(tmp_path), again.network, again.task).batch == 1


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    exp = _build("default")
    path = save_checkpoint(tmp_path, exp.network, exp.task, LoopState(batch=1))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path, exp.network, exp.task)


def test_no_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        latest_checkpoint(tmp_path)


def test_huge_learning_rate_stops_with_the_parameter_named() -> None:
    exp = _build(
        "default",
        (
            "trainer.weight.kernel_post.kwargs.learning_rate=1e37",
            "network.connections.input_exc.weight_bounds.upper=null",
            "network.connections.input_exc.weight_bounds.clamp_max=null",
            "network.connections.input_exc.normalize=null",
            "run.log_every=5",
        ),
    )

    class Seen(Callbacks):
        batches = 0

        def on_batch_end(self, state, phase, n):  # type: ignore[no-untyped-def]
            self.batches += 1

    with pytest.raises(
        NonFiniteError,
        match=r"became non-finite .*input_exc\.weight.* learning "
        r"rate that is too large",
    ):
        run_loop(exp.network, exp.task, exp.plan, callbacks=Seen())
