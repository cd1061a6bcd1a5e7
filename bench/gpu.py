"""GPU bench (issue 12, item 6): what repsample gives on a CUDA device, in one run.

  (1) embedding throughput of the default model per precision (fp32, fp16, bf16 autocast), with
      each reduced precision's drift from fp32: mean cosine and the 10-nearest-neighbour overlap
      on real images (Fashion-MNIST from examples/, photo-like crops);
  (2) end to end against the original method on N photo-like JPEGs in one group
      (bench/speed.py's comparison: the original's loop, repsample's first run and its rerun);
  (3) clustering: choose_k on M x 1280 vectors (repsample clusters with scikit-learn on the CPU
      on every device; the line says so, so the table never passes a CPU figure off as GPU).

    bash bench/gpu.sh                         # on a machine with a CUDA GPU
    python bench/gpu.py --device cpu --quick  # the same code paths on the CPU (a smoke run)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
EXAMPLE = Path(__file__).parent.parent / "examples" / "fashion"


def images(n: int, work: Path) -> list[Path]:
    """Real images: the example's Fashion-MNIST files, then photo-like crops up to n."""
    from speed import photo_group

    paths = sorted(EXAMPLE.rglob("*.png"))[:n]
    if len(paths) < n:
        photo_group(work / "crops", n - len(paths), seed=1)
        paths += sorted((work / "crops").glob("*.jpg"))
    return paths


def throughput(device: str, paths: list[Path], batch: int, passes: int) -> None:
    from repsample.embedding.decode import decode_image
    from repsample.embedding.embed import Embedder

    reference: np.ndarray | None = None
    print(f"\n(1) embedding, efficientnet-lite0, {len(paths)} images, batch {batch}, {device}")
    print("| precision | images/s (median of passes) | mean cosine to fp32 | 10-NN overlap with fp32 |")
    print("|---|---:|---:|---:|")
    for precision in ("fp32", "fp16", "bf16"):
        try:
            embedder = Embedder(device=device, precision=precision, backend="torch")
            pre = embedder.spec.preprocess
            pixels = np.stack([pre(decode_image(p, pre.draft_size)) for p in paths])
            embedder(pixels[:batch])  # warm-up: model load, kernels, autotuning
        except Exception as exc:  # a precision this device cannot run: say so, go on
            print(f"| {precision} | not run ({type(exc).__name__}: {exc}) | | |")
            continue
        rates, vectors = [], np.empty(0)
        for _ in range(passes):
            t0 = time.perf_counter()
            vectors = np.concatenate([embedder(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])
            rates.append(len(pixels) / (time.perf_counter() - t0))
        if reference is None:
            reference = vectors
        cosine, overlap = drift(reference, vectors)
        print(f"| {precision} | {statistics.median(rates):.0f} | {cosine:.5f} | {overlap:.3f} |")


def drift(reference: np.ndarray, vectors: np.ndarray, k: int = 10) -> tuple[float, float]:
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = float(np.mean(np.sum(a * b, axis=1)))

    def neighbours(u: np.ndarray) -> np.ndarray:
        sims = u @ u.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    na, nb = neighbours(a), neighbours(b)
    overlap = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb, strict=True)]))
    return cosine, overlap


def end_to_end(n: int, work: Path) -> None:
    import speed

    args = argparse.Namespace(python=sys.executable, original_model="efficientnet-lite0",
                              original_weights="default")
    root = work / f"photos{n}"
    if not (root / "photos").exists():
        speed.photo_group(root / "photos", n, seed=n)
    print(f"\n(2) end to end, {n} photo-like JPEGs in one group, --per-class 1000 (device auto)")
    speed.compare(f"{n} photos", root, [root / "photos"], 1000, work, args, speed.Fresh(work))


def clustering(m: int) -> None:
    from repsample.selection.cluster import choose_k

    rng = np.random.default_rng(0)
    centres = np.abs(rng.normal(0, 1, (20, 1280))).astype(np.float32)
    X = centres[rng.integers(0, 20, m)] + rng.exponential(0.5, (m, 1280)).astype(np.float32)
    t0 = time.perf_counter()
    result = choose_k(X)
    print(f"\n(3) choose_k on {m} x 1280 (scikit-learn, on the CPU: repsample has no GPU clustering): "
          f"{time.perf_counter() - t0:.1f} s, k = {result.k}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            sys.exit("no CUDA device: nothing measured (run with --device cpu for a smoke run)")
        print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    work = args.root or Path(tempfile.mkdtemp(prefix="repsample-gpu-"))
    n_images, n_photos, m_vectors = (64, 60, 5_000) if args.quick else (2_000, 20_000, 1_000_000)
    throughput(args.device, images(n_images, work), 16 if args.quick else 256, 3)
    end_to_end(n_photos, work)
    clustering(m_vectors)


if __name__ == "__main__":
    main()
