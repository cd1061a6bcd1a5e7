"""Errors that name a user's mistake and its fix; the CLI prints them as one line."""

from __future__ import annotations

from collections.abc import Iterable


class RepsampleError(Exception):
    """A problem the user can fix: bad input, bad option, missing optional part (exit code 2)."""

    exit_code = 2


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
