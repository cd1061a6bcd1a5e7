"""Local engine vs Ray engine on the same images, plus the per-image costs docs/scaling.md extrapolates.

Images: 640x480 JPEG crops (quality 90) of Debian's MATE photos, split into 2 groups. Every run
starts from an empty embedding cache (the ONNX export is made once beforehand, outside the timing).
Printed, for each dataset size: wall seconds of the fingerprint+decode+embed stage per engine
(median of --repeats) and the ratio Ray/local; then a fit wall = fixed + per_image * N per engine
(two sizes), Ray's own start-up, and single-core per-image costs of read+hash, decode+preprocess
and the model forward pass. The CPU is shared: trust the ratios and medians, not one absolute time.

    python bench/scaling.py --images 256,1024 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from repsample.cache import ContentCache
from repsample.embedding.decode import decode_image
from repsample.embedding.embed import Embedder
from repsample.embedding.engines import EmbedOptions, run_embed_stage
from repsample.inputs.folder import scan
from repsample.progress import SilentProgress

PHOTOS = Path("/usr/share/backgrounds/mate")


def make_images(root: Path, n: int) -> None:
    sources = sorted(p for p in PHOTOS.rglob("*.jpg"))
    rng = np.random.default_rng(0)
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = rng.uniform(0.3, 1.0)
            cw, ch = int(w * scale), int(h * scale)
            x, y = int(rng.uniform(0, w - cw)), int(rng.uniform(0, h - ch))
            crop = img.crop((x, y, x + cw, y + ch)).resize((640, 480))
        out = root / f"group{i % 2}" / f"img_{i:05d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        crop.save(out, quality=90)


def embed_stage_seconds(root: Path, work: Path, engine: str, workers: int, batch: int) -> float:
    cache = work / f"cache-{engine}-{time.monotonic_ns()}.sqlite"  # fresh cache, shared models dir
    groups = scan(root)
    embedder = Embedder(device="cpu", models_dir=work / "models")
    t0 = time.perf_counter()
    with ContentCache(cache) as db:
        run_embed_stage(engine, groups, db, embedder, EmbedOptions(batch, workers, "cpu"), SilentProgress())
    return time.perf_counter() - t0


def per_image_costs(root: Path, work: Path, batch: int) -> dict[str, float]:
    """Milliseconds per image on one core: read+hash, decode+preprocess, model forward."""
    import torch

    torch.set_num_threads(1)
    files = sorted(root.rglob("*.jpg"))[:batch * 2]
    embedder = Embedder(device="cpu", models_dir=work / "models")
    embedder.load()
    pre = embedder.spec.preprocess
    t0 = time.perf_counter()
    blobs = [f.read_bytes() for f in files]
    _ = [hashlib.sha256(b).hexdigest() for b in blobs]
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    arrays = [pre(decode_image(io.BytesIO(b), pre.draft_size)) for b in blobs]
    decode = time.perf_counter() - t0
    stacked = np.stack(arrays)
    t0 = time.perf_counter()
    for start in range(0, len(stacked), batch):
        embedder(stacked[start:start + batch])
    model = time.perf_counter() - t0
    n = len(files)
    return {"read+hash": 1000 * read / n, "decode+preprocess": 1000 * decode / n,
            "model (1 thread)": 1000 * model / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="256,1024", help="comma-separated dataset sizes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    sizes = [int(x) for x in args.images.split(",")]
    import ray

    medians: dict[str, dict[int, float]] = {"local": {}, "ray": {}}
    with tempfile.TemporaryDirectory(prefix="repsample-scaling-") as tmp:
        work = Path(tmp)
        Embedder(device="cpu", models_dir=work / "models").load()  # export once
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        startup = time.perf_counter() - t0
        print(f"{os.cpu_count()} CPUs, batch {args.batch_size}, {args.repeats} repeats, "
              f"python {sys.version.split()[0]}, 640x480 JPEGs in 2 groups")
        print(f"ray.init(num_cpus=2): {startup:.1f} s (not in the times below)")
        for n in sizes:
            root = work / f"images-{n}"
            make_images(root, n)
            times: dict[str, list[float]] = {"local": [], "ray": []}
            for _ in range(args.repeats):  # interleaved, so both see the same background load
                times["local"].append(embed_stage_seconds(root, work, "local", 2, args.batch_size))
                times["ray"].append(embed_stage_seconds(root, work, "ray", 2, args.batch_size))
            for engine, values in times.items():
                medians[engine][n] = med = statistics.median(values)
                print(f"N={n:5d} {engine:5s} engine, 2 workers: median {med:6.2f} s ({n / med:5.1f} img/s), "
                      f"runs {', '.join(f'{v:.2f}' for v in values)}")
            print(f"N={n:5d} ray / local wall time: {medians['ray'][n] / medians['local'][n]:.2f}")
        ray.shutdown()
        costs = per_image_costs(work / f"images-{sizes[-1]}", work, args.batch_size)

    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        for engine, by_n in medians.items():
            per = (by_n[hi] - by_n[lo]) / (hi - lo)
            print(f"fit {engine:5s}: fixed {by_n[lo] - per * lo:5.2f} s + {1000 * per:.2f} ms/image "
                  f"({1 / per:.1f} img/s once running)")
    for name, ms in costs.items():
        print(f"per image, one core: {name:18s} {ms:.2f} ms")


if __name__ == "__main__":
    main()
