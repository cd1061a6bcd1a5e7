"""Speed bench: the original method against repsample, on the same images, in one run.

Data: realistic JPEGs made from Debian's wallpaper photos (/usr/share/backgrounds/mate): random
crops at random scales, flips and colour shifts, saved as 512x384 JPEGs (varied content, real
photo statistics), one group of each size in --sizes; plus the wallpapers themselves
(multi-megapixel JPEGs and PNGs) as one group.

The original method, re-implemented faithfully here: PIL full decode, per-image forward passes
(eager PyTorch, batch of one), KMeans(k, random_state=42) and a full silhouette for k = 5..20,
``total // k`` nearest the centre per cluster, ``shutil.copy2``. repsample: ``select`` with its
defaults (herding + proportional, duplicate check on) and a fresh cache, then a rerun on
unchanged data.
Each method runs in its own process, so peak memory (max RSS) is its own.

Also: the model's bare batched throughput (the backend repsample uses, on random input), the
embedding stage alone on 256 px JPEGs as a fraction of it, and auto-k + selection on
--cluster-n x 1280 synthetic embeddings in one group.

    python bench/speed.py                                          # default model, 1000 and 5000
    python bench/speed.py --model resnet18 --weights random        # the original's architecture
    python bench/speed.py --sizes 200 --cluster-n 20000            # a quick look

resnet18's ImageNet weights need the network; ``--weights random`` (or a saved state_dict) runs
the same architecture at the same cost.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

WALLPAPERS = Path("/usr/share/backgrounds/mate")


# -- data ---------------------------------------------------------------------------------------

def photo_crops(out: Path, n: int, size: tuple[int, int], seed: int) -> None:
    """n varied JPEGs of the given size cut from the wallpaper photos."""
    sources = sorted(p for p in WALLPAPERS.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    opened: dict[Path, Image.Image] = {}
    for i in range(n):
        src = rng.choice(sources)
        if src not in opened:
            with Image.open(src) as im:
                im.draft("RGB", (1600, 1600))
                opened[src] = ImageOps.exif_transpose(im).convert("RGB")
        img = opened[src]
        scale = rng.uniform(0.15, 0.9)
        w, h = int(img.width * scale), int(img.height * scale)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        crop = img.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.5, 1.5))
        crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
        crop.save(out / f"img_{i:05d}.jpg", quality=rng.randint(80, 95))


def wallpapers(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(WALLPAPERS.rglob("*")):
        if p.suffix.lower() in (".jpg", ".png"):
            shutil.copy2(p, out / p.name)


# -- the original method ------------------------------------------------------------------------

def original_method(src: Path, dst: Path, model: str, weights: str, total_images: int) -> dict[str, Any]:
    import torch
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from torchvision import transforms

    from repsample.models import get_model

    torch.set_num_threads(2)
    spec = get_model(model)
    net = spec.build(weights).eval()
    transform = transforms.Compose([
        transforms.Resize((spec.preprocess.size[1], spec.preprocess.size[0])),
        transforms.ToTensor(),
        transforms.Normalize(spec.preprocess.mean, spec.preprocess.std),
    ])
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    paths, features = [], []
    for p in sorted(src.iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        try:
            img = Image.open(p).convert("RGB")
        except OSError:
            continue
        with torch.no_grad():
            features.append(net(transform(img).unsqueeze(0)).squeeze(0).numpy())
        paths.append(p)
    X = np.stack(features)
    seconds["embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    best_k, best_score = 5, -1.0
    for k in range(5, min(21, len(X))):
        labels = KMeans(n_clusters=k, random_state=42).fit_predict(X)
        score = silhouette_score(X, labels)
        if score > best_score:
            best_k, best_score = k, score
    kmeans = KMeans(n_clusters=best_k, random_state=42)
    labels = kmeans.fit_predict(X)
    total = min(total_images, len(X))
    selected: list[int] = []
    for c in range(best_k):
        idx = np.where(labels == c)[0]
        dist = np.linalg.norm(X[idx] - kmeans.cluster_centers_[c], axis=1)
        selected.extend(idx[np.argsort(dist)[: total // best_k]].tolist())
    seconds["select"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dst.mkdir(parents=True, exist_ok=True)
    for i in selected:
        shutil.copy2(paths[i], dst / paths[i].name)
    seconds["export"] = time.perf_counter() - t0
    return {"seconds": seconds, "images": len(X), "selected": len(selected), "k": best_k}


# -- repsample ----------------------------------------------------------------------------------

def repsample_select(src: Path, dst: Path, model: str, weights: str, total_images: int,
                     cache: Path, overwrite: bool) -> dict[str, Any]:
    from repsample import select

    t0 = time.perf_counter()
    result = select(src.parent, dst, per_class=total_images, model=model, weights=weights,
                    cache=cache, report=False, overwrite=overwrite, groups=(src.name,))
    wall = time.perf_counter() - t0
    g = result.groups[0]
    return {"wall": wall, "seconds": g.seconds, "images": g.images,
            "selected": g.selected, "k": g.k, "embedded": g.embedded}


def bare_throughput(embedder: Any, batch: int = 64, repeats: int = 7) -> float:
    """img/s of the model alone on one random batch, repeated (median)."""
    w, h = embedder.spec.preprocess.size
    x = np.random.default_rng(0).uniform(-2, 2, (batch, 3, h, w)).astype(np.float32)
    embedder(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embedder(x)
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def embed_stage(src: Path, model: str, weights: str, cache: Path) -> dict[str, Any]:
    """img/s of decode + preprocess + inference + cache writes on a folder of JPEGs, and the bare
    model's img/s measured in the same process just before and just after (load drifts)."""
    from repsample.cache import EmbeddingCache, hash_file
    from repsample.embed import Embedder, compute_missing, exported_models_dir

    paths = sorted(src.iterdir())
    hashes = [hash_file(p) for p in paths]
    embedder = Embedder(model, weights, "cpu", "auto", exported_models_dir(cache))
    before = bare_throughput(embedder)
    with EmbeddingCache(cache.with_name(f"stage-{time.time_ns()}.sqlite")) as db:  # empty
        t0 = time.perf_counter()
        compute_missing(paths, hashes, embedder, db)
        rate = len(paths) / (time.perf_counter() - t0)
    after = bare_throughput(embedder)
    return {"stage": rate, "bare": [before, after], "backend": embedder.backend}


