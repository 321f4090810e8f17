"""What a run measures: honest throughput (compilation excluded), the compile policy, the
readouts (max-rate, time to first spike, confusion matrix), the splits and the learning curve."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module

import runner.config.schema  # noqa: F401  (registers the schema)
from runner import loop as loop_module
from runner.build import build_experiment, chunk_steps, step_key, typed
from runner.compile_policy import choose_compile, steps_per_call
from runner.compiled_step import step_cached
from runner.core.readout import MaxRateClassifier, confusion_matrix
from runner.loop import CompiledStep, run_loop
from runner.spec_config import experiment_spec
from runner.tasks import ImageTask

SMALL = [
    "device=cpu",
    "run.n_train=20",
    "run.n_eval=30",
    "run.batch_size=2",
    "run.steps_per_sample=20",
    "logger.plots=false",
]


def _build(*extra: str) -> Any:
    with initialize_config_module("runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*SMALL, *extra])
    return build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)


class SlowFirstCall(CompiledStep):
    """A 'compiled' step that runs eagerly but takes ``delay`` s on the first call of each
    specialisation, as a real compilation does."""

    delay = 0.4
    sleeps = 0

    def __init__(self, network: Any, steps_per_call: int, key: str | None = None) -> None:
        super().__init__(network, steps_per_call)  # compiles nothing, so marks no key cached

        def slow(fn: Any) -> Any:
            def call(*args: Any) -> None:
                if not getattr(call, "done", False):
                    time.sleep(self.delay)
                    SlowFirstCall.sleeps += 1
                    call.done = True  # type: ignore[attr-defined]
                fn(*args)

            return call

        self._step, self._chunk = slow(self._one), slow(self._many)


def test_compile_time_is_excluded_from_the_throughput(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_module, "CompiledStep", SlowFirstCall)
    monkeypatch.setattr(SlowFirstCall, "sleeps", 0)
    exp = _build("run.compile=true")
    assert exp.plan.compile
    start = time.perf_counter()
    state = run_loop(exp.network, exp.task, exp.plan)
    wall = time.perf_counter() - start
    # one graph was "compiled" (one sleep), and its sleep counts as compile time, not training
    # (no upper bound on seconds: a loaded machine stretches every call)
    assert SlowFirstCall.sleeps == 1
    assert state.compile_s >= SlowFirstCall.delay
    assert state.train_s + state.compile_s + state.eval_s <= wall
    assert state.train_s < wall - SlowFirstCall.delay
    figures = state.throughput()
    assert figures["compile_s"] == state.compile_s
    assert figures["train_steps_per_s"] == pytest.approx(state.train_steps / state.train_s)
    assert figures["train_samples_per_s"] == pytest.approx(20 / state.train_s)
    # the frozen labelling pass over the 20 training samples, then 30 held out
    assert state.eval_samples == 20 + 30 and figures["eval_samples_per_s"] > 0
    assert state.metrics["train_steps_per_s"] == figures["train_steps_per_s"]


def test_eager_runs_report_no_compile_time() -> None:
    exp = _build("run.compile=false")
    state = run_loop(exp.network, exp.task, exp.plan)
    assert state.compile_s == 0.0 and state.train_s > 0
    assert state.train_steps == 10 * 20  # 10 batches of 20 steps


@pytest.mark.parametrize(
    ("steps", "synapses", "delays", "expected"),
    [
        (1_000, 2_560, False, False),  # a few seconds of work: never worth a 30 s compile
        (60_000, 2_560, False, True),  # the 8x8 digits at batch 1 for 600 samples: 42 s eager
        (20_000, 2_560, False, False),  # 14 s eager
        (1_000_000, 78_400, False, True),  # Diehl & Cook, 4,000 digits at batch 1
        (20_000, 78_400, True, True),  # delays make eager steps 3.6 ms
    ],
)
def test_auto_compiles_only_where_it_pays(
    steps: int, synapses: int, delays: bool, expected: bool
) -> None:
    choice = choose_compile("auto", train_steps=steps, synapse_samples=synapses, delays=delays)
    assert choice.compile is expected
    assert "run.compile=auto" in choice.reason and f"{steps:,}" in choice.reason


def test_explicit_compile_modes_win() -> None:
    for mode, expected in (("true", True), ("false", False)):
        choice = choose_compile(mode, train_steps=1, synapse_samples=1, delays=False)
        assert choice.compile is expected


def test_auto_counts_a_warm_compile_for_a_step_that_compiled_before() -> None:
    # 20,000 steps of the 8x8 network: 15 s eager, less than a cold compile, more than a warm one
    args: dict[str, Any] = {"train_steps": 20_000, "synapse_samples": 6_400, "delays": False}
    cold = choose_compile("auto", **args)
    warm = choose_compile("auto", **args, cached=True)
    assert (cold.compile, warm.compile) == (False, True)
    assert "from the cache" in warm.reason and "from the cache" not in cold.reason


def _spec(*extra: str) -> Any:
    with initialize_config_module("runner.conf", version_base="1.3"):
        return experiment_spec(typed(compose("config", overrides=[*SMALL, *extra])))


def _key(*extra: str, steps: int = 5, dtype: torch.dtype = torch.float32) -> str:
    return step_key([_spec(*extra)], steps_per_call=steps, dtype=dtype, device=torch.device("cpu"))


def test_the_step_key_ignores_the_seed_and_names_what_shapes_the_graph() -> None:
    base = _key()
    assert _key("seed=3") == base  # the seed draws initial values only
    for change in (
        "trainer.weight.kernel_post.kwargs.learning_rate=2e-3",  # a constant of the graph
        "run.batch_size=4",
        "network.populations.exc.size=50",
        "run.update_every=2",
    ):
        assert _key(change) != base, change
    assert _key(steps=10) != base
    assert _key(dtype=torch.float64) != base


def test_a_compiled_step_marks_its_key_and_auto_then_compiles_short_runs(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    short = ("run.compile=auto", "run.batch_size=1", "run.steps_per_sample=50", "run.n_train=400")
    exp = _build(*short)  # 20,000 steps: eager unless the step's compilation is cached
    assert exp.plan.compile is False and exp.plan.step_key is None
    spec = _spec(*short)
    steps = chunk_steps(spec.plan, exp.network, exp.task)
    key = step_key([spec], steps_per_call=steps, dtype=torch.float32, device=torch.device("cpu"))
    assert not step_cached(key)
    CompiledStep(exp.network, steps, key=key)._timed(("first",), lambda: None)  # a first call
    assert step_cached(key)
    monkeypatch.setenv("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
    assert not step_cached(key)  # every compilation is cold then
    monkeypatch.delenv("TORCHINDUCTOR_FORCE_DISABLE_CACHES")
    again = _build(*short)
    assert again.plan.compile is True and again.plan.step_key == key
    assert _build(*short, "seed=5").plan.compile is True  # the same step
    assert (
        _build(*short, "trainer.weight.kernel_post.kwargs.learning_rate=2e-3").plan.compile is False
    )


@pytest.mark.parametrize(
    ("steps", "per_sample", "synapses", "log_every", "expected"),
    [
        (64_850, 50, 6_400, 5_000, 10),  # the default experiment: 5 and 10 cost alike
        (20_000, 50, 6_400, 5_000, 5),  # a third of it: tracing 10 steps costs more
        (600_000, 150, 78_400, 15_000, 10),  # mnist_stdp_cpu: the longest chunk
        (600_000, 150, 78_400, 0, 10),  # no logging: the sample length alone
        (600_000, 150, 78_400, 7, 1),  # logs every 7 steps: no common chunk
        (600_000, 150, 64 * 78_400, 15_000, 1),  # large steps: no chunks
        (200, 20, 2_560, 50, 1),  # a short run: tracing dominates
    ],
)
def test_steps_per_call_weighs_tracing_against_call_overhead(
    steps: int, per_sample: int, synapses: int, log_every: int, expected: int
) -> None:
    k = steps_per_call(
        train_steps=steps, steps_per_sample=per_sample, synapse_samples=synapses,
        log_every=log_every,
    )  # fmt: skip
    assert k == expected
    assert per_sample % k == 0 and (log_every == 0 or log_every % k == 0)


def test_the_plan_carries_the_chunk_size_to_the_compiled_step() -> None:
    def default(*overrides: str) -> Any:  # the default experiment, built, not run
        with initialize_config_module("runner.conf", version_base="1.3"):
            cfg = compose("config", overrides=["run.compile=true", *overrides])
        return build_experiment(cfg, device=torch.device("cpu"), dtype=torch.float32)

    exp = default()
    assert exp.plan.steps_per_call == 5  # 900 digits of 50 steps: 45,000 steps
    step = loop_module.make_step(exp.network, compile=True, steps_per_call=exp.plan.steps_per_call)
    assert isinstance(step, CompiledStep) and step.steps_per_call == 5
    assert default("run.n_train=1297").plan.steps_per_call == 10  # 64,850 steps: a longer chunk
    assert _build("run.compile=false").plan.steps_per_call is None


def test_the_compiled_step_asks_for_the_cpp_wrapper_on_the_cpu(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The C++ wrapper is what made the default run 11 % shorter (docs/PERFORMANCE.md); its
    # numbers are those of the Python wrapper (test_compiled_chunks_match_eager, the replica
    # tests compare compiled steps with eager ones).
    seen: list[dict[str, Any]] = []

    def capture(fn, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs.get("options") or {})
        return fn

    monkeypatch.setattr(torch, "compile", capture)
    exp = _build("run.compile=true")
    loop_module.make_step(exp.network, compile=True, steps_per_call=5)
    assert len(seen) == 2 and all(o.get("cpp_wrapper") is True for o in seen)
    assert all(o.get("realize_reads_threshold") == 1 for o in seen)


def test_first_spike_readout_picks_the_earliest_assigned_neuron() -> None:
    clf = MaxRateClassifier(4, 3)
    clf.assignments.copy_(torch.tensor([0, 1, 2, -1]))
    counts = torch.tensor([[3, 1, 0, 9], [1, 1, 0, 0], [0, 0, 0, 5]])
    latency = torch.tensor([[5, 2, 9, 0], [4, 4, 9, 9], [9, 9, 9, 1]])
    # sample 0: neuron 1 fires first (neuron 3 is unassigned); sample 1: a tie at step 4 goes to
    # the lower index with as many spikes; sample 2: no assigned neuron fired
    assert clf.predict_first_spike(latency, counts).tolist() == [1, 0, -1]


def test_confusion_matrix_counts_abstentions() -> None:
    predicted = torch.tensor([0, 1, 1, -1, 2, 2])
    labels = torch.tensor([0, 1, 0, 2, 2, 1])
    matrix = confusion_matrix(predicted, labels, 3)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]


def _task(**kwargs: Any) -> ImageTask:
    images = torch.arange(40.0).reshape(40, 1, 1).repeat(1, 2, 2) / 40
    labels = torch.arange(40) % 4
    return ImageTask(
        images=images,
        labels=labels,
        n_train=kwargs.pop("n_train", 20),
        n_eval=kwargs.pop("n_eval", 10),
        batch_size=2,
        encode=lambda x, gen: (x.unsqueeze(0) > 0.5).expand(3, *x.shape),
        input="input",
        readout="exc",
        n_classes=4,
        **kwargs,
    )


def test_tail_holdout_and_test_split() -> None:
    task = _task(holdout="tail", test_images=torch.zeros(7, 2, 2), test_labels=torch.zeros(7))
    assert task.train_idx.tolist() == list(range(20))
    assert task.eval_idx.tolist() == list(range(30, 40))  # the file's tail, as MNIST's 50k/10k
    assert task.eval_phases == ("eval", "test")
    assert task.n_batches("test") == 4  # eval batch defaults to the training batch (2)


def test_frozen_labelling_adds_a_label_phase() -> None:
    task = _task(assign_from="frozen", assign_samples=6, eval_batch_size=4)
    assert task.eval_phases == ("label", "eval")
    assert task.n_batches("label") == 2  # 6 training samples at the evaluation batch of 4
    labels = torch.cat([b.labels for b in task.batches("label", 0)])
    assert labels.tolist() == (torch.arange(40) % 4)[task.train_idx[:6]].tolist()


def test_learning_free_phases_do_not_touch_the_training_stream() -> None:
    task = _task()
    before = task.generator.get_state()
    first = [b.spikes for b in task.batches("eval", 0)]
    again = [b.spikes for b in task.batches("eval", 3)]
    assert torch.equal(task.generator.get_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_run_reports_validation_test_and_confusion(tmp_path: Any) -> None:
    from conftest import write_fake_mnist  # tests/ is on sys.path (rootdir conftest)

    root = write_fake_mnist(tmp_path / "mnist", n=30)
    exp = _build(
        "experiment=mnist_stdp",
        f"stimulus.dataset.root={root}",
        "run.n_train=10",
        "run.n_eval=6",
        "run.n_test=8",
        "run.epochs=1",
        "run.eval_every=4",
        "run.monitor_samples=5",
        "network.populations.exc.size=10",
        "network.populations.inh.size=10",
    )
    state = run_loop(exp.network, exp.task, exp.plan)
    metrics = state.metrics
    assert {"accuracy", "accuracy_ttfs", "test_accuracy", "test_accuracy_ttfs"} <= set(metrics)
    summary = exp.task.summary()
    validation, test = summary["readout"]["validation"], summary["readout"]["test"]
    assert validation["samples"] == 6 and test["samples"] == 8
    for report, key in ((validation, "accuracy"), (test, "test_accuracy")):
        matrix = torch.tensor(report["confusion_matrix"])
        assert matrix.sum() + sum(report["abstained"]) == report["samples"]
        assert matrix.trace() / report["samples"] == pytest.approx(metrics[key])
    # monitored after 4 and 8 of the 10 training samples (batch 2)
    assert [p["samples"] for p in summary["accuracy_curve"]] == [4, 8]
    # per monitor: 5 labelling + 5 validation samples (frozen readout); then 10 labelling,
    # 6 validation and 8 test samples after the epoch
    assert state.eval_samples == 2 * (5 + 5) + 10 + 6 + 8


def test_each_compiled_run_starts_from_fresh_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sequential jobs of a multirun build new networks whose graphs would count towards dynamo's
    recompile limit of the same code (a hard failure with fullgraph=True): reset per run."""
    from runner.loop import make_step

    resets: list[int] = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    exp = _build()
    make_step(exp.network, compile=False)
    assert resets == []
    make_step(exp.network, compile=True)  # compiles lazily, on the first call
    assert resets == [1]


def test_progress_rate_counts_from_the_training_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time before the training batches (building the step) and excluded time (compiling)
    do not lower the steps/s of the progress line."""
    from runner import progress as progress_module

    now = [100.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    bar = progress_module.Progress("off", epochs=1, batches=10, steps_per_batch=50)
    with bar:
        now[0] += 30.0  # building and compiling the step
        bar.restart_clock()
        now[0] += 7.0  # the first batch: 6 s of compilation, 1 s of simulation
        bar.advance(steps=50, exclude_s=6.0)
        now[0] += 1.0
        bar.advance(steps=50)
        assert bar.steps_per_second == pytest.approx(100 / 2.0)
