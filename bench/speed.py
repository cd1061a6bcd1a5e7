"""Speed bench: issue 12's targets in one invocation, a new user's first run every time.

The original method (the seed's per-image loop, kept as the baseline: PIL full decode, one
forward pass per image in eager PyTorch, KMeans(k, random_state=42) and a full silhouette for
k = 5..20, ``total // k`` nearest the centre per cluster, ``shutil.copy2``) against repsample
as ``pip install .`` gives it: the real CLI, ``repsample select`` with its defaults, a fresh
``--cache`` and a fresh user cache folder (XDG_CACHE_HOME) per first run. Each side runs in its
own process.

  (a) 2,000 photo-like 512x384 JPEGs in one group, --per-class 1000
  (b) 2,400 small JPEG/PNGs (64 to 160 px) in 12 class folders, --per-class 60
  (c) 5,000 photo-like 512x384 JPEGs in one group, --per-class 1000
  each: original, repsample's first run, its rerun on unchanged data (same caches), and ratios;
  and the first run's time outside the embed stage, by run.json's stages; then repsample alone
  on 20,000 photos in one group: a per-stage table where run.json's stages (per group: hash,
  embed, select, export; run-wide: process start and imports, scan, model, duplicate check,
  quality, writing, report, and "other", the gaps between them) and the process's exit add up
  to the wall time, and its rerun.

Photo-like images are random crops at random scales (flipped, colour and brightness shifted) of
real photos: Debian's ``mate-backgrounds`` and ``lomiri-wallpapers-16.04`` wallpapers
(``apt-get install -y mate-backgrounds lomiri-wallpapers-16.04``).

    python bench/speed.py                        # the full run (~40 min on 2 quiet cores)
    python bench/speed.py --quick                # 200 / 240 / 500 / 2,000 images: ~15 min
    python bench/speed.py --python /tmp/plain/bin/python   # repsample from a plain `pip install .`

``--python`` names the interpreter whose ``repsample`` is measured (default: this one); the
header says which inference packages it has, so a run says what install it describes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

PHOTO_FOLDERS = (Path("/usr/share/backgrounds"),)  # mate/ and lomiri's wallpapers land here


# -- data ---------------------------------------------------------------------------------------

def photo_sources() -> list[Path]:
    sources = sorted(p for folder in PHOTO_FOLDERS for p in folder.rglob("*")
                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        sys.exit("no photos under /usr/share/backgrounds: "
                 "apt-get install -y mate-backgrounds lomiri-wallpapers-16.04")
    return sources


class Cropper:
    """Random crops of the source photos, each decoded once (at most 1600 px)."""

    def __init__(self, sources: list[Path]) -> None:
        self.sources = sources
        self.opened: dict[Path, Image.Image] = {}

    def crop(self, src: Path, size: tuple[int, int], rng: random.Random) -> Image.Image:
        if src not in self.opened:
            with Image.open(src) as im:
                im.draft("RGB", (1600, 1600))
                self.opened[src] = ImageOps.exif_transpose(im).convert("RGB")
        img = self.opened[src]
        scale = rng.uniform(0.15, 0.9)
        w, h = int(img.width * scale), int(img.height * scale)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        out = img.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            out = ImageOps.mirror(out)
        out = ImageEnhance.Color(out).enhance(rng.uniform(0.5, 1.5))
        return ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))


def photo_group(out: Path, n: int, seed: int) -> None:
    """n photo-like 512x384 JPEGs in one folder."""
    rng, cropper = random.Random(seed), Cropper(photo_sources())
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = cropper.crop(rng.choice(cropper.sources), (512, 384), rng)
        img.save(out / f"img_{i:05d}.jpg", quality=rng.randint(80, 95))


def class_tree(out: Path, per_class: int, seed: int, classes: int = 12) -> None:
    """``classes`` folders of small images (64..160 px, half JPEG, half PNG); each class draws
    from its own share of the source photos, so classes differ."""
    rng, cropper = random.Random(seed), Cropper(photo_sources())
    for c in range(classes):
        folder = out / f"class_{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        own = cropper.sources[c :: classes] or cropper.sources
        for i in range(per_class):
            side = rng.randint(64, 160)
            img = cropper.crop(rng.choice(own), (side, side), rng)
            if i % 2:
                img.save(folder / f"img_{i:04d}.png")
            else:
                img.save(folder / f"img_{i:04d}.jpg", quality=rng.randint(80, 95))


# -- the original method ------------------------------------------------------------------------

def original_method(folders: list[Path], dst: Path, model: str, weights: str,
                    total_images: int) -> dict[str, Any]:
    """The seed's loop, folder by folder (one folder = one class); seconds from process start
    of the work to the last copy, the model loaded once."""
    import torch
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from torchvision import transforms

    from repsample.models import get_model

    warnings.simplefilter("ignore")  # KMeans on duplicate-rich small folders: the same result
    t_start = time.perf_counter()
    torch.set_num_threads(2)
    spec = get_model(model)
    net = spec.build(weights).eval()
    transform = transforms.Compose([
        transforms.Resize((spec.preprocess.size[1], spec.preprocess.size[0])),
        transforms.ToTensor(),
        transforms.Normalize(spec.preprocess.mean, spec.preprocess.std),
    ])
    selected_total, ks = 0, []
    for src in folders:
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
        out = dst / src.name
        out.mkdir(parents=True, exist_ok=True)
        for i in selected:
            shutil.copy2(paths[i], out / paths[i].name)
        selected_total += len(selected)
        ks.append(best_k)
    return {"wall": time.perf_counter() - t_start, "selected": selected_total, "k": ks}


def _child(fn: Any, *args: Any) -> Any:
    return fn(*args)


def isolated(fn: Any, *args: Any) -> Any:
    """fn(*args) in a fresh process (its own imports and memory)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_child, fn, *args).result()


