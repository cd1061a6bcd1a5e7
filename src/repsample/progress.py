"""Progress reporting as a parameter: the library reports, the CLI decides how to show it."""

from __future__ import annotations

from typing import Protocol


class StageProgress(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Opens one counter per stage; a stage may be opened again for the next group."""

    def stage(self, name: str, total: int) -> StageProgress: ...


class _SilentStage:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class SilentProgress:
    """The default: report nothing."""

    def stage(self, name: str, total: int) -> StageProgress:
        return _SilentStage()
