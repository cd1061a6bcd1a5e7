"""Progress as a user sees it: every bar's whole total is known before it moves, and every bar
that opens reaches its end (real select on a real tree, a recording Progress)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FAST_MODEL, TreeFactory
from repsample import select


class Recorder:
    """Implements repsample.progress.Progress and remembers what was announced and done."""

    def __init__(self) -> None:
        self.expected: dict[str, int] = {}
        self.opened: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.total_when_first_opened: dict[str, int] = {}

    def expect(self, name: str, total: int) -> None:
        self.expected[name] = total

    def stage(self, name: str, total: int) -> Recorder.Stage:
        self.opened[name] = self.opened.get(name, 0) + total
        self.total_when_first_opened.setdefault(name, max(self.expected.get(name, 0), total))
        return Recorder.Stage(self, name)

    class Stage:
        def __init__(self, recorder: Recorder, name: str) -> None:
            self.recorder, self.name = recorder, name

        def advance(self, n: int = 1) -> None:
            self.recorder.done[self.name] = self.recorder.done.get(self.name, 0) + n

        def close(self) -> None:
            pass


@pytest.mark.parametrize("mode", ["copy", "none"])
def test_bars_know_their_total_and_finish(make_tree: TreeFactory, tmp_path: Path, cache_path: Path,
                                          mode: str) -> None:
    root = make_tree({"train/a": 9, "train/b": 7, "test/a": 5})
    progress = Recorder()
    select(root, tmp_path / "out", per_class=4, k_min=2, k_max=3, cache=cache_path, mode=mode,
           report=False, progress=progress, **FAST_MODEL)
    final = {name: max(progress.expected.get(name, 0), opened)
             for name, opened in progress.opened.items()}
    for name in ("hash", "embed"):  # three groups: the bar must not grow group by group
        assert progress.total_when_first_opened[name] == final[name] == 21, name
    for name, total in final.items():  # no bar left short of its end
        assert progress.done.get(name, 0) == total, (name, progress.done, final)
    assert (final.get("export", 0) > 0) == (mode == "copy")
