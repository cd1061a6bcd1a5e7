"""int8 forms bench: drift and throughput of each static int8 form against fp32, side by side.

ONNX Runtime's x86 kernels for uint8 activations x int8 weights (U8S8) add pairs of products in
16 bits (VPMADDUBSW) on CPUs without VNNI, which can saturate: on an AVX2-only CPU the default
model's int8 vectors fell to a mean cosine of 0.87 to fp32. The forms measured:

- u8s8         uint8 activations, int8 weights: the form VNNI CPUs (and Arm) use; exact only there;
- u8full       u8s8, but uint8 weights in the full (not depthwise) convolutions: the form x86 CPUs
               without VNNI use (backends/quantize.int8_form);
- u8s8-w7      7-bit weights (reduce_range): a pair of products is at most 2 * 255 * 64 = 32640
               < 32767, so no kernel saturates;
- u8s8-w7full  7-bit weights in the full convolutions only;
- u8u8         uint8 weights everywhere: kernels that widen to 16 bits before multiplying;
- s8s8         int8 activations too (ONNX Runtime's default).

Real images: the shipped Fashion-MNIST examples and seeded crops of the Debian MATE wallpapers
(`apt-get install -y mate-backgrounds`), as bench/precision.py. Runs are interleaved, ratios are
to u8s8 and to fp32 in this run. Drift: each image's cosine to its fp32 vector, and the share of
its 10 nearest neighbours fp32 gives it too.

    python bench/int8_forms.py                         # this CPU, 3 rounds
    python bench/int8_forms.py --models /tmp/m         # keep the exports and int8 models
    # the drift on an AVX2-only CPU (AMD EPYC Rome: no AVX-512, no VNNI), emulated by QEMU's
    # user mode: its timings mean nothing, its vectors are what that CPU's kernels compute
    # and whether each form's vectors there are this CPU's (lowest cosine 1.000000: the same sums)
    python bench/int8_forms.py --models /tmp/m --rounds 0 --fashion-every 15 --per-wallpaper 1 \\
        --save here.npz
    qemu-x86_64 -cpu EPYC-Rome .venv/bin/python bench/int8_forms.py --models /tmp/m \\
        --rounds 0 --fashion-every 15 --per-wallpaper 1 --against here.npz
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from precision import fp32_export, load_images, ten_nearest  # bench/precision.py

from repsample.embedding.backends.onnx import OnnxRunner
from repsample.embedding.backends.quantize import (
    U8FULL,
    U8S8,
    Int8Form,
    cpu_flags,
    int8_form,
    quantize,
    quantized_path,
)
from repsample.models import get_model

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = (U8S8, U8FULL, Int8Form("u8s8-w7", weights="int7"), Int8Form("u8s8-w7full", full_convs="int7"),
              Int8Form("u8u8", weights="uint8"), Int8Form("s8s8", activations="int8"))


def runners(models: Path, threads: int) -> dict[str, OnnxRunner]:
    """fp32 and each int8 form, all from one fp32 export (torch imported only to make it)."""
    spec = get_model("efficientnet-lite0")
    fp32 = fp32_export(models, threads)
    out = {"fp32": fp32}
    for form in CANDIDATES:
        int8 = quantized_path(fp32.path, "static", form)
        if not int8.is_file():
            quantize(fp32.path, spec.preprocess, int8, "static", form)
        out[form.name] = OnnxRunner(int8, threads)
    return out


def embed(runner: OnnxRunner, batch: np.ndarray, size: int) -> np.ndarray:
    return np.vstack([runner(batch[i : i + size]) for i in range(0, len(batch), size)])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def drift(v: np.ndarray, ref: np.ndarray, parts: dict[str, slice]) -> list[str]:
    """Cosine mean and min per part, then the 10-NN overlap per part, as table cells."""
    cos = cosine(v, ref)
    cells = [f"{cos[s].mean():.4f} / {cos[s].min():.3f}" for s in parts.values()]
    for s in parts.values():
        mine, theirs = ten_nearest(v[s]), ten_nearest(ref[s])
        cells.append(f"{np.mean([len(set(a) & set(b)) / 10 for a, b in zip(mine, theirs, strict=True)]):.3f}")
    return cells


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (0: drift only)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fashion-every", type=int, default=1, help="every n-th Fashion-MNIST example")
    p.add_argument("--per-wallpaper", type=int, default=10, help="crops per MATE wallpaper")
    p.add_argument("--models", type=Path, default=None, help="export folder [default: a temp one]")
    p.add_argument("--save", type=Path, default=None, help="write the vectors to this .npz")
    p.add_argument("--against", type=Path, default=None,
                   help="a --save of another CPU's run (same options): each form's lowest cosine to it")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    flags = cpu_flags()
    print(f"CPU: {platform.machine()}, " + ", ".join(f"{f} {'yes' if f in flags else 'no'}"
                                                     for f in ("avx2", "avx512f", "avx512vnni"))
          + f"; repsample's int8 form here: {int8_form(flags, platform.machine()).name}")
    batch, n_fashion = load_images(args.per_wallpaper, args.fashion_every)
    print(f"{len(batch)} images: {n_fashion} Fashion-MNIST, {len(batch) - n_fashion} photo crops; "
          f"{args.threads} threads, batches of {args.batch}")
    run = runners(args.models or Path(tempfile.mkdtemp(prefix="int8-forms-")), args.threads)
    vectors = {name: embed(r, batch, args.batch) for name, r in run.items()}  # also warms up
    if args.save:
        np.savez(args.save, **vectors)
    if args.against:
        other = np.load(args.against)
        print("lowest cosine to the other CPU's vectors: " + ", ".join(
            f"{name} {cosine(v, other[name]).min():.6f}" for name, v in vectors.items() if name in other))
    seconds = dict.fromkeys(run, 0.0)
    for _ in range(args.rounds):
        for name, r in run.items():
            t0 = time.perf_counter()
            embed(r, batch, args.batch)
            seconds[name] += time.perf_counter() - t0
    parts = {"all": slice(None), "fashion": slice(0, n_fashion), "photos": slice(n_fashion, None)}
    print("\n| form | img/s | vs u8s8 | vs fp32 | cosine mean / min: all | fashion | photos "
          "| 10-NN overlap: all | fashion | photos |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, v in vectors.items():
        if args.rounds:
            rate = f"{args.rounds * len(batch) / seconds[name]:.0f}"
            ratios = [f"{seconds[base] / seconds[name]:.2f}x" for base in ("u8s8", "fp32")]
        else:
            rate, ratios = "-", ["-", "-"]
        print(f"| {name} | {rate} | " + " | ".join(ratios + drift(v, vectors["fp32"], parts)) + " |")


if __name__ == "__main__":
    main()
