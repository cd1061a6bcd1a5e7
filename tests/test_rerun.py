"""A rerun on unchanged data redoes nothing it can prove it already did (real select)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import FAST_MODEL, TreeFactory
from repsample import select

THUMBS = Path(".report") / "thumbs"


def test_a_rerun_links_the_reports_thumbnails_instead_of_decoding_again(
        make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"a": 12, "b": 9})
    out = tmp_path / "out"
    select(root, out, per_class=4, k_min=2, k_max=3, cache=cache_path, **FAST_MODEL)
    inodes = {p.name: p.stat().st_ino for p in (out / THUMBS).iterdir()}
    assert len(inodes) >= 8

    select(root, out, per_class=4, k_min=2, k_max=3, cache=cache_path, overwrite=True, **FAST_MODEL)
    again = {p.name: p for p in (out / THUMBS).iterdir()}
    assert {name: p.stat().st_ino for name, p in again.items()} == inodes  # the same files, linked
    assert all(os.stat(p).st_nlink == 1 for p in again.values())  # and the old result is gone
