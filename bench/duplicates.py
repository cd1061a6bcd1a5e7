"""Duplicates bench: are planted copies found at the default threshold, and nothing else?

Distinct images: non-overlapping tiles of real photos (Debian's MATE nature backgrounds and the
lomiri-wallpapers packages; flat tiles such as clear sky are skipped), saved as JPEG quality 90.
Planted on a seeded share of them, one variant per kind:

- ``exact``: a byte copy;            - ``reencode``: JPEG at quality 50 or 70;
- ``resize``: 50 % or 150 % size;    - ``crop``: 4-8 % cut from each side;
- ``flip``: mirrored left-right (the harder case: no target).

Everything is embedded with the real default model (efficientnet-lite0, default weights) through
``repsample.embed_images`` and its SQLite cache under --root, and searched with the same blocked
search ``repsample check`` uses. Per kind: recall (the variant's similarity to its original
reaches the threshold) and precision (of the pairs above the threshold that hold a variant of
that kind, the share that pair it with its own original or a sibling variant); overall precision
also counts pairs of two distinct tiles. A sweep shows how the threshold trades one for the other.

``--scale N`` instead times the search on N synthetic 1280-d embeddings (non-negative, clustered,
like the model's) against a dense all-pairs product on a subset, checking both find the same pairs.

    python bench/duplicates.py                      # the documented run
    python bench/duplicates.py --scale 100000       # the scale run
"""

from __future__ import annotations

import argparse
import io
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

Keep = Callable[[np.ndarray, np.ndarray], np.ndarray]

SOURCES = ("/usr/share/backgrounds/mate/nature", "/usr/share/backgrounds")
KINDS = ("exact", "reencode", "resize", "crop", "flip")
TARGET_KINDS = ("exact", "reencode", "resize")


def source_photos(dirs: list[str]) -> list[Path]:
    photos: list[Path] = []
    for d in dirs:
        photos += sorted(p for p in Path(d).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        sys.exit(f"no photos under {dirs}; apt-get install lomiri-wallpapers-16.04 or pass --sources")
    return photos


def write_tiles(photos: list[Path], out: Path, tile: int, per_photo: int) -> list[Path]:
    """Non-overlapping tiles (a gap between them) of each photo scaled to at most 2400 px."""
    paths = []
    for n, photo in enumerate(photos):
        with Image.open(photo) as img:
            img = img.convert("RGB")
            img.thumbnail((2400, 2400))
        step = tile + tile // 4
        corners = [(x, y) for y in range(0, img.height - tile + 1, step)
                   for x in range(0, img.width - tile + 1, step)]
        kept = 0
        for x, y in corners:
            part = img.crop((x, y, x + tile, y + tile))
            if np.asarray(part.convert("L"), np.float32).std() < 20:
                continue  # flat sky or wall: not a distinct picture
            path = out / f"p{n:02d}_{x:04d}_{y:04d}.jpg"
            part.save(path, quality=90)
            paths.append(path)
            kept += 1
            if kept == per_photo:
                break
    return paths


def plant(kind: str, src: Path, dest: Path, rng: np.random.Generator) -> None:
    if kind == "exact":
        shutil.copyfile(src, dest)
        return
    with Image.open(src) as img:
        img = img.convert("RGB")
        w, h = img.size
        if kind == "reencode":
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=int(rng.choice([50, 70])))
            dest.write_bytes(buf.getvalue())
            return
        if kind == "resize":
            scale = float(rng.choice([0.5, 1.5]))
            img = img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
        elif kind == "crop":
            cut = rng.uniform(0.04, 0.08, 4) * (w, h, w, h)
            img = img.crop((cut[0], cut[1], w - cut[2], h - cut[3]))
        elif kind == "flip":
            img = ImageOps.mirror(img)
        img.save(dest, quality=90)


