"""Compose every shipped experiment (and each sweep preset's base) and print the resolved
configs as one JSON object, so that a change to ``conf/`` can be checked for what it composes to:

    PYTHONPATH=/path/to/checkout-a python scripts/compose_all.py > a.json
    PYTHONPATH=/path/to/checkout-b python scripts/compose_all.py > b.json
    python scripts/compose_all.py --compare a.json b.json   # exit 1 and the differing keys

The ``hydra`` node and interpolations that read the clock are left out (they differ per call).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def composed() -> dict[str, Any]:
    """``{experiment name: resolved config}`` for every option of the experiment group."""
    from omegaconf import OmegaConf

    from runner.config.compose import compose, group_options

    out: dict[str, Any] = {}
    for name in group_options("experiment"):
        cfg = compose([f"experiment={name}"])
        out[name] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return out


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Keys whose values differ between two nested containers."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    opts = parser.parse_args()
    if opts.compare:
        a, b = (json.loads(p.read_text()) for p in opts.compare)
        diff = differences(a, b)
        for line in diff:
            print(line)
        print(f"{len(a)} vs {len(b)} experiments, {len(diff)} difference(s)")
        return 1 if diff else 0
    json.dump(composed(), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