# -- repsample, through its CLI -----------------------------------------------------------------

def repsample_cli(python: str, src: Path, dst: Path, per_class: int, cache: Path,
                  user_cache: Path, overwrite: bool) -> dict[str, Any]:
    """``repsample select`` with its defaults in a fresh process: wall seconds (process start to
    exit) and run.json."""
    env = dict(os.environ, XDG_CACHE_HOME=str(user_cache))
    command = [python, "-m", "repsample", "select", str(src), str(dst),
               "--per-class", str(per_class), "--cache", str(cache)]
    if overwrite:
        command.append("--overwrite")
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"repsample failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    record = json.loads((dst / "run.json").read_text())
    return {"wall": wall, "record": record}


def installed(python: str) -> str:
    """Which inference packages the measured interpreter has: the install the figures describe."""
    probe = ("import importlib.util as u;"
             "print(', '.join(f'{m}: {\"yes\" if u.find_spec(m) else \"no\"}' "
             "for m in ('onnxruntime', 'openvino', 'torch')))")
    return subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip()


def stage_seconds(record: dict[str, Any]) -> dict[str, float]:
    """run.json's per-group ``seconds``, summed over the groups, stage by stage; and its
    run-wide ``seconds`` where it has them (stages outside any group)."""
    total: dict[str, float] = {f"{stage} (run-wide)": float(value)
                               for stage, value in record.get("seconds", {}).items()}
    for group in record["groups"].values():
        for stage, value in group.get("seconds", {}).items():
            total[stage] = total.get(stage, 0.0) + float(value)
    return total


# -- the run ------------------------------------------------------------------------------------

class Fresh:
    """A new user every time: a new --cache and a new XDG_CACHE_HOME, under the work folder."""

    def __init__(self, work: Path) -> None:
        self.work, self.count = work, 0

    def __call__(self) -> tuple[Path, Path]:
        self.count += 1
        home = self.work / f"user-{self.count}"
        shutil.rmtree(home, ignore_errors=True)
        return home / "embeddings.sqlite", home / "xdg-cache"


def compare(name: str, root: Path, folders: list[Path], per_class: int, work: Path,
            args: argparse.Namespace, fresh: Fresh) -> None:
    n = sum(1 for f in folders for p in f.iterdir() if p.is_file())
    runs = work / "runs" / root.name
    shutil.rmtree(runs, ignore_errors=True)
    orig = isolated(original_method, folders, runs / "orig", args.original_model,
                    args.original_weights, per_class)
    cache, user = fresh()
    first = repsample_cli(args.python, root, runs / "ours", per_class, cache, user, False)
    again = repsample_cli(args.python, root, runs / "ours", per_class, cache, user, True)
    groups = first["record"]["groups"]
    selected = sum(g["selected"] for g in groups.values())
    print(f"\n### {name}: {n} images in {len(folders)} group(s), --per-class {per_class}")
    print("| | wall, s | vs original |")
    print("|---|---:|---:|")
    print(f"| original ({args.original_model}, per image) | {orig['wall']:.1f} | 1.0x |")
    print(f"| repsample, first run | {first['wall']:.1f} | **{orig['wall'] / first['wall']:.1f}x** |")
    print(f"| repsample, rerun on unchanged data | {again['wall']:.1f} | "
          f"**{orig['wall'] / again['wall']:.1f}x** ({first['wall'] / again['wall']:.1f}x faster "
          f"than its first run) |")
    print(f"selected: original {orig['selected']}, repsample {selected}; "
          f"k: original {orig['k']}, repsample {[g['k'] for g in groups.values()]}")
    outside(first)
    sys.stdout.flush()


