"""Progress reporting as a parameter: the library reports, the CLI decides how to show it."""

from __future__ import annotations

from typing import Protocol


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
