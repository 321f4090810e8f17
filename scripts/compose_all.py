"""Compose every shipped experiment and sweep, search and debug preset; print the resolved
configs as one JSON object, so that a change to ``conf/`` can be checked for what it composes to:

    python scripts/compose_all.py --conf /path/to/checkout-a/conf > a.json
    python scripts/compose_all.py --conf /path/to/checkout-b/conf > b.json
    python scripts/compose_all.py --compare a.json b.json   # exit 1 and the differing keys

The ``hydra`` node and interpolations that read the clock are left out (they differ per call).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def composed(conf: Path) -> dict[str, Any]:
    """``{option: resolved config}`` for every experiment, sweep, search and debug preset of
    the config folder ``conf`` (read as a folder: an editable install's ``runner.conf`` may
    point at another checkout)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    import runner.config.schema  # noqa: F401  (registers the schema)

    out: dict[str, Any] = {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf.resolve()), version_base="1.3"):
        for group in ("experiment", "sweep", "hparams_search", "debug"):
            for path in sorted((conf / group).glob("*.yaml")):
                cfg = compose("config", overrides=[f"{group}={path.stem}"])
                key = path.stem if group == "experiment" else f"{group}={path.stem}"
                out[key] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return out


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Keys whose values differ between two nested containers."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", type=Path, default=ROOT / "conf", help="the config folder")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    opts = parser.parse_args()
    if opts.compare:
        a, b = (json.loads(p.read_text()) for p in opts.compare)
        diff = differences(a, b)
        for line in diff:
            print(line)
        print(f"{len(a)} vs {len(b)} experiments, {len(diff)} difference(s)")
        return 1 if diff else 0
    json.dump(composed(opts.conf), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
