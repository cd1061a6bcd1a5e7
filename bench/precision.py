"""Precision bench: throughput and drift of int8 (static, dynamic) and bf16 against fp32.

Real images: the shipped Fashion-MNIST examples (examples/fashion) and seeded 512x384 crops of the
Debian MATE wallpapers (`apt-get install -y mate-backgrounds`), decoded and preprocessed once, so
the timings are the model's alone. Every runner is built from the same fp32 ONNX export of the
default model; the runs are interleaved (fp32, int8, ..., fp32, int8, ...) so a machine shared
with other work slows them alike, and each ratio is to fp32 in this run.

Drift: per image, the cosine of its vector to fp32's, and the share of its 10 nearest neighbours
(cosine, over the whole set) that fp32 gives it too.

    python bench/precision.py                        # all precisions, 3 rounds
    python bench/precision.py --rounds 1 --threads 2
    python bench/precision.py --compare fp32=fp32.json int8=int8.json   # bench/quality.py --json
                                                                        # outputs, side by side
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from repsample.embedding.backends.onnx import OnnxRunner

ROOT = Path(__file__).resolve().parent.parent
WALLPAPERS = Path("/usr/share/backgrounds/mate")


def photo_crops(per_image: int, seed: int = 0) -> list[Image.Image]:
    """Seeded 512x384 crops of the MATE wallpapers: photo-like content at a common size."""
    rng = np.random.default_rng(seed)
    crops = []
    for path in sorted(WALLPAPERS.rglob("*.jpg")):
        with Image.open(path) as img:
            img.draft("RGB", (img.width // 2, img.height // 2))
            rgb = img.convert("RGB")
        for _ in range(per_image):
            w = int(rng.integers(512, max(513, rgb.width)))
            h = min(rgb.height, w * 3 // 4)
            x, y = int(rng.integers(0, rgb.width - w + 1)), int(rng.integers(0, rgb.height - h + 1))
            crops.append(rgb.crop((x, y, x + w, y + h)).resize((512, 384), Image.Resampling.BILINEAR))
    return crops


def load_images(per_wallpaper: int, fashion_every: int = 1) -> tuple[np.ndarray, int]:
    """(preprocessed batch, how many are Fashion-MNIST: every fashion_every-th) for the default model."""
    from repsample.embedding.decode import decode_image
    from repsample.models import get_model

    pre = get_model("efficientnet-lite0").preprocess
    fashion = sorted((ROOT / "examples" / "fashion").rglob("*.png"))[::fashion_every]
    arrays = [pre(decode_image(p, pre.draft_size)) for p in fashion]
    arrays += [pre(img) for img in photo_crops(per_wallpaper)]
    return np.stack(arrays), len(fashion)


def fp32_export(models: Path, threads: int) -> OnnxRunner:
    """The default model's fp32 ONNX export in models, made there first if absent (torch imported
    only to make it)."""
    from repsample.embedding.backends.onnx import export_checked, export_name, load_export
    from repsample.models import get_model, model_key

    spec = get_model("efficientnet-lite0")
    path = models / export_name(model_key(spec, "default"))
    fp32 = load_export(path, threads) or export_checked(spec.build("default"), spec.preprocess.size,
                                                        path, threads)
    if fp32 is None:
        raise SystemExit("the ONNX export failed; see the log")
    return fp32


def runners(models: Path, threads: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """fp32 (ONNX Runtime), int8 static and dynamic, bf16 (OpenVINO) where this machine has it."""
    import torch

    from repsample.embedding.backends.onnx import OnnxRunner
    from repsample.embedding.backends.quantize import quantize, quantized_path
    from repsample.models import get_model

    spec = get_model("efficientnet-lite0")
    fp32 = fp32_export(models, threads)
    torch.set_num_threads(threads)
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {"fp32": fp32}
    for method in ("static", "dynamic"):
        path = quantized_path(fp32.path, method)
        if not path.is_file():
            quantize(fp32.path, spec.preprocess, path, method)
        out[f"int8-{method}"] = OnnxRunner(path, threads)
    if importlib.util.find_spec("openvino") is not None:
        from repsample.embedding.backends.openvino import OpenVinoRunner
        from repsample.errors import RepsampleError

        try:
            out["bf16"] = OpenVinoRunner(fp32.path, threads)
        except RepsampleError as exc:
            print(f"bf16 not measured: {exc}")
    else:
        print("bf16 not measured: pip install 'repsample[openvino]'")
    return out


def ten_nearest(E: np.ndarray) -> np.ndarray:
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :10]


QUALITY = (("accuracy", "probe acc", 1, 100), ("coverage_mean", "cover mean", 2, 1),
           ("coverage_max", "cover max", 2, 1), ("mmd", "MMD", 3, 1), ("cluster_tv", "cluster TV", 3, 1),
           ("rare_hit", "rare hit", 2, 1), ("rare_share", "rare %", 2, 100))
HIGHER_IS_BETTER = {"accuracy", "rare_hit"}


def compare(runs: list[tuple[str, list[dict[str, Any]]]], strategy: str = "herding") -> str:
    """bench/quality.py results side by side per budget, the first run the reference: ``!`` marks
    a mean worse than the reference's by more than the reference's standard deviation."""

    def stats(rows: list[dict[str, Any]], metric: str, scale: float) -> tuple[float, float]:
        v = np.asarray([r[metric] for r in rows]) * scale
        return float(v.mean()), float(v.std())

    name0, base = runs[0]
    lines = []
    for budget in sorted({r["budget"] for r in base}):
        lines += ["", f"#### {budget:.0f} per class", "",
                  "| selection made with | " + " | ".join(c[1] for c in QUALITY) + " |",
                  "|---|" + "---:|" * len(QUALITY)]
        rnd = [r for r in base if r["budget"] == budget and r["strategy"] == "random"]
        cells = [f"{mean:.{d}f}±{std:.{d}f}"
                 for (mean, std), d in ((stats(rnd, m, s), d) for m, _, d, s in QUALITY)]
        lines.append(f"| random ({name0} run) | " + " | ".join(cells) + " |")
        ref = {m: stats([r for r in base if r["budget"] == budget and r["strategy"] == strategy], m, s)
               for m, _, _, s in QUALITY}
        for name, results in runs:
            rows = [r for r in results if r["budget"] == budget and r["strategy"] == strategy]
            row = []
            for metric, _, digits, scale in QUALITY:
                mean, std = stats(rows, metric, scale)
                loss = ref[metric][0] - mean if metric in HIGHER_IS_BETTER else mean - ref[metric][0]
                worse = name != name0 and metric != "rare_share" and loss > ref[metric][1] + 1e-12
                row.append(f"{mean:.{digits}f}±{std:.{digits}f}" + ("!" if worse else ""))
            lines.append(f"| {strategy}, {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--per-wallpaper", type=int, default=25, help="crops per MATE wallpaper")
    p.add_argument("--models", type=Path, default=None, help="export folder [default: a temp one]")
    p.add_argument("--compare", nargs="+", default=None, metavar="NAME=JSON",
                   help="print bench/quality.py --json results side by side (first = reference)")
    args = p.parse_args()
    if args.compare:
        pairs = [a.split("=", 1) for a in args.compare]
        print(compare([(name, json.loads(Path(path).read_text())) for name, path in pairs]))
        return
    logging.basicConfig(level=logging.WARNING)
    batch, n_fashion = load_images(args.per_wallpaper)
    print(f"{len(batch)} images: {n_fashion} Fashion-MNIST, {len(batch) - n_fashion} photo crops; "
          f"{args.threads} threads, batches of {args.batch}")
    models = args.models or Path(tempfile.mkdtemp(prefix="precision-models-"))
    run = runners(models, args.threads)
    vectors = {name: np.vstack([r(batch[i : i + args.batch]) for i in range(0, len(batch), args.batch)])
               for name, r in run.items()}  # also warms every runner up
    seconds = dict.fromkeys(run, 0.0)
    for _ in range(args.rounds):
        for name, r in run.items():
            t0 = time.perf_counter()
            for i in range(0, len(batch), args.batch):
                r(batch[i : i + args.batch])
            seconds[name] += time.perf_counter() - t0
    base_nn = ten_nearest(vectors["fp32"])
    parts = {"all": slice(None), "fashion": slice(0, n_fashion), "photos": slice(n_fashion, None)}
    nn = {part: ten_nearest(vectors["fp32"][s]) for part, s in parts.items()}
    print("\n| precision | img/s | vs fp32 | cosine mean | cosine min | 10-NN overlap "
          "(all / fashion / photos) | same 10-NN set |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in run:
        rate = args.rounds * len(batch) / seconds[name]
        ratio = seconds["fp32"] / seconds[name]
        v = vectors[name]
        cos = np.sum(v * vectors["fp32"], 1) / (
            np.linalg.norm(v, axis=1) * np.linalg.norm(vectors["fp32"], axis=1))
        overlaps = []
        for part, s in parts.items():
            mine = ten_nearest(v[s])
            overlaps.append(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(mine, nn[part], strict=True)]))
        same = np.mean([set(a) == set(b) for a, b in zip(ten_nearest(v), base_nn, strict=True)])
        print(f"| {name} | {rate:.0f} | {ratio:.2f}x | {cos.mean():.4f} | {cos.min():.4f} | "
              + " / ".join(f"{o:.3f}" for o in overlaps) + f" | {same:.3f} |")


if __name__ == "__main__":
    main()
