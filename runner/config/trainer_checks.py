"""Semantic checks of the trainers: kinds, kernels and their kwargs, cells, delay requirements.

Each cell's settings are the trainer's defaults with the cell's overrides applied
(:func:`runner.config.cells.cell_settings`); a problem is reported at the key the user set,
``trainer.<name>.<field>`` or ``trainer.<name>.cells.<connection>.<field>``.
"""

from __future__ import annotations

from runner.config.cells import cell_settings
from runner.config.problems import check_positive_kwargs, check_range, lookup, passes, traits_of
from runner.config.schema import StdpRunConfig, TrainerConf
from runner.registry import CONNECTIONS, KERNELS, REDUCTIONS, TRAINERS, choices_text, did_you_mean
from runner.traits import TrainerTraits

#: Trainer settings that only rules declaring ``takes_delayed`` accept, with their neutral values.
TRAINER_EXTRAS = {"delayed": False, "interp_tolerance": 0.0}


def _check_trainer(cfg: StdpRunConfig, name: str, t: TrainerConf, out: list[str]) -> None:
    key = f"trainer.{name}"
    info: TrainerTraits | None = traits_of(out, f"{key}.kind", TRAINERS, t.kind)
    conns = cfg.network.connections
    if not t.cells:
        out.append(
            f"{key}.cells: empty; name the connections it trains, e.g. "
            f"{key}.cells={{{next(iter(conns), 'CONNECTION')}: {{}}}}"
        )
    for cell in t.cells:
        ckey = f"{key}.cells.{cell}"
        if cell not in conns:
            out.append(
                f"{ckey}: unknown connection {cell!r}{did_you_mean(cell, conns)} "
                f"valid: {choices_text(conns)}"
            )
            continue
        s = cell_settings(t, cell)
        where = {
            side: (ckey if side in s.overridden else key)
            for side in (
                "kernel_post",
                "kernel_pre",
                "batch_reduction",
                "delayed",
                "interp_tolerance",
            )
        }
        for side in ("kernel_post", "kernel_pre"):
            kname, kwargs = getattr(s, side), getattr(s, f"{side}_kwargs")
            w = f"{where[side]}.{side}"
            if lookup(out, f"{w}.name", KERNELS, kname) is not None and passes(
                out, f"{w}.kwargs", KERNELS.check_kwargs, kname, kwargs
            ):
                check_positive_kwargs(f"{w}.kwargs", kwargs, out)
        lookup(out, f"{where['batch_reduction']}.batch_reduction", REDUCTIONS, s.batch_reduction)
        check_range(
            out, f"{where['interp_tolerance']}.interp_tolerance", s.interp_tolerance, 0, ">="
        )
        if info is None:
            continue
        for extra, neutral in TRAINER_EXTRAS.items():
            if getattr(s, extra) != neutral and not info.takes_delayed:
                out.append(
                    f"{where[extra]}.{extra}: {t.kind} has no setting {extra!r} "
                    f"(KernelSTDP only); remove it"
                )
        if info.needs_delays and conns[cell].max_delay is None:
            out.append(
                f"{ckey}: {t.kind} needs learned delays: set network.connections.{cell}.max_delay"
            )
        conn_traits = traits_of(out, ckey, CONNECTIONS, conns[cell].kind)
        if conn_traits is not None and not conn_traits.trainable:
            out.append(f"{ckey}: {conns[cell].kind} connections cannot be trained (only dense)")
        if len(out) > 50:
            return


def check_trainers(cfg: StdpRunConfig, out: list[str]) -> None:
    """Every trainer of ``cfg``."""
    for name, trainer in cfg.trainer.items():
        _check_trainer(cfg, name, trainer, out)
