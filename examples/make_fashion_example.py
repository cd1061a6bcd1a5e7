"""Rebuild examples/fashion from Debian's dataset-fashion-mnist (MIT licensed, Zalando Research).

    apt-get install dataset-fashion-mnist && python examples/make_fashion_example.py

Writes split/class folders of PNGs: train from the official training images, val and test from
the official test images, a fixed, seeded draw so the example never changes.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SOURCE = Path("/usr/share/datasets/fashion-mnist")
CLASSES = {0: "T-shirt top", 5: "Sandal", 7: "Sneaker", 8: "Bag", 9: "Ankle boot"}
COUNTS = {"train": 120, "val": 30, "test": 30}


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    train = read_idx(SOURCE / "train-images-idx3-ubyte.gz"), read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    test = read_idx(SOURCE / "t10k-images-idx3-ubyte.gz"), read_idx(SOURCE / "t10k-labels-idx1-ubyte.gz")
    for label, name in CLASSES.items():
        train_idx = rng.permutation(np.flatnonzero(train[1] == label))[: COUNTS["train"]]
        test_idx = rng.permutation(np.flatnonzero(test[1] == label))
        picks = {
            "train": (train[0], train_idx),
            "val": (test[0], test_idx[: COUNTS["val"]]),
            "test": (test[0], test_idx[COUNTS["val"] : COUNTS["val"] + COUNTS["test"]]),
        }
        for split, (images, idx) in picks.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in sorted(idx):
                Image.fromarray(images[i], "L").save(folder / f"{split}_{i:05d}.png", optimize=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "fashion")
