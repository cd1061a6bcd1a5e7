"""Look-alikes are not duplicates: distinct Fashion-MNIST items that share a pHash stay apart.

These sneakers and boots are different photos with near-identical silhouettes on black; the
embedding and pHash alone called them duplicates (and "leaks" across splits). A real re-encode of
one of them must still be found.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from PIL import Image

from conftest import EXAMPLE
from repsample.checking import check

LOOKALIKES = [
    "test/Ankle boot/test_05794.png", "test/Ankle boot/test_04474.png",
    "test/Sneaker/test_00944.png", "test/Sneaker/test_00104.png", "test/Sneaker/test_07731.png",
    "test/Sneaker/test_08604.png", "test/Sneaker/test_07471.png", "train/Sneaker/train_09714.png",
    "val/T-shirt top/val_00143.png", "test/T-shirt top/test_07161.png",
]


def test_lookalikes_are_not_flagged_but_a_reencode_is(tmp_path: Path, cache_path: Path) -> None:
    root = tmp_path / "data"
    for rel in LOOKALIKES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE / rel, root / rel)
    Image.open(EXAMPLE / LOOKALIKES[2]).convert("RGB").save(
        root / "test/Sneaker/z_reencoded.jpg", quality=60)

    result = check(root, tmp_path / "out", cache=cache_path, extensions=(".png", ".jpg"))

    with open(result.csv_path, newline="", encoding="utf-8") as fh:
        found = {(r["kind"], r["path"], r["other"]) for r in csv.DictReader(fh)}
    assert found == {("duplicate", "test/Sneaker/z_reencoded.jpg", LOOKALIKES[2])}
