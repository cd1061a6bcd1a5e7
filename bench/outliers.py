"""Outlier bench: which score finds the images that do not belong in a class folder?

Real images: Fashion-MNIST (Debian's dataset-fashion-mnist), ``--per-class`` training images of
each of ``--classes`` written as class folders of PNGs under --root (seeded, once), each folder
contaminated with planted outliers:

- ``cross``: ``--cross`` of the folder's size (2 %), images of the other nine classes;
- ``broken``: ``--broken`` (1 %), corrupted or blank-ish images made from the folder's own class:
  near-blank (one grey level and faint noise), pure noise, half the image overwritten by noise,
  rows torn sideways.

Every image is embedded with the real default model (efficientnet-lite0) through
``repsample.embed_images`` and its SQLite cache under --root, so a rerun embeds nothing. Each score
in ``repsample.hygiene.outliers.OUTLIER_SCORERS`` ranks each folder's unit-length vectors, as repsample
scores them (the folders are one split: ``knn-cross`` compares each folder with the other four);
so do a few variants: the same on the raw vectors (``-raw``), the mean distance to
the 20 nearest (1 / typicality), the nearest neighbour's distance alone (uniqueness), the
distance to the KMeans centre (k by silhouette) that repsample's selection uses, and the
cross-group ratio alone or over other neighbour counts (``across``). The top ``--top``
(3 %) of each folder are called outliers. Printed: precision (planted among those
called) and recall (planted called, of each kind and all; and of the other-class images from
another family of garment, not look-alikes: a bag among shirts, not a coat; and of those whose
class has a folder in the set, which a cross-group score can see), over all folders, and each
score's time.

    OMP_NUM_THREADS=1 python bench/outliers.py --root /tmp/ob      # docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # quality.py: the Fashion-MNIST reader
from quality import CLASSES, SOURCE, embed, read_idx

from repsample.embedding.neighbours import knn, nearest_outside, unit_rows
from repsample.hygiene.outliers import (
    DEFAULT_SCORER,
    OUTLIER_SCORERS,
    Neighbours,
    distances_elsewhere,
    knn_distance,
)
from repsample.selection.cluster import choose_k

Scorer = Callable[[np.ndarray, Neighbours, int], np.ndarray]
Score = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
"""score(raw vectors, unit vectors, the other folders' raw vectors, seed)"""

KINDS = ("cross", "broken")
FAMILY = {"T-shirt top": "top", "Pullover": "top", "Dress": "top", "Coat": "top", "Shirt": "top",
          "Sandal": "shoe", "Sneaker": "shoe", "Ankle boot": "shoe", "Trouser": "trouser",
          "Bag": "bag"}
"""Look-alike classes: a Shirt in a Pullover folder is a harder catch than a Bag."""


def _broken(pixels: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """One of four damages, by kind modulo 4."""
    out = pixels.astype(np.int16)
    if kind % 4 == 0:  # near-blank
        out = np.full_like(out, int(rng.integers(0, 256))) + rng.integers(-6, 7, out.shape)
    elif kind % 4 == 1:  # pure noise
        out = rng.integers(0, 256, out.shape)
    elif kind % 4 == 2:  # half overwritten
        out[out.shape[0] // 2 :] = rng.integers(0, 256, out[out.shape[0] // 2 :].shape)
    else:  # torn rows
        for r in range(0, out.shape[0], 4):
            out[r : r + 4] = np.roll(out[r : r + 4], int(rng.integers(5, 20)), axis=1)
    return np.clip(out, 0, 255).astype(np.uint8)


def write_dataset(data: Path, classes: list[str], per_class: int, cross: float, broken: float,
                  seed: int = 0) -> None:
    """ROOT/data/<class>/{clean,cross,broken}_*.png, a seeded draw; a finished tree is kept."""
    marker = data / "complete.json"
    spec = {"classes": classes, "per_class": per_class, "cross": cross, "broken": broken, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return
    rng = np.random.default_rng(seed)
    images = read_idx(SOURCE / "train-images-idx3-ubyte.gz")
    labels = read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    used: set[int] = set()
    for name in classes:
        label = CLASSES.index(name)
        own = rng.permutation(np.flatnonzero(labels == label))
        own = own[~np.isin(own, list(used))][: per_class + round(broken * per_class)]
        foreign = rng.permutation(np.flatnonzero(labels != label))
        foreign = foreign[~np.isin(foreign, list(used))][: round(cross * per_class)]
        used.update(own.tolist() + foreign.tolist())
        folder = data / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in own[:per_class].tolist():
            Image.fromarray(images[i], "L").save(folder / f"clean_{i:05d}.png")
        for i in foreign.tolist():
            Image.fromarray(images[i], "L").save(folder / f"cross_{i:05d}.png")
        for j, i in enumerate(own[per_class:].tolist()):
            Image.fromarray(_broken(images[i], j, rng), "L").save(folder / f"broken_{i:05d}.png")
    marker.write_text(json.dumps(spec))


def _raw(scorer: Scorer) -> Score:
    """The scorer on the vectors as the model gives them, not scaled to unit length."""
    def score(X: np.ndarray, U: np.ndarray, others: np.ndarray, seed: int) -> np.ndarray:
        return scorer(X, Neighbours(*knn(X, 20)), seed)
    return score


def _unit(scorer: Scorer, across: bool = False) -> Score:
    """The scorer as repsample runs it: on unit-length vectors and their 20 neighbours (and with
    across, the distances to the nearest images of the other folders)."""
    def score(X: np.ndarray, U: np.ndarray, others: np.ndarray, seed: int) -> np.ndarray:
        return scorer(U, Neighbours.of(U, elsewhere=distances_elsewhere(U, others) if across
                                       else None), seed)
    return score


def _across(k: int, times_knn: bool) -> Score:
    """Mean distance to the k nearest of the folder over that to the k nearest of the other
    folders; times knn's distance (as knn-cross, with k in place of 3) or alone."""
    def score(X: np.ndarray, U: np.ndarray, others: np.ndarray, seed: int) -> np.ndarray:
        nn = Neighbours.of(U, k=max(k, 20))
        similarity, _ = nearest_outside(np.concatenate([U, unit_rows(others)]), [(0, len(U))], k)[0]
        elsewhere = np.sqrt(np.maximum(2.0 - 2.0 * similarity.astype(np.float64), 0.0))
        ratio = nn.distances[:, :k].mean(axis=1) / elsewhere.mean(axis=1)
        return ratio * knn_distance(U, nn, seed) if times_knn else ratio
    return score


def _mean_distance(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    return nn.distances.mean(axis=1)


def _nearest(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    return nn.distances[:, 0]


def _cluster_centre(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """The distance to its centre in the KMeans partition the selection uses (k by silhouette)."""
    clustering = choose_k(X, 5, 20, seed)
    return np.linalg.norm(X - clustering.centers[clustering.labels], axis=1)


def scorers() -> dict[str, Score]:
    """name -> score(raw vectors, unit vectors, the other folders' raw vectors, seed)."""
    out = {name: _unit(scorer, across=name == "knn-cross") for name, scorer in OUTLIER_SCORERS.items()}
    out |= {f"{name}-raw": _raw(OUTLIER_SCORERS[name]) for name in ("knn", "lof", "centroid")}
    out |= {"knn-mean (1/typicality)": _unit(_mean_distance), "knn1 (uniqueness)": _unit(_nearest),
            "kmeans-centre-raw": _raw(_cluster_centre)}
    out |= {f"knn x across-{k}": _across(k, True) for k in (1, 5, 10, 20)}
    out |= {f"across-{k} alone": _across(k, False) for k in (3, 10)}
    return out


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "repsample-outliers")
    p.add_argument("--classes", default="T-shirt top,Trouser,Pullover,Sneaker,Bag")
    p.add_argument("--per-class", type=int, default=1000, help="clean images per class folder")
    p.add_argument("--cross", type=float, default=0.02, help="share of other classes planted")
    p.add_argument("--broken", type=float, default=0.01, help="share of damaged images planted")
    p.add_argument("--top", type=float, default=0.03, help="share of each folder called outliers")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args(argv)

    classes = args.classes.split(",")
    data = args.root / "data"
    write_dataset(data, classes, args.per_class, args.cross, args.broken)
    t0 = time.perf_counter()
    folders = {name: sorted((data / name).glob("*.png")) for name in classes}
    vectors = {name: embed(paths, args.root / "cache.sqlite", "cpu", args.workers)
               for name, paths in folders.items()}
    print(f"embedded {sum(map(len, folders.values()))} images in {len(classes)} folders "
          f"({time.perf_counter() - t0:.0f} s, cached under {args.root})\n")

    labels = read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    rows = []
    for name, score in scorers().items():
        called = {k: 0 for k in (*KINDS, "family", "foldered")}
        planted = {k: 0 for k in (*KINDS, "family", "foldered")}
        calls = 0
        seconds = 0.0
        for folder, paths in folders.items():
            X = vectors[folder]
            kind = np.asarray([p.name.split("_")[0] for p in paths])
            label = [CLASSES[labels[int(p.stem.split("_")[1])]] for p in paths]
            family = (kind == "cross") & np.asarray([FAMILY[c] != FAMILY[folder] for c in label])
            foldered = (kind == "cross") & np.isin(label, classes)
            start = time.perf_counter()
            others = np.concatenate([vectors[f] for f in folders if f != folder])
            values = score(X, unit_rows(X), others, args.seed)
            seconds += time.perf_counter() - start
            top = np.argsort(-values, kind="stable")[: int(args.top * len(X) + 0.5)]
            calls += len(top)
            for k in KINDS:
                planted[k] += int((kind == k).sum())
                called[k] += int((kind[top] == k).sum())
            for k, mask in (("family", family), ("foldered", foldered)):
                planted[k] += int(mask.sum())
                called[k] += int(mask[top].sum())
        hits = called["cross"] + called["broken"]
        rows.append((name, hits / calls, called["cross"] / planted["cross"],
                     called["family"] / planted["family"], called["foldered"] / planted["foldered"],
                     called["broken"] / planted["broken"],
                     hits / (planted["cross"] + planted["broken"]), seconds))

    print(f"Top {args.top:.0%} of each folder called outliers; {len(classes)} folders of "
          f"{args.per_class} + {args.cross:.0%} other classes + {args.broken:.0%} damaged "
          f"(default: {DEFAULT_SCORER})\n")
    print("| score | precision | recall, other class | of which other family "
          "| of which class in the set | recall, damaged | recall, all | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, precision, cross, family, foldered, broken, recall, seconds in rows:
        mark = " (default)" if name == DEFAULT_SCORER else ""
        print(f"| {name}{mark} | {precision:.3f} | {cross:.3f} | {family:.3f} | {foldered:.3f} "
              f"| {broken:.3f} | {recall:.3f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
