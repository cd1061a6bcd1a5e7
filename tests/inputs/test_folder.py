"""Scan: groups at any depth, sorted, extensions in any case, explicit groups, symlink loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import make_image
from repsample.errors import RepsampleError
from repsample.inputs.folder import normalize_extensions, scan


def test_groups_at_any_depth_sorted_with_mixed_case_extensions(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image(root / "train" / "New Castle Disease" / "b.JPG", 1)
    make_image(root / "train" / "New Castle Disease" / "a.jpeg", 2)
    make_image(root / "train" / "Healthy" / "x.Png", 3)
    make_image(root / "deep" / "er" / "still" / "y.png", 4)
    make_image(root / "top.jpg", 5)
    (root / "train" / "Healthy" / "notes.txt").write_text("not an image")
    (root / "empty" / "nothing").mkdir(parents=True)

    groups = scan(root)

    assert [g.name for g in groups] == [".", "deep/er/still", "train/Healthy",
                                        "train/New Castle Disease"]
    ncd = groups[-1]
    assert [f.rel for f in ncd.files] == ["train/New Castle Disease/a.jpeg",
                                          "train/New Castle Disease/b.JPG"]
    assert all(f.path.is_absolute() and f.size > 0 for f in ncd.files)


def test_extensions_option_and_explicit_groups(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image(root / "a" / "1.bmp", 1, fmt="BMP")
    make_image(root / "b" / "2.jpg", 2)
    assert [g.name for g in scan(root, ["BMP"])] == ["a"]
    assert [g.name for g in scan(root, groups=["b/"])] == ["b"]
    with pytest.raises(RepsampleError, match=r"no images in group\(s\) 'c'.*groups found: a, b|b"):
        scan(root, [".jpg", ".bmp"], groups=["c"])
    assert normalize_extensions(["JPG", ".Png", ".jpg"]) == (".jpg", ".png")


def test_no_images_names_root_and_extensions(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("hi")
    with pytest.raises(RepsampleError) as err:
        scan(tmp_path)
    assert str(tmp_path) in str(err.value) and ".jpg .jpeg .png" in str(err.value)


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image(root / "cls" / "a.jpg", 1)
    os.symlink(root, root / "cls" / "loop")  # cls/loop -> data: a cycle
    os.symlink(root / "missing.jpg", root / "cls" / "dangling.jpg")
    groups = scan(root)
    assert [g.name for g in groups] == ["cls"]
    assert [f.rel for f in groups[0].files] == ["cls/a.jpg"]
