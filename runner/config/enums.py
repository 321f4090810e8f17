"""The enum types of the config schema (:mod:`runner.config.schema`): the closed sets of
values a key accepts (an unknown one fails at composition, naming the valid ones)."""

from __future__ import annotations

from enum import Enum


class DType(Enum):
    float32 = "float32"
    float64 = "float64"


class ProgressMode(Enum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    off = "off"


class Accumulate(Enum):
    sum = "sum"
    mean = "mean"


class InitKind(Enum):
    uniform = "uniform"
    constant = "constant"
    normal = "normal"


class LogLevel(Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class ReadoutKind(Enum):
    max_rate = "max_rate"


class AssignFrom(Enum):
    training = "training"
    frozen = "frozen"


class Holdout(Enum):
    random = "random"
    tail = "tail"


class Direction(Enum):
    maximize = "maximize"
    minimize = "minimize"