def build(root: Path, args: argparse.Namespace) -> tuple[list[Path], dict[int, tuple[int, str]]]:
    """The images, and for every planted one: (its original's index, kind)."""
    data = root / "images"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    bases = write_tiles(source_photos(args.sources), data, args.tile, args.per_photo)
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(bases), size=min(args.planted, len(bases)), replace=False)
    paths = list(bases)
    origin: dict[int, tuple[int, str]] = {}
    for b in sorted(chosen.tolist()):
        for kind in KINDS:
            dest = data / f"{bases[b].stem}_{kind}.jpg"
            plant(kind, bases[b], dest, rng)
            origin[len(paths)] = (b, kind)
            paths.append(dest)
    return paths, origin


def evaluate(X: np.ndarray, origin: dict[int, tuple[int, str]], threshold: float,
             verify: Keep | None) -> dict[str, dict[str, float]]:
    from repsample.hygiene.near import similar_pairs

    pairs = similar_pairs(X, threshold, keep=verify)
    root_of = {i: b for i, (b, _) in origin.items()}

    def same_picture(i: int, j: int) -> bool:
        return root_of.get(i, i) == root_of.get(j, j)

    found = set(zip(pairs.first.tolist(), pairs.second.tolist(), strict=True))
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [i for i, (_, k) in origin.items() if k == kind]
        hits = sum((min(i, root_of[i]), max(i, root_of[i])) in found for i in mine)
        involved = [(i, j) for i, j in found if origin.get(i, (0, ""))[1] == kind
                    or origin.get(j, (0, ""))[1] == kind]
        true = sum(same_picture(i, j) for i, j in involved)
        out[kind] = {"recall": hits / len(mine), "precision": true / len(involved) if involved else 1.0,
                     "n": len(mine)}
    true_all = sum(same_picture(i, j) for i, j in found)
    out["all"] = {"recall": float("nan"), "precision": true_all / len(found) if found else 1.0,
                  "n": len(found), "false": len(found) - true_all}
    return out


def table(X: np.ndarray, origin: dict[int, tuple[int, str]], thresholds: list[float],
          verify: Keep | None, default: float) -> None:
    print("\n| threshold | " + " | ".join(f"{k} R / P" for k in KINDS) + " | all pairs P (false) |")
    print("|---" * (len(KINDS) + 2) + "|")
    for t in thresholds:
        r = evaluate(X, origin, t, verify)
        mark = " (default)" if t == default else ""
        cells = " | ".join(f"{r[k]['recall']:.3f} / {r[k]['precision']:.3f}" for k in KINDS)
        print(f"| {t:.2f}{mark} | {cells} | {r['all']['precision']:.4f} ({int(r['all']['false'])}) |")


def quality(args: argparse.Namespace) -> None:
    from repsample import embed_images
    from repsample.cache import EmbeddingCache, hash_file
    from repsample.hygiene import DEFAULT_THRESHOLD
    from repsample.hygiene.near import unit_rows
    from repsample.hygiene.verify import MAX_DISTANCE, Verifier

    root = Path(args.root or tempfile.mkdtemp(prefix="repsample-dups-"))
    paths, origin = build(root, args)
    bases = len(paths) - len(origin)
    print(f"{bases} distinct tiles, {len(origin)} planted variants ({len(origin) // len(KINDS)} per kind), "
          f"model {args.model}", flush=True)
    t0 = time.perf_counter()
    embedded = embed_images(paths, args.model, cache=root / "cache.sqlite", workers=args.workers)
    print(f"embedded in {time.perf_counter() - t0:.0f} s", flush=True)
    assert all(r is not None for r in embedded.rows), "every bench image must embed"
    X = embedded.vectors

    U = unit_rows(X)
    sims = np.array([float(U[i] @ U[b]) for i, (b, _) in origin.items()])
    kinds = np.array([k for _, k in origin.values()])
    print("\nsimilarity of each variant to its original (min / 5th percentile / median):")
    for kind in KINDS:
        s = sims[kinds == kind]
        print(f"  {kind:<9} {s.min():.4f} / {np.percentile(s, 5):.4f} / {np.median(s):.4f}")
    base_best = _best_other(U[:bases])
    print(f"  distinct tiles, each one's most similar other tile: max {base_best.max():.4f}, "
          f"99th percentile {np.percentile(base_best, 99):.4f}, median {np.median(base_best):.4f}")

    thresholds = sorted({DEFAULT_THRESHOLD, *args.sweep})
    print("\nembedding cosine alone (what the check did before pHash verification):")
    table(X, origin, thresholds, None, DEFAULT_THRESHOLD)

    hashes = [hash_file(p) for p in paths]
    cache = EmbeddingCache(root / "cache.sqlite")
    verify = Verifier(hashes, dict(zip(hashes, paths, strict=True)), cache, args.workers)
    print(f"\nembedding cosine >= threshold, confirmed by pHash within {MAX_DISTANCE} bits, "
          "mean colour and thumbnail correlation (the check):")
    table(X, origin, thresholds, verify, DEFAULT_THRESHOLD)
    r = evaluate(X, origin, DEFAULT_THRESHOLD, verify)
    ok = all(r[k]["recall"] >= 0.95 and r[k]["precision"] >= 0.99 for k in TARGET_KINDS)
    print(f"\ntarget (recall >= 0.95 at precision >= 0.99 for {', '.join(TARGET_KINDS)}) at the "
          f"default {DEFAULT_THRESHOLD}: {'met' if ok else 'NOT met'}")


