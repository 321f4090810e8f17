"""User errors and their one-line descriptions.

:class:`ConfigError` is what :func:`runner.config.validate.validate_config` raises; it subclasses
Hydra's ``CompactHydraException`` so that even without the CLI's handler Hydra prints it without a
traceback. :func:`describe_error` turns Hydra's and OmegaConf's composition errors (several lines,
often split between an exception and its ``__cause__``) into one line that names the key, the bad
value and the valid choices, with a "did you mean" where one is close.
"""

from __future__ import annotations

import dataclasses
import re

from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import OmegaConfBaseException

from runner.registry import RegistryError, choices_text, did_you_mean


class ConfigError(CompactHydraException):
    """One or more problems in a composed config; each line names the key and what is allowed.

    ``needs_data`` holds the lines (also in ``problems``) that only say that data this machine
    lacks is needed (a folder without the MNIST files): ``validate`` lists those apart.
    """

    def __init__(self, problems: list[str] | str, *, needs_data: list[str] | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.needs_data = list(needs_data or [])
        super().__init__("\n".join(self.problems))

    @property
    def only_needs_data(self) -> bool:
        """True when every problem is data that is absent here (nothing wrong with the config)."""
        return bool(self.needs_data) and set(self.problems) <= set(self.needs_data)


class DeviceError(CompactHydraException):
    """A device that is not available here (e.g. ``device=cuda`` without CUDA)."""


class UserAbort(Exception):
    """A failure already said in one line (``message``), with the exit code the CLI ends with.

    An ordinary exception: a single run's task hands it to the CLI past Hydra
    (:func:`runner.failures.hand_over`), so Hydra never reprints it.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Interrupted(BaseException):  # noqa: N818  (like KeyboardInterrupt, not an error)
    """A run stopped by SIGINT/SIGTERM after saving its checkpoint (``code`` 128 + signal).

    Like ``KeyboardInterrupt`` it is not an ``Exception``, and for the same reason: Hydra's
    ``run_job`` and its launchers catch ``Exception`` only, so it ends a sweep instead of
    being recorded as one failed job while the next ones start.
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        """Pickled whole (a group run in a worker process hands it back to the launcher)."""
        return type(self), (self.message, self.code)


class OverrideError(CompactHydraException):
    """An override Hydra rejects with a plain ``ValueError``/``TypeError`` (``device=1``,
    ``experiment=[1,2]`` for a config group); :func:`runner.config.compose.compose` wraps them,
    the one place we call Hydra's Compose API, and ``__cause__`` holds Hydra's own error."""


#: Exceptions that are the user's to fix: the CLI prints them as ``error: ...`` and exits 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DeviceError,
    RegistryError,
    OverrideError,
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    OmegaConfBaseException,
)


def is_user_error(exc: BaseException) -> bool:
    """True for config, override and registry errors (not for bugs or runtime failures)."""
    return isinstance(exc, USER_ERRORS)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


#: Hydra plugin options (group, option) that an extra of this package installs.
PLUGIN_EXTRAS = {
    ("hydra/sweeper", "optuna"): "optuna",
    ("hydra/launcher", "joblib"): "joblib",
    ("hydra/launcher", "submitit_local"): "slurm",
    ("hydra/launcher", "submitit_slurm"): "slurm",
    ("hydra/launcher", "ray"): "ray",
}


def _missing_config(exc: MissingConfigException) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    options = list(exc.options or [])
    if not group or not options:
        return _first_line(str(exc))
    msg = f"{group}: unknown option {option!r}{did_you_mean(option, options)} valid: "
    msg += choices_text(options)
    if group == "device" and option.startswith("cuda:"):
        msg += f" (for one GPU use device=cuda device.name={option})"
    extra = PLUGIN_EXTRAS.get((group, option))
    if extra:
        msg += f" (its plugin is not installed: pip install 'stdp-run[{extra}]')"
    return msg


_NOT_IN = re.compile(r"Key '([^']*)' (?:not in '[^']*'|is not in struct)")
_MERGING = re.compile(r"Error merging override \+{0,2}([^=~]+)=")
_ENUM = re.compile(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]")


def _omegaconf(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or ""
    text = _first_line(getattr(exc, "msg", None) or str(exc))
    m = _NOT_IN.match(text)
    if m:
        name = m.group(1)
        obj = getattr(exc, "object_type", None)
        if obj is not None and dataclasses.is_dataclass(obj):
            valid = [f.name for f in dataclasses.fields(obj)]
            return f"{key}: unknown key {name!r}{did_you_mean(name, valid)} valid: " + (
                choices_text(valid)
            )
        parent = getattr(exc, "parent_node", None)
        known = [str(k) for k in parent] if parent is not None else []
        hint = did_you_mean(name, known)
        return f"{key}: unknown key {name!r}{hint} (to add a new entry write +{key}=VALUE)"
    m = _ENUM.match(text)
    if m:
        value, valid = m.group(1), [v.strip() for v in m.group(2).split(",")]
        return f"{key}: invalid value {value!r}{did_you_mean(value, valid)} valid: " + (
            choices_text(valid)
        )
    return f"{key}: {text}" if key else text


def describe_error(exc: BaseException) -> str:
    """One line (or one line per problem for :class:`ConfigError`) describing a user error."""
    if isinstance(exc, ConfigError):
        return "\n".join(exc.problems)
    if isinstance(exc, MissingConfigException):
        return _missing_config(exc)
    if isinstance(exc, OverrideError):
        return _override(exc)
    cause = exc.__cause__
    text = _first_line(str(exc))
    if isinstance(exc, HydraException) and isinstance(cause, OmegaConfBaseException):
        m = _MERGING.match(text)
        if m and _first_line(str(cause)).startswith(
            "Invalid type assigned: dict is not a subclass"
        ):
            return (
                f"{m.group(1)}: a new entry of this kind cannot be added on the command line "
                "(an OmegaConf limitation); add it in a YAML config such as an experiment"
            )
        return _omegaconf(cause)
    if isinstance(exc, OmegaConfBaseException):
        return _omegaconf(exc)
    if isinstance(exc, ConfigCompositionException) and text.startswith("Ambiguous value"):
        return text + " (to sweep over it, add -m; to pass a list, write key=[a,b])"
    if cause is not None and _first_line(str(cause)):
        return f"{text}: {_first_line(str(cause))}"
    return text


def _override(exc: OverrideError) -> str:
    """Hydra's own error (the cause), read as before it was wrapped."""
    cause = exc.__cause__
    if cause is None:
        return _first_line(str(exc))
    text = _first_line(str(cause))
    if text.startswith("Config group override must be"):
        return (
            f"override: a config group takes the name of one of its options, not a value "
            f"({text.split('. ', 1)[-1]}); see stdp-run list GROUP"
        )
    return describe_error(cause)
