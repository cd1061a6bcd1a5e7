"""Errors that name a user's mistake and its fix; the CLI prints them as one line.

    RepsampleError           anything repsample raises on purpose (exit code 2)
    ├── UsageError           a bad option or input; also a ValueError (exit code 2)
    │   └── UnknownNameError a name not in a registry; also a KeyError
    ├── MissingExtra         an optional dependency is not installed; also an ImportError (2)
    └── EnvironmentProblem   the machine: space, permissions, a damaged cache (exit code 3)

A UsageError about one option names it (``option="per_class"``): from Python the message
reads ``per_class must be at least 1, got 0``, from the command line ``--per-class must be ...``.
Any other option a message names is written ``mention("k_max")``, spelt the same way where the
message is shown: ``str(error)`` has Python's names, ``error.flag`` the command line's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_MARK = "\x00"  # no path, name or text a user gives can hold it
_MENTIONED = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}")


def mention(option: str) -> str:
    """An option named inside a message (``f"needs {mention('total')}"``): shown as ``total``
    from Python and as ``--total`` on the command line."""
    return f"{_MARK}{option}{_MARK}"


def flag_name(option: str) -> str:
    """An option's command-line spelling: ``k_max`` -> ``--k-max``."""
    return "--" + option.replace("_", "-")


class RepsampleError(Exception):
    """A problem the user can fix: bad input, bad option, missing optional part (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str = "") -> None:
        self.template = message  # with mention() marks; str(self) and flag spell them
        super().__init__(_MENTIONED.sub(r"\1", message))

    @property
    def flag(self) -> str:
        """The message as the command line says it: every option named as ``--option-name``."""
        return _MENTIONED.sub(lambda m: flag_name(m[1]), self.template)


class UsageError(RepsampleError, ValueError):
    """A bad option or input. ``option``: the parameter at fault (as in Python), whose name
    starts the message; ``flag`` gives the same message with the command-line spelling."""

    def __init__(self, message: str, option: str | None = None) -> None:
        self.option, self.detail = option, _MENTIONED.sub(r"\1", message)
        super().__init__(f"{mention(option)} {message}" if option else message)


class MissingExtra(RepsampleError, ImportError):
    """An optional dependency that is not installed; the message gives the pip command, and
    what needed it when the caller says."""

    def __init__(self, package: str, extra: str, needed_by: str | None = None) -> None:
        self.package, self.extra = package, extra
        what = f"{needed_by} needs {package}, which" if needed_by else package
        super().__init__(f"{what} is not installed; run: pip install 'repsample[{extra}]'")


class EnvironmentProblem(RepsampleError):
    """The machine, not the user's options: no space, read-only, permission, a damaged cache,
    a file that vanished or changed during the run (exit code 3). The message names the path
    and what to do."""

    exit_code = 3


def os_problem(exc: OSError, what: str, fix: str = "") -> EnvironmentProblem:
    """One line for an OSError met while doing ``what`` (e.g. "writing OUTPUT/x.jpg")."""
    import errno
    import os

    hints = {
        errno.ENOSPC: "free some space or choose another folder",
        errno.EDQUOT: "free some space or choose another folder",
        errno.EROFS: "the file system is read-only; choose a writable folder",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "operation not permitted; choose a folder you can write to",
        errno.ENAMETOOLONG: "a file name is too long for this file system",
        errno.ENOENT: "it vanished during the run; rerun when the files are stable",
    }
    reason = exc.strerror or os.strerror(exc.errno or 0) or str(exc)
    hint = fix or hints.get(exc.errno or 0, "")
    return EnvironmentProblem(f"{what}: {reason}" + (f"; {hint}" if hint else ""))


class UnknownNameError(UsageError, KeyError):
    """A name that is not in a registry, or not among an option's choices; the message lists the
    valid ones. Given ``option`` (the option that was given the name), ``message`` follows it."""

    def __init__(self, kind: str, name: object, choices: Iterable[str], option: str | None = None,
                 message: str | None = None) -> None:
        self.kind, self.name, self.choices = kind, name, list(choices)
        super().__init__(message or f"unknown {kind} {name!r}; choose one of: {', '.join(self.choices)}",
                         option=option)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def missing_extra(package: str, extra: str, needed_by: str | None = None) -> MissingExtra:
    """The error for an optional dependency that is not installed."""
    return MissingExtra(package, extra, needed_by)


def require_torch(needed_by: str, extra: str = "torch") -> None:
    """Raise MissingExtra (one line, exit 2) unless PyTorch can be imported. Only what runs the
    network itself needs it (eager or CUDA embedding, a model's export, a weights file read by
    torch); the default CPU path runs a graph built without it."""
    try:
        import torch  # noqa: F401  (what needs it imports it next anyway)
    except ImportError:
        raise missing_extra("PyTorch", extra, needed_by) from None
