"""Progress reporting as a parameter: the library reports, the CLI decides how to show it; and
where a run's seconds go (its clock), and the cores it may use.

The clock: the run-wide stages (start, scan, model, duplicate check, quality, writing, report)
beside each group's own (hash, embed, select, export), so that run.json's ``seconds`` and its
groups' together account for the whole run, from repsample's first import. The run in progress has one
clock (a context variable, so that a library caller's runs, in threads or in turn, each keep their
own); ``timed`` adds to it and costs nothing without one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


def cpu_threads() -> int:
    """The cores this process may run on: what a run's parallel work (an ONNX Runtime session,
    the k sweep) should use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class StageProgress(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Opens one counter per stage; a stage may be opened again for the next group.

    expect(name, total) announces a stage's whole total before its first group opens it, so the
    counter shows the real total (and a true ETA) from the start instead of growing group by group.
    """

    def stage(self, name: str, total: int) -> StageProgress: ...

    def expect(self, name: str, total: int) -> None: ...


class _SilentStage:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class SilentProgress:
    """The default: report nothing."""

    def stage(self, name: str, total: int) -> StageProgress:
        return _SilentStage()

    def expect(self, name: str, total: int) -> None:
        pass


# -- the run's clock ----------------------------------------------------------------------------

UNTIMED = "other"  # what no stage timed: the gaps between them


class RunClock:
    """Seconds per run-wide stage, from the run's start (``startup``: seconds it already ran)."""

    def __init__(self, startup: float = 0.0) -> None:
        self.started = time.perf_counter() - startup
        self.seconds: dict[str, float] = {"start": startup} if startup else {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def table(self, group_seconds: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """The run-wide stages so far and, as ``other``, the rest of the time since the run
        started that neither they nor the groups' stages (per group, by stage) account for."""
        counted = sum(self.seconds.values()) + sum(sum(g.values()) for g in group_seconds.values())
        elapsed = time.perf_counter() - self.started
        return {**{k: round(v, 4) for k, v in self.seconds.items()},
                UNTIMED: round(max(0.0, elapsed - counted), 4)}


_CURRENT: ContextVar[RunClock | None] = ContextVar("repsample_run_clock", default=None)


@contextmanager
def run_clock(startup: float = 0.0) -> Iterator[RunClock]:
    """The clock of the run in progress: the one a caller opened (the command line opens it with
    the seconds since repsample's first import), else a new one for this run."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    clock = RunClock(startup)
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


def current_clock() -> RunClock:
    """The clock of the run in progress; outside any, a new one (that times from now)."""
    return _CURRENT.get() or RunClock()


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Time the block into the current run's ``name`` (added up when it runs more than once)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if (clock := _CURRENT.get()) is not None:
            clock.add(name, time.perf_counter() - t0)


def since_import() -> float:
    """Seconds since repsample was first imported in this process: the imports and the options,
    what a command pays before it starts to work. Not the process's start, which can be long
    before (a shell that execs its last command, ``bash -c "pip install . && repsample ..."``,
    is one process); the interpreter's own start, tens of milliseconds, is left out with it."""
    # The package is loaded whenever this module is: read its mark without an import (which
    # would run back up the layers).
    started = getattr(sys.modules.get("repsample"), "_FIRST_IMPORT", None)
    return 0.0 if started is None else max(0.0, time.perf_counter() - started)