def outside(run: dict[str, Any]) -> None:
    """A first run's time outside the embed stage, stage by stage from run.json, and what run.json
    leaves out (wall - its stages: the process's exit)."""
    stages = stage_seconds(run["record"])
    wall, embed = run["wall"], stages.get("embed", 0.0)
    rest = {k: v for k, v in stages.items() if k != "embed" and v >= 0.05}
    print(f"first run outside the embed stage: {wall - embed:.1f} s = "
          f"**{100 * (wall - embed) / wall:.0f}%** of its wall (target < 15%): "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(rest.items(), key=lambda kv: -kv[1]))
          + f"; not in run.json: {wall - sum(stages.values()):.2f} s")


def alone(name: str, root: Path, per_class: int, work: Path, args: argparse.Namespace,
          fresh: Fresh) -> None:
    runs = work / "runs" / root.name
    shutil.rmtree(runs, ignore_errors=True)
    cache, user = fresh()
    first = repsample_cli(args.python, root, runs / "ours", per_class, cache, user, False)
    again = repsample_cli(args.python, root, runs / "ours", per_class, cache, user, True)
    stages = stage_seconds(first["record"])
    other = first["wall"] - sum(stages.values())
    embed = stages.get("embed", 0.0) + stages.get("hash", 0.0)
    print(f"\n### {name}: repsample alone, --per-class {per_class}, first run {first['wall']:.1f} s")
    print("| stage (run.json: per group, summed; and run-wide) | s | share of wall |")
    print("|---|---:|---:|")
    for stage, value in stages.items():
        print(f"| {stage} | {value:.1f} | {100 * value / first['wall']:.0f}% |")
    print(f"| not in run.json: the process's exit (wall - the above) | {other:.1f} | "
          f"{100 * other / first['wall']:.0f}% |")
    print(f"| **wall** | **{first['wall']:.1f}** | 100% |")
    if embed:
        print(f"everything but hashing and embedding: {first['wall'] - embed:.1f} s = "
              f"{100 * (first['wall'] - embed) / embed:.1f}% of them (target < 25%)")
    print(f"rerun on unchanged data: {again['wall']:.1f} s (target < 15 s)")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="200 / 240 (12 x 20, --per-class 6) / 500 / 2,000 images, --per-class 100")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter whose repsample is measured (default: this one)")
    parser.add_argument("--original-model", default="efficientnet-lite0")
    parser.add_argument("--original-weights", default="default")
    parser.add_argument("--root", type=Path, default=None,
                        help="work folder, images kept between runs (default: a temp dir)")
    args = parser.parse_args()
    work = args.root or Path(tempfile.mkdtemp(prefix="repsample-speed-"))
    if args.quick:
        photos, per_class, tree, tree_per_class, alone_n = (200, 500), 100, 20, 6, 2000
    else:
        photos, per_class, tree, tree_per_class, alone_n = (2000, 5000), 1000, 200, 60, 20000
    print(f"# speed bench{' (--quick)' if args.quick else ''}: work folder {work}")
    print(f"# repsample from {args.python} ({installed(args.python)}); {os.cpu_count()} CPUs; "
          f"original: {args.original_model} ({args.original_weights} weights)")
    fresh = Fresh(work)
    t0 = time.perf_counter()

    def photos_root(n: int) -> Path:
        root = work / f"photos{n}"
        if not (root / "photos").exists():
            photo_group(root / "photos", n, seed=n)
        return root

    compare(f"(a) {photos[0]} photos 512x384", photos_root(photos[0]),
            [photos_root(photos[0]) / "photos"], per_class, work, args, fresh)
    tree_root = work / f"tree{tree}"
    if not tree_root.exists():
        class_tree(tree_root, tree, seed=12)
    compare(f"(b) 12 folders of {tree} small JPEG/PNGs", tree_root,
            sorted(p for p in tree_root.iterdir() if p.is_dir()), tree_per_class, work, args, fresh)
    compare(f"(c) {photos[1]} photos 512x384", photos_root(photos[1]),
            [photos_root(photos[1]) / "photos"], per_class, work, args, fresh)
    alone(f"(d) {alone_n} photos 512x384", photos_root(alone_n), per_class, work, args, fresh)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nbench wall {time.perf_counter() - t0:.0f} s (largest child's peak RSS {peak:.0f} MiB)")


if __name__ == "__main__":
    main()