def _best_other(U: np.ndarray) -> np.ndarray:
    best = np.full(len(U), -1.0, np.float32)
    for a in range(0, len(U), 1024):
        tile = U[a : a + 1024] @ U.T
        tile[np.arange(len(tile)), np.arange(a, a + len(tile))] = -1.0
        best[a : a + 1024] = tile.max(axis=1)
    return best


def synthetic(n: int, dim: int, seed: int) -> np.ndarray:
    """Non-negative clustered vectors, with 1 % planted near-copies, like ReLU-pooled features."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(0, 1, (200, dim))).astype(np.float32)
    X = centres[rng.integers(0, 200, n)] + rng.exponential(0.6, (n, dim)).astype(np.float32)
    copies = rng.choice(n, n // 100, replace=False)
    X[copies[1::2]] = X[copies[::2]] + rng.normal(0, 0.05, (len(copies[1::2]), dim)).astype(np.float32)
    return X


def scale(args: argparse.Namespace) -> None:
    from repsample.hygiene import DEFAULT_THRESHOLD
    from repsample.hygiene.near import similar_pairs, unit_rows

    X = synthetic(args.scale, 1280, args.seed)
    t = DEFAULT_THRESHOLD
    sub = min(args.dense, len(X))
    t0 = time.perf_counter()
    U = unit_rows(X[:sub])
    dense = U @ U.T
    i, j = np.nonzero(np.triu(dense, k=1) >= t)
    dense_s = time.perf_counter() - t0
    del dense
    t0 = time.perf_counter()
    small = similar_pairs(X[:sub], t)
    blocked_small_s = time.perf_counter() - t0
    same = set(zip(i.tolist(), j.tolist(), strict=True)) == set(
        zip(small.first.tolist(), small.second.tolist(), strict=True))
    print(f"{sub} vectors: dense all-pairs {dense_s:.1f} s ({sub * sub * 4 / 2**30:.2f} GiB matrix), "
          f"blocked {blocked_small_s:.1f} s (ratio {blocked_small_s / dense_s:.2f}); same pairs: {same}")
    t0 = time.perf_counter()
    pairs = similar_pairs(X, t)
    total = time.perf_counter() - t0
    expected = blocked_small_s * (len(X) / sub) ** 2
    print(f"{len(X)} vectors x 1280: blocked search {total:.0f} s ({total / 60:.1f} min), "
          f"{len(pairs)} pairs >= {t}; {total / expected:.2f} x the quadratic extrapolation "
          f"from {sub}; a dense matrix would need {len(X) ** 2 * 4 / 2**30:.0f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="work folder (images, cache); default: a new temp folder")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--per-photo", type=int, default=12)
    parser.add_argument("--planted", type=int, default=100, help="tiles that get one variant per kind")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.60, 0.70, 0.75, 0.80, 0.85, 0.90])
    parser.add_argument("--scale", type=int, default=0, help="time the search on N synthetic vectors")
    parser.add_argument("--dense", type=int, default=10000, help="--scale: subset for the dense baseline")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.scale:
        scale(args)
    else:
        quality(args)


if __name__ == "__main__":
    main()
