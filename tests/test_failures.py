"""The one error boundary (runner/failures.py): how exceptions are classified, how Hydra's
plain ValueErrors become override errors where we call Hydra, and how a single run's failure
reaches the CLI past Hydra (one ``error:`` line, no "Error executing job" line)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runner.config.errors import Interrupted, OverrideError, UserAbort, is_user_error
from runner.failures import failure, hand_over, handed_over


def test_an_abort_is_an_ordinary_exception_and_an_interrupt_is_not() -> None:
    assert isinstance(UserAbort("x"), Exception)
    assert not isinstance(UserAbort("x"), SystemExit)
    # like KeyboardInterrupt: Hydra's run_job catches Exception only, so it ends a sweep
    assert not isinstance(Interrupted("y", 130), Exception)
    f = failure(UserAbort("bad value", code=1))
    assert (f.message, f.code, f.kind) == ("bad value", 1, "abort")
    g = failure(Interrupted("interrupted by SIGTERM", 143))
    assert (g.message, g.code, g.kind) == ("interrupted by SIGTERM", 143, "abort")


def test_hydras_value_error_for_a_group_override_is_an_override_error() -> None:
    from runner.config.compose import compose

    with pytest.raises(OverrideError) as info:
        compose(["device=1"])
    assert isinstance(info.value.__cause__, ValueError)
    f = failure(info.value)
    assert f.kind == "config" and f.code == 2
    assert f.message.startswith("override: a config group takes the name of one of its options")


def test_a_value_error_of_our_own_is_a_bug_wherever_it_is_raised() -> None:
    assert not is_user_error(ValueError("Config group override must be a string"))
    f = failure(TypeError("unsupported operand"))
    assert (f.kind, f.code) == ("bug", 1)


def test_an_abort_nobody_waits_for_is_raised() -> None:
    with pytest.raises(UserAbort, match="alone"):
        hand_over(UserAbort("alone"))
    with handed_over() as got:
        hand_over(UserAbort("to the CLI"))
    assert [a.message for a in got] == ["to the CLI"]
    with pytest.raises(UserAbort):  # the listener is gone again
        hand_over(UserAbort("after"))


def test_a_single_run_failure_is_one_line_without_hydras_job_line(
    run_cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.app as app
    from runner.loop import NonFiniteError

    def diverge(*args: object, **kwargs: object) -> dict[str, float]:
        raise NonFiniteError("non-finite weights in input_exc at step 40")

    monkeypatch.setattr(app, "run_experiment", diverge)
    result, run_dir = run_cli()
    assert result.exit_code == 1
    assert "Error executing job" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: non-finite weights in input_exc at step 40"]
    assert (run_dir / "FAILED").read_text().strip() == "non-finite weights in input_exc at step 40"
