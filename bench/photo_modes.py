"""Colour photos whose modes are known, for bench/quality.py: random crops of Debian's photographs.

Every packaged photograph (``lomiri-wallpapers-16.04``'s and ``mate-backgrounds``' nature set:
27, drawings and abstract art left out) is one mode. They are dealt at random (seeded) into
``CLASSES`` class folders; inside a class, crop counts fall geometrically from ``head`` for the
first photograph to ``tail`` for the last, a long tail of common and rare sources. Each crop is a
square at a random position and scale, resized to ``size`` px and saved as JPEG; the test split
holds a quarter as many crops again (at least 2) of the same photographs. The source of a crop is
in its name (``s<source>_<n>.jpg``) and ``sources.json`` lists them.

    apt-get install -y mate-backgrounds lomiri-wallpapers-16.04
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PHOTO_FOLDERS = (Path("/usr/share/backgrounds"), Path("/usr/share/backgrounds/mate/nature"))
CLASSES = 3


def photographs() -> list[Path]:
    """The packaged photographs in a fixed order (only JPEGs: the PNGs are drawings)."""
    photos = [p for folder in PHOTO_FOLDERS for p in sorted(folder.glob("*.jpg"))]
    if len(photos) < 2 * CLASSES:
        sys.exit(f"{len(photos)} photographs under {PHOTO_FOLDERS[0]}: "
                 "apt-get install -y mate-backgrounds lomiri-wallpapers-16.04")
    return photos


def long_tail(n: int, head: int, tail: int) -> list[int]:
    """n counts falling geometrically from head to tail."""
    return [round(head * (tail / head) ** (i / max(n - 1, 1))) for i in range(n)]


def write_photos(data: Path, head: int = 300, tail: int = 5, size: int = 224, seed: int = 0) -> None:
    """ROOT/photos/{train,test}/class_<c>/s<source>_<n>.jpg; a finished tree is left as it is."""
    photos = photographs()
    marker = data / "complete.json"
    spec = {"photos": [str(p) for p in photos], "classes": CLASSES, "head": head, "tail": tail,
            "size": size, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return
    rng = random.Random(seed)
    order = rng.sample(range(len(photos)), len(photos))
    listing = []
    for c in range(CLASSES):
        mine = order[c::CLASSES]
        for source, n in zip(mine, long_tail(len(mine), head, tail), strict=True):
            with Image.open(photos[source]) as im:
                im.draft("RGB", (5 * size, 5 * size))  # the smallest crop (1/5 of a side) keeps size px
                img = ImageOps.exif_transpose(im).convert("RGB")
            for split, count in (("train", n), ("test", max(2, round(n / 4)))):
                folder = data / split / f"class_{c}"
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(count):
                    crop(img, size, rng).save(folder / f"s{source:02d}_{i:04d}.jpg", quality=90)
            listing.append({"source": source, "photo": str(photos[source]), "class": c, "train": n})
    (data / "sources.json").write_text(json.dumps(listing, indent=1))
    marker.write_text(json.dumps(spec))


def crop(img: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A square of 20-80 % of the shorter side, anywhere in the photograph."""
    side = int(min(img.size) * rng.uniform(0.2, 0.8))
    x, y = rng.randint(0, img.width - side), rng.randint(0, img.height - side)
    return img.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BILINEAR)


def list_photos(data: Path, split: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Files of a split in sorted order, their class index and their source photograph."""
    paths: list[Path] = []
    labels: list[int] = []
    for c in range(CLASSES):
        files = sorted((data / split / f"class_{c}").glob("*.jpg"))
        paths += files
        labels += [c] * len(files)
    sources = [int(p.stem.split("_")[0][1:]) for p in paths]  # s<source>_<n>
    return paths, np.asarray(labels), np.asarray(sources)
