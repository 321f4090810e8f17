"""Per-cell trainer settings: a trainer's defaults with one connection's overrides applied.

Both the validation and ``runner/build.py`` use this, so that what is checked is what is built.
Merge rule for a kernel override: a new ``name`` starts from empty kwargs (the old kernel's
kwargs would not fit the new one); without a new name, the override's kwargs are merged over the
trainer's (``{kwargs: {learning_rate: 1e-3}}`` changes one kwarg and keeps the others).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from runner.config.schema import KernelConf, KernelOverride, TrainerConf
from runner.spec import RuleSpec


@dataclass(frozen=True)
class CellSettings(RuleSpec):
    """A cell's learning rule (registry names and plain values), and which of its fields the
    cell's override set (the validation reports a problem at the key the user wrote)."""

    overridden: frozenset[str] = frozenset()

    def rule(self) -> RuleSpec:
        """The settings alone, as the typed spec holds them."""
        return RuleSpec(**{f.name: getattr(self, f.name) for f in fields(RuleSpec)})


def _overrides(over: KernelOverride) -> bool:
    return over.name is not None or bool(over.kwargs)


def _kernel(base: KernelConf, over: KernelOverride) -> tuple[str, dict[str, Any]]:
    if not _overrides(over):
        return base.name, dict(base.kwargs)
    if over.name is not None and over.name != base.name:
        return over.name, dict(over.kwargs)
    return base.name, {**base.kwargs, **over.kwargs}


def cell_settings(trainer: TrainerConf, cell: str) -> CellSettings:
    """The settings of ``trainer`` for the connection ``cell`` (which must be in ``cells``)."""
    over = trainer.cells[cell]
    post, post_kw = _kernel(trainer.kernel_post, over.kernel_post)
    pre, pre_kw = _kernel(trainer.kernel_pre, over.kernel_pre)
    overridden = {
        name
        for name in ("batch_reduction", "delayed", "interp_tolerance")
        if getattr(over, name) is not None
    }
    overridden |= {
        side for side in ("kernel_post", "kernel_pre") if _overrides(getattr(over, side))
    }
    return CellSettings(
        kernel_post=post,
        kernel_post_kwargs=post_kw,
        kernel_pre=pre,
        kernel_pre_kwargs=pre_kw,
        batch_reduction=over.batch_reduction or trainer.batch_reduction,
        delayed=trainer.delayed if over.delayed is None else over.delayed,
        interp_tolerance=float(
            trainer.interp_tolerance if over.interp_tolerance is None else over.interp_tolerance
        ),
        overridden=frozenset(overridden),
    )
