"""Errors that name a user's mistake and its fix; the CLI prints them as one line."""

from __future__ import annotations

from collections.abc import Iterable


class RepsampleError(Exception):
    """A problem the user can fix: bad input, bad option, missing optional part."""


class UnknownNameError(RepsampleError, KeyError):
    """A name that is not in a registry; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]) -> None:
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def missing_extra(package: str, extra: str) -> RepsampleError:
    """The error for an optional dependency that is not installed."""
    return RepsampleError(
        f"{package} is not installed; run: pip install 'repsample[{extra}]'"
    )
