"""Parameter constraints, in the style of scikit-learn's: each option declares what it accepts
once; validation and the command line's choices both read that declaration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Protocol

from repsample.errors import UnknownNameError, UsageError


class Constraint(Protocol):
    def problem(self, value: Any) -> str | None:
        """What is wrong with value, worded to follow the option's name; None when it is fine."""


@dataclass(frozen=True)
class Interval:
    """A number between low and high; closed says which ends are allowed."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both, left, right, neither
    optional: bool = False  # None allowed

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
            return f"must be a number, got {value!r}"
        value = float(value) if not isinstance(value, Integral) else int(value)
        closed_low, closed_high = self.closed in ("both", "left"), self.closed in ("both", "right")
        low_ok = self.low is None or value > self.low or (value == self.low and closed_low)
        high_ok = self.high is None or value < self.high or (value == self.high and closed_high)
        if low_ok and high_ok:
            return None
        return f"must be {self._range()}, got {value}"

    def _range(self, symbols: bool = False) -> str:
        """``at least 1`` (or ``>= 1``), ``in [0, 1)``."""
        closed_low, closed_high = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.high is None:
            words = ("at least", "more than") if not symbols else (">=", ">")
            return f"{words[0] if closed_low else words[1]} {_number(self.low)}"
        left, right = "[" if closed_low else "(", "]" if closed_high else ")"
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"

    def describe(self) -> str:
        """What it accepts, for a listing: ``a number in [0, 1]``."""
        return f"a number {self._range(symbols=True)}"


def _number(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x:g}"


class Integer(Interval):
    """An Interval of whole numbers (numpy's too): a count, a size or a seed."""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, Integral) and not isinstance(value, bool):
            return super().problem(int(value))
        if value is None:
            return super().problem(value)
        return f"must be an integer, got {value!r}"

    def describe(self) -> str:
        return f"an integer {self._range(symbols=True)}"


@dataclass(frozen=True)
class OneOf:
    """A name from a list that may grow at run time (a registry); read only when needed, so
    declaring it imports nothing."""

    names: Callable[[], Sequence[str]]

    def problem(self, value: Any) -> str | None:
        names = self.names()
        if value in names:
            return None
        return f"{str(value)!r} is unknown; choose one of: {', '.join(names)}"

    def check(self, value: Any, option: str) -> None:
        """Raise for a value validate refuses: a name not among names() is an UnknownNameError."""
        problem = self.problem(value)
        if problem is not None:
            raise UnknownNameError(option, value, self.names(), option=option, message=problem)


@dataclass(frozen=True)
class Device:
    """auto, cpu, cuda or cuda:N."""

    choices = ("auto", "cpu", "cuda")

    def problem(self, value: Any) -> str | None:
        text = str(value)
        if text in self.choices or (text.startswith("cuda:") and text[5:].isdigit()):
            return None
        return f"{text!r} is not a device; choose auto, cpu, cuda or cuda:N"


@dataclass(frozen=True)
class ExistingFile:
    """A path to an existing file, or one of some words (``keep``: none; ``weights``: default...)."""

    words: tuple[str, ...] = ()
    optional: bool = False
    hint: str = ""

    def problem(self, value: Any) -> str | None:
        if (value is None and self.optional) or value in self.words:
            return None
        if Path(value).is_file():
            return None
        allowed = " or ".join([*(repr(w) for w in self.words), "an existing file"])
        return f"{str(value)!r} is not {allowed}" + (f"; {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class Tunable:
    """A parameter of a strategy that a user may set by name (``SelectConfig.strategy_params``,
    ``--strategy-params NAME=VALUE``): its default, what it accepts and what it does. Declared
    once; the selector's ``__init__`` default and ``_parameter_constraints`` read it."""

    name: str
    default: Any
    constraint: Constraint
    help: str

    def parse(self, text: str) -> Any:
        """A value typed as text, read as the default's type (int, float); text that does not
        read as one is returned as it is, for the constraint to refuse with what it accepts."""
        kind = type(self.default)
        if kind not in (int, float):
            return text
        try:
            return kind(text)
        except ValueError:
            return text

    def describe(self) -> str:
        """One line for a listing: ``name=default  what it accepts: what it does``."""
        accepts = getattr(self.constraint, "describe", lambda: "")()
        return f"{self.name}={self.default}  " + (f"{accepts}: " if accepts else "") + self.help


def check_choice(option: str, value: Any, names: Sequence[str]) -> None:
    """Raise UnknownNameError unless value is one of names (for checks outside SelectConfig)."""
    OneOf(lambda: names).check(value, option)


def validate(values: dict[str, Any], constraints: dict[str, Constraint]) -> None:
    """Raise UsageError for the first value its constraint refuses, naming the option (an
    UnknownNameError for a name that is not among a OneOf's)."""
    for name, constraint in constraints.items():
        if isinstance(constraint, OneOf):
            constraint.check(values[name], name)
            continue
        problem = constraint.problem(values[name])
        if problem is not None:
            raise UsageError(problem, option=name)