def cluster_scale(n: int, dim: int = 1280) -> dict[str, Any]:
    """Auto-k + centroid selection on n synthetic embeddings (40 modes, non-negative, float32)."""
    from repsample import CentroidSelector

    rng = np.random.default_rng(0)
    modes = rng.gamma(2.0, 0.5, (40, dim)).astype(np.float32)
    X = np.empty((n, dim), np.float32)
    for start in range(0, n, 10_000):  # in chunks: the data itself is the only big array
        m = min(10_000, n - start)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * np.float32(0.6)
        X[start:start + m] = np.maximum(modes[rng.integers(0, 40, m)] + noise, 0)
    before = _peak_mib()
    t0 = time.perf_counter()
    sel = CentroidSelector(n_select=1000).fit(X)
    return {"seconds": time.perf_counter() - t0, "k": sel.k_, "selected": len(sel.selected_indices_),
            "data_mib": X.nbytes / 2**20, "peak_before_mib": before}


# -- running each in its own process, reporting peak memory ---------------------------------------

def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(fn: Any, *args: Any) -> Any:
    return fn(*args), _peak_mib()


def isolated(fn: Any, *args: Any) -> tuple[Any, float]:
    """fn(*args) in a fresh process: (result, that process's peak RSS in MiB)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_child, fn, *args).result()  # type: ignore[no-any-return]


# -- the run ------------------------------------------------------------------------------------

def compare(name: str, src: Path, work: Path, args: argparse.Namespace, total: int) -> None:
    n = sum(1 for _ in src.iterdir())
    runs = work / f"runs-{args.model}-{name}"
    shutil.rmtree(runs, ignore_errors=True)  # a fresh cache and empty outputs every time
    orig, orig_mem = isolated(original_method, src, runs / "orig", args.model, args.weights, total)
    cache = runs / "cache" / "embeddings.sqlite"
    ours, ours_mem = isolated(repsample_select, src, runs / "ours", args.model, args.weights, total,
                              cache, False)
    rerun, _ = isolated(repsample_select, src, runs / "ours", args.model, args.weights, total, cache,
                        True)
    o, s = orig["seconds"], ours["seconds"]
    o_wall = sum(o.values())
    print(f"\n### {name}: {n} images, budget {total}")
    print("| | original | repsample | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| embed (decode + model), img/s | {n / o['embed']:.1f} | "
          f"{n / (s['hash'] + s['embed']):.1f} | {o['embed'] / (s['hash'] + s['embed']):.1f}x |")
    print(f"| choose k + select, s | {o['select']:.2f} | {s['select']:.2f} | "
          f"{o['select'] / max(s['select'], 1e-9):.1f}x |")
    print(f"| export, s | {o['export']:.2f} | {s['export']:.2f} | |")
    print(f"| end to end, s | {o_wall:.1f} | {ours['wall']:.1f} | **{o_wall / ours['wall']:.1f}x** |")
    print(f"| peak memory (max RSS), MiB | {orig_mem:.0f} | {ours_mem:.0f} | |")
    print(f"| k, selected | {orig['k']}, {orig['selected']} | {ours['k']}, {ours['selected']} | |")
    print(f"| rerun on unchanged data, s | | {rerun['wall']:.2f} (embedded {rerun['embedded']}) | |")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--sizes", default="1000,5000", help="images per group, comma-separated")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--cluster-n", type=int, default=100_000, help="0 skips the clustering run")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: "
                        "stage,groups,wallpapers,cluster")
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    skip = set(args.skip.split(","))
    work = args.root or Path(tempfile.mkdtemp(prefix="repsample-speed-"))
    print(f"# speed bench: model {args.model}, weights {args.weights}, work folder {work}")

    if "stage" not in skip:
        cache = work / f"stage-{args.model}" / "embeddings.sqlite"
        shutil.rmtree(cache.parent, ignore_errors=True)
        src = work / "data256" / "g"
        if not src.exists():
            photo_crops(src, 1000, (256, 256), seed=3)
        out = isolated(embed_stage, src, args.model, args.weights, cache)[0]
        bare = statistics.mean(out["bare"])
        print(f"\nbare batched inference ({out['backend']}, batch 64, random input): "
              f"{out['bare'][0]:.1f} img/s before the stage, {out['bare'][1]:.1f} after")
        print(f"embedding stage on 1000 256x256 JPEGs: {out['stage']:.1f} img/s = "
              f"{100 * out['stage'] / bare:.0f}% of bare (their mean)")
    if "groups" not in skip:
        for size in (int(s) for s in args.sizes.split(",")):
            src = work / f"data{size}" / "photos"
            if not src.exists():
                photo_crops(src, size, (512, 384), seed=size)
            compare(f"{size} photos 512x384", src, work, args, args.budget)
    if "wallpapers" not in skip:
        src = work / "wall" / "wallpapers"
        if not src.exists():
            wallpapers(src)
        compare("Debian wallpapers (multi-megapixel)", src, work, args, 10)
    if args.cluster_n and "cluster" not in skip:
        out, peak = isolated(cluster_scale, args.cluster_n)
        print(f"\nauto-k (5..20) + centroid selection of 1000, {args.cluster_n} x 1280 in one group: "
              f"{out['seconds']:.1f} s, k={out['k']}, peak RSS {peak:.0f} MiB "
              f"(data {out['data_mib']:.0f} MiB, {out['peak_before_mib']:.0f} before fitting)")


if __name__ == "__main__":
    main()
