"""Common command-line slips, caught before Hydra's parser turns them into raw errors.

``stdp-run ARGS`` hands everything that is not a subcommand to Hydra, whose argparse and ANTLR
messages do not say what the user meant. :func:`find_slip` reads the argv first and returns one
line with the likely intent, or None when the argv looks right:

- a bare word: ``lsit`` -> ``list``; ``delay_adjusted`` -> ``experiment=delay_adjusted``;
- a ``--key`` that is no Hydra flag (``--experiment x`` would be taken as an abbreviation of
  ``--experimental-rerun``) -> ``key=x``;
- a sweep split by a space (``seed=0, 1``) -> ``seed=0,1``.

:func:`hoist_flags` then moves Hydra's flags before the overrides: Hydra 1.3's argparse rejects
``stdp-run a=1 -m b=2`` (hydra #3053), an order users write all the time.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from importlib import resources

from runner.registry import choices_text, did_you_mean

#: Hydra's flags (hydra/_internal/utils.py, get_args_parser in 1.3) -> how many values follow:
#: 0 none, 1 exactly one, "?" one unless the next token is an override or a flag.
HYDRA_FLAGS: dict[str, int | str] = {
    **dict.fromkeys(("--help", "-h", "--hydra-help", "--version", "--resolve"), 0),
    **dict.fromkeys(("--run", "-r", "--multirun", "-m", "--shell-completion", "-sc"), 0),
    **dict.fromkeys(("--cfg", "-c", "--package", "-p", "--config-path", "-cp"), 1),
    **dict.fromkeys(("--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun"), 1),
    **dict.fromkeys(("--info", "-i"), "?"),
}


def config_groups() -> dict[str, list[str]]:
    """The packaged config groups and their options, read from the files (no Hydra start-up)."""
    root = resources.files("runner.conf")
    groups: dict[str, list[str]] = {}
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            names = [f.name[:-5] for f in entry.iterdir() if f.name.endswith(".yaml")]
            if names:
                groups[entry.name] = sorted(names)
    return groups


def top_keys() -> list[str]:
    """The keys a top-level override can name: the schema's fields and the config groups."""
    from runner.config.schema import StdpRunConfig

    return sorted({f.name for f in dataclasses.fields(StdpRunConfig)} | set(config_groups()))


def _is_override(token: str) -> bool:
    return "=" in token or token.startswith("~")


def _flag_slip(token: str, value: str | None) -> str:
    name, _, inline = token.lstrip("-").partition("=")
    keys = top_keys()
    root = name.split(".", 1)[0].split("/", 1)[0]
    if root in keys:
        given = inline or value or "VALUE"
        return (
            f"{token.split('=', 1)[0]} is not an option: overrides are written KEY=VALUE "
            f"without dashes; did you mean {name}={given}?"
        )
    flag = token.split("=", 1)[0]
    return (
        f"unknown option {flag!r}{did_you_mean(flag, HYDRA_FLAGS)} valid: "
        f"{choices_text(sorted(HYDRA_FLAGS))} (and overrides KEY=VALUE)"
    )


def _word_slip(word: str, commands: Sequence[str], first: bool) -> str:
    if first:
        close = did_you_mean(word, commands)
        if close:
            return f"unknown command {word!r}{close} commands: {choices_text(commands)}"
    groups = config_groups()
    for group in sorted(groups, key=lambda g: g != "experiment"):  # experiments first
        if word in groups[group]:
            return (
                f"{word!r} is not a command or an override; did you mean {group}={word}? "
                "(overrides are written KEY=VALUE)"
            )
    near = difflib.get_close_matches(word, groups.get("experiment", []), n=1)
    if near:
        return (
            f"{word!r} is not a command or an override; did you mean experiment={near[0]}? "
            "(overrides are written KEY=VALUE)"
        )
    return (
        f"{word!r} is neither a command ({choices_text(commands)}) nor an override KEY=VALUE"
        f"{did_you_mean(word, commands)}"
    )


def _flag_width(tokens: Sequence[str], i: int) -> int:
    """How many tokens the known flag at ``tokens[i]`` spans (itself and its value)."""
    token = tokens[i]
    takes = HYDRA_FLAGS.get(token.split("=", 1)[0], 0)
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if "=" in token or nxt is None:
        return 1
    if takes == 1 or (takes == "?" and not nxt.startswith("-") and "=" not in nxt):
        return 2
    return 1


def hoist_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` with Hydra's flags (and their values) first, the overrides after, each in order."""
    flags: list[str] = []
    rest: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        if tokens[i].split("=", 1)[0] in HYDRA_FLAGS:
            width = _flag_width(tokens, i)
            flags += tokens[i : i + width]
            i += width
        else:
            rest.append(tokens[i])
            i += 1
    return [*flags, *rest]


def find_slip(argv: Sequence[str], commands: Sequence[str]) -> str | None:
    """One line saying what ``stdp-run ARGV`` probably meant, or None when it looks right.

    Args:
        argv: the arguments handed to the implicit ``run`` command.
        commands: the subcommand names (for "did you mean" on a mistyped one).
    """
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.startswith("-") and not token.startswith("--=") and len(token) > 1:
            if token.split("=", 1)[0] not in HYDRA_FLAGS:
                value = nxt if nxt is not None and not nxt.startswith("-") else None
                return _flag_slip(token, value if value and "=" not in value else None)
            i += _flag_width(tokens, i)
            continue
        if _is_override(token):
            if token.endswith(","):
                rest = []
                j = i + 1
                while (
                    j < len(tokens)
                    and not _is_override(tokens[j])
                    and not tokens[j].startswith("-")
                ):
                    rest.append(tokens[j])
                    j += 1
                joined = token + ",".join(r.strip(",") for r in rest)
                if rest:
                    return (
                        f"the sweep {token + ' ' + ' '.join(rest)!r} has a space after a comma; "
                        f"write {joined} (no spaces), or quote the whole override"
                    )
                return f"the sweep {token!r} ends with a comma; write {token.rstrip(',')} or add a value"
            i += 1
            continue
        return _word_slip(token, commands, first=i == 0)
    return None
