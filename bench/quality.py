"""Quality bench: which strategy x allocation gives a subset that is varied AND representative?

Two real data sets, each written under --root once (seeded) and embedded with the real offline
model (efficientnet-lite0, default weights) through ``repsample.embed_images`` and its SQLite cache
(under --root, so a rerun embeds nothing):

- ``fashion``: Fashion-MNIST from Debian's dataset-fashion-mnist, written as class folders of PNGs.
  A rare visual mode is planted in every class: ``--rare`` of its images (1 %) are
  colour-inverted, train and test alike. Its mode count: the classes whose subset holds one.
- ``photos``: colour photos whose modes are known (bench/photo_modes.py): random crops of Debian's
  27 packaged photographs in a long tail (``--photo-head`` crops of a class's first photograph
  down to ``--photo-tail`` of its last) in 3 class folders. Its mode count: the distinct source
  photographs the subset holds.

For every budget, strategy and allocation, over ``--seeds`` seeds, each class folder of the train
split is reduced to the budget and scored with ``repsample.evaluate``: coverage, MMD, cluster-share
TV, near-duplicate rate, modes covered (and on Fashion-MNIST rare-mode hits and share), and the
accuracy of a logistic-regression probe trained on the union of the class subsets and tested on
the held-out test split. Everything is compared with ``random`` under the same seeds, in the same
run. Prints markdown: every measure on Fashion-MNIST, then a modes-covered table per data set.

    OMP_NUM_THREADS=1 python bench/quality.py --root /tmp/qb --jobs 2 --json results.json  # docs
    python bench/quality.py --train-per-class 300 --budgets 10,50 --seeds 2   # a quick look
    python bench/quality.py --datasets photos --strategies herding,facility,kcenter \
        --allocations proportional                           # modes on colour photos alone
    python bench/quality.py --root /tmp/qb --precision int8 --strategies herding \
        --allocations proportional --json int8.json          # a reduced precision against fp32's
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SOURCE = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
RARE_SUFFIX = "_inv"


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_dataset(data: Path, per_class: dict[str, int], rare: float, seed: int = 0) -> None:
    """ROOT/data/{train,test}/<class>/*.png, a seeded draw; a finished tree is left as it is."""
    marker = data / "complete.json"
    spec = {"per_class": per_class, "rare": rare, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return
    rng = np.random.default_rng(seed)
    sources = {"train": "train", "test": "t10k"}
    for split, n in per_class.items():
        images = read_idx(SOURCE / f"{sources[split]}-images-idx3-ubyte.gz")
        labels = read_idx(SOURCE / f"{sources[split]}-labels-idx1-ubyte.gz")
        for label, name in enumerate(CLASSES):
            picks = np.sort(rng.permutation(np.flatnonzero(labels == label))[:n])
            inverted = set(rng.choice(picks, size=max(1, round(rare * n)), replace=False).tolist())
            folder = data / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in picks.tolist():
                pixels = 255 - images[i] if i in inverted else images[i]
                suffix = RARE_SUFFIX if i in inverted else ""
                Image.fromarray(pixels, "L").save(folder / f"{split}_{i:05d}{suffix}.png")
    marker.write_text(json.dumps(spec))


def list_split(data: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files of a split in sorted order and their class index."""
    paths, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted((data / split / name).glob("*.png"))
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels)


@dataclass(frozen=True)
class Dataset:
    """A written data set: files, class per file, and the modes whose coverage is counted."""

    name: str
    train: list[Path]
    y: np.ndarray
    modes: np.ndarray  # a mode id per train image, -1 where it belongs to no counted mode
    n_modes: int
    modes_are: str  # what a mode is, for the table's title
    rare: np.ndarray | None  # planted rare images (rare hit, rare share), where there are such
    test: list[Path]
    y_test: np.ndarray
    budgets: list[int]


def fashion(args: argparse.Namespace) -> Dataset:
    data = args.root / "data"
    write_dataset(data, {"train": args.train_per_class, "test": args.test_per_class}, args.rare)
    train, y = list_split(data, "train")
    test, y_test = list_split(data, "test")
    rare = np.asarray([p.stem.endswith(RARE_SUFFIX) for p in train])
    return Dataset("fashion", train, y, np.where(rare, y, -1), len(CLASSES),  # one mode per class
                   "classes whose subset holds a planted (inverted) image", rare, test, y_test,
                   [int(b) for b in args.budgets.split(",")])


def photos(args: argparse.Namespace) -> Dataset:
    from photo_modes import list_photos, write_photos  # bench/, this script's folder

    data = args.root / "photos"
    write_photos(data, args.photo_head, args.photo_tail)
    train, y, sources = list_photos(data, "train")
    test, y_test, _ = list_photos(data, "test")
    return Dataset("photos", train, y, sources, len(np.unique(sources)),
                   "distinct source photographs the subset holds", None, test, y_test,
                   [int(b) for b in args.photo_budgets.split(",")])


DATASETS = {"fashion": fashion, "photos": photos}


def embed_dataset(ds: Dataset, args: argparse.Namespace,
                  cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train and test vectors to score with, and the train vectors the selection sees."""
    X = embed(ds.train, cache, args.device, args.workers, args.precision)
    X_test = embed(ds.test, cache, args.device, args.workers, args.precision)
    scoring = args.score_precision or args.precision
    X_select = X
    if scoring != args.precision:  # select with one precision's vectors, score with another's
        X = embed(ds.train, cache, args.device, args.workers, scoring)
        X_test = embed(ds.test, cache, args.device, args.workers, scoring)
    return X, X_test, X_select


def embed(paths: list[Path], cache: Path, device: str, workers: int | None,
          precision: str = "fp32") -> np.ndarray:
    from repsample import embed_images

    embedded = embed_images(paths, device=device, cache=cache, workers=workers, precision=precision)
    if any(r is None for r in embedded.rows):
        raise SystemExit(f"{sum(r is None for r in embedded.rows)} bench images failed to embed")
    return embedded.vectors


def export_vectors(paths: list[Path], cache: Path, out: Path, parts: int) -> None:
    """Ship cached vectors as float16 .npz parts (to carry embeddings made on another machine)."""
    from repsample import embed_images

    embedded = embed_images(paths, cache=cache, workers=0)
    hashes = np.asarray(embedded.hashes, dtype="S64")  # bytes: a quarter of str's size
    for i, idx in enumerate(np.array_split(np.arange(len(paths)), parts)):
        np.savez(out / f"vectors_{i}.npz", hashes=hashes[idx],
                 vectors=embedded.vectors[idx].astype(np.float16))


def import_vectors(folder: Path, cache: Path) -> int:
    """Fill the cache from export_vectors parts: content-addressed, so only identical files hit."""
    from repsample.cache import ContentCache
    from repsample.models import get_model, model_key

    key = model_key(get_model("efficientnet-lite0"), "default")
    n = 0
    with ContentCache(cache) as db:
        for part in sorted(folder.glob("vectors_*.npz")):
            with np.load(part) as z:
                hashes = [h.decode() for h in z["hashes"].tolist()]
                rows = list(zip(hashes, z["vectors"].astype(np.float32), strict=True))
            db.put_many(key, vectors=rows)
            n += len(rows)
    return n


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "repsample-bench")
    p.add_argument("--train-per-class", type=int, default=2000)
    p.add_argument("--test-per-class", type=int, default=400)
    p.add_argument("--rare", type=float, default=0.01, help="share of each class inverted")
    p.add_argument("--budgets", default="10,50,200,1000", help="Fashion-MNIST's, per class")
    p.add_argument("--datasets", default="fashion,photos", help="comma list of fashion, photos")
    p.add_argument("--photo-budgets", default="10,20,40,80", help="the photos', per class")
    p.add_argument("--photo-head", type=int, default=300, help="crops of a class's first photograph")
    p.add_argument("--photo-tail", type=int, default=5, help="crops of a class's last photograph")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--strategies", default=None, help="comma list; default: all registered")
    p.add_argument("--allocations", default=None, help="comma list; default: all registered")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", help="fp32, int8 or bf16 (one cache holds all)")
    p.add_argument("--score-precision", default=None,
                   help="score (and probe) with these vectors instead [default: --precision]: "
                        "--precision int8 --score-precision fp32 scores int8's picks as fp32's are")
    p.add_argument("--workers", type=int, default=None, help="decoding processes")
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel")
    p.add_argument("--embed-only", action="store_true", help="write and embed, then stop")
    p.add_argument("--export-vectors", type=Path, default=None, metavar="DIR")
    p.add_argument("--import-vectors", type=Path, default=None, metavar="DIR")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    names = args.datasets.split(",")
    if unknown := sorted(set(names) - set(DATASETS)):
        raise SystemExit(f"unknown data set {', '.join(unknown)} (known: {', '.join(DATASETS)})")
    cache = args.root / "embeddings.sqlite"
    t0 = time.perf_counter()
    sets = [DATASETS[name](args) for name in names]
    for ds in sets:
        print(f"{ds.name}: {len(ds.train)} train, {len(ds.test)} test images, {ds.n_modes} modes",
              file=sys.stderr)
    print(f"data sets under {args.root} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    if args.import_vectors:
        n = import_vectors(args.import_vectors, cache)
        print(f"imported {n} vectors into {cache}", file=sys.stderr)
    t0 = time.perf_counter()
    vectors = [embed_dataset(ds, args, cache) for ds in sets]
    print(f"embedded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    if args.export_vectors:
        args.export_vectors.mkdir(parents=True, exist_ok=True)
        export_vectors([p for ds in sets for p in ds.train + ds.test], cache, args.export_vectors,
                       parts=5)
    if args.embed_only or args.export_vectors:
        return
    tables = []
    for ds, (X, X_test, X_select) in zip(sets, vectors, strict=True):
        out = None if args.json is None else (
            args.json if ds.name == "fashion" else args.json.with_name(f"{args.json.stem}-{ds.name}.json"))
        results = run_grid(args, ds, X, X_test, X_select, out)
        if out:
            out.write_text(json.dumps(results, indent=1))
        if ds.name == "fashion":
            tables.insert(0, render(results, COLUMNS, "Fashion-MNIST, every measure"))
        tables.append(render(results, MODE_COLUMNS,
                             f"{TITLES[ds.name]}: modes covered = {ds.modes_are} (of {ds.n_modes})"))
    print("\n".join(tables))


_DATA: dict[str, Any] = {}


def _share(**arrays: Any) -> None:
    _DATA.update(arrays)


def run_grid(args: argparse.Namespace, ds: Dataset, X: np.ndarray, X_test: np.ndarray,
             X_select: np.ndarray, out: Path | None) -> list[dict[str, Any]]:
    """One record per (budget, strategy, allocation, seed); tasks (seed, budget) in parallel."""
    from concurrent.futures import ProcessPoolExecutor

    from repsample.selection.allocate import list_allocations
    from repsample.selection.strategies import STRATEGIES

    strategies = args.strategies.split(",") if args.strategies else STRATEGIES.names()
    allocations = args.allocations.split(",") if args.allocations else list_allocations()
    combos = [("random", "-"), *((s, a) for s in strategies if s != "random" for a in allocations)]
    tasks = [(seed, ds.budgets, combos) for seed in range(args.seeds)]
    _share(X=X, y=ds.y, modes=ds.modes, rare=ds.rare, X_test=X_test, y_test=ds.y_test,
           X_select=X_select)  # forked workers inherit these
    partial = None if out is None else out.with_suffix(".partial.jsonl")
    done: list[dict[str, Any]] = []
    if args.jobs <= 1:
        for t in tasks:
            done += _keep_partial(partial, ds.name, grid_task(*t))
        return done
    import multiprocessing

    with ProcessPoolExecutor(args.jobs, multiprocessing.get_context("fork")) as pool:
        for records in pool.map(grid_task, *zip(*tasks, strict=True)):
            done += _keep_partial(partial, ds.name, records)
    return done


def _keep_partial(partial: Path | None, dataset: str,
                  records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append a finished seed to .partial.jsonl beside --json (a long run killed keeps its seeds)."""
    for r in records:
        r["dataset"] = dataset
    if partial:
        with open(partial, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
    return records


def grid_task(seed: int, budgets: list[int], combos: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every budget and combo at one seed (one clustering per class and seed)."""
    from repsample.evaluate import METRICS, Reference, linear_probe
    from repsample.selection.cluster import choose_k
    from repsample.selection.strategies import STRATEGIES

    t0 = time.perf_counter()
    X, y, modes, rare, X_select = (_DATA[k] for k in ("X", "y", "modes", "rare", "X_select"))
    classes = np.unique(y)
    groups = []
    for c in classes:
        Xc = X[y == c]
        clustering = choose_k(Xc, 5, 20, seed, 3000)  # shared by every strategy
        Sc, picking = Xc, clustering
        if X_select is not X:  # the selection sees its own vectors, the scores the reference's
            Sc = X_select[y == c]
            picking = choose_k(Sc, 5, 20, seed, 3000)
        groups.append((Xc, modes[y == c], None if rare is None else rare[y == c], (Sc, picking),
                       Reference.build(Xc, clustering.labels)))
    planted = () if rare is None else ("rare_hit", "rare_share")
    results = []
    for budget, (strategy, allocation) in ((b, c) for b in budgets for c in combos):
        scores, picks = [], []
        for _, modes_c, rare_c, (Sc, picking), ref in groups:
            selector = STRATEGIES.get(strategy)(
                budget, allocation="equal" if allocation == "-" else allocation, random_state=seed)
            rows = selector.fit(Sc, clustering=picking).selected_indices_
            picks.append(rows)
            score = ref.score(rows)
            held = modes_c[rows]
            score["modes"] = float(len(np.unique(held[held >= 0])))
            if rare_c is not None:
                score["rare_hit"] = float(rare_c[rows].any())
                score["rare_share"] = float(rare_c[rows].mean())
            scores.append(score)
        record: dict[str, Any] = {"budget": budget, "strategy": strategy,
                                  "allocation": allocation, "seed": seed}
        for m in (*METRICS, *planted):
            values = [sc[m] for sc in scores if sc.get(m) is not None]  # weighted MMD: no weights
            record[m] = float(np.mean(values)) if values else None
        record["modes"] = float(np.sum([sc["modes"] for sc in scores]))  # held, all classes together
        X_sub = np.vstack([g[0][r] for g, r in zip(groups, picks, strict=True)])
        y_sub = np.concatenate([np.full(len(r), c) for c, r in zip(classes, picks, strict=True)])
        record["accuracy"] = linear_probe(X_sub, y_sub, _DATA["X_test"], _DATA["y_test"])
        results.append(record)
    print(f"seed {seed}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return results


COLUMNS = (("accuracy", "probe acc", 1), ("coverage_mean", "cover mean", 2),
           ("coverage_max", "cover max", 2), ("mmd", "MMD", 3), ("cluster_tv", "cluster TV", 3),
           ("duplicate_rate", "dup", 3), ("rare_hit", "rare hit", 2), ("rare_share", "rare %", 2))
MODE_COLUMNS = (("modes", "modes covered", 1), ("mmd", "MMD", 3), ("cluster_tv", "cluster TV", 3),
                ("accuracy", "probe acc", 1))
TITLES = {"fashion": "Fashion-MNIST", "photos": "Photographs"}
BETTER_HIGH = {"accuracy", "rare_hit", "modes"}
PERCENT = {"accuracy", "rare_share", "duplicate_rate"}


def render(results: list[dict[str, Any]], columns: tuple[tuple[str, str, int], ...], title: str) -> str:
    """Markdown: one table per budget, mean ± std over seeds; * = better than random's mean."""
    lines = ["", f"### {title}"]
    for budget in sorted({r["budget"] for r in results}):
        rows = [r for r in results if r["budget"] == budget]
        combos = list(dict.fromkeys((r["strategy"], r["allocation"]) for r in rows))
        lines += ["", f"#### {budget} per class", "",
                  "| strategy | allocation | " + " | ".join(c[1] for c in columns) + " |",
                  "|---|---|" + "---:|" * len(columns)]
        base = {m: np.mean([r[m] for r in rows if r["strategy"] == "random"]) for m, _, _ in columns}
        for strategy, allocation in combos:
            mine = [r for r in rows if (r["strategy"], r["allocation"]) == (strategy, allocation)]
            cells = []
            for metric, _, digits in columns:
                values = np.asarray([r[metric] for r in mine], dtype=np.float64)
                scale = 100 if metric in PERCENT else 1
                mean, std = values.mean() * scale, values.std() * scale
                better = (mean > base[metric] * scale) if metric in BETTER_HIGH else (
                    mean < base[metric] * scale)
                mark = "*" if better and strategy != "random" and metric != "rare_share" else ""
                cells.append(f"{mean:.{digits}f}±{std:.{digits}f}{mark}")
            lines.append(f"| {strategy} | {allocation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
