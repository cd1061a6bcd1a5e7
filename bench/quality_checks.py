"""Image quality bench: repsample's checks beside cleanvision's on planted issues (issue 25).

One class folder of JPEGs (quality 90) cut from Debian's 27 packaged colour photographs
(bench/photo_modes.py), written under --root once per (--clean, --per-strength, --seed):

- ``--clean`` clean crops: a random region of a random photograph, side (square root of the area)
  256-768 px, aspect 3:4 to 4:3;
- ``--per-strength`` planted crops per issue and strength, each with one issue and nothing else
  changed: ``blurry`` (Gaussian blur of radius 2, 3, 5 px per 400 px of the crop's shorter side:
  the same blur to the eye, and to a model, at any crop size), ``dark`` (gamma 2.5, 3.5, 5, 8) and
  ``light`` (gamma 1/2.5, 1/3.5, 1/5, 1/8) of normally exposed crops (median grey 80-170: an
  already dark crop made darker says nothing), ``low_information`` (one flat colour, flat + grey
  noise of sigma 2-6, flat + a faint gradient of 16 levels), ``grayscale`` (RGB files whose three
  channels are equal, three times as many: one strength), ``odd_aspect`` (3:1, 4:1, 6:1, either
  way round, the area of a clean crop), ``odd_size`` (squares of 24, 40, 64 px).

A file's name is its truth: ``clean_0001.jpg``, ``blurry_r3_005.jpg``, ``odd_aspect_a6_011.jpg``.
All of them sit in ONE folder, so both tools judge them as one group.

In one run: the real CLI ``repsample check DATA OUT --cache FRESH`` (this Python, a fresh cache;
its OUT/issues.csv), timed, and timed again on the same cache (a rerun); cleanvision's
``Imagelab(data_path=DATA).find_issues()`` with its defaults, timed, its issue columns mapped to
repsample's (``CLEANVISION``). Printed per issue type: planted, recall (and per strength),
precision, for both tools; clean crops flagged; seconds. Then repsample's scores on the clean
crops (1st, 50th, 99th percentile) against each planted strength's; and the added cost of the
measures: the embed stage (decode, model, cache) with and without them, alternated three times
on fresh caches in this process, on the crops and on the 27 photographs themselves.

    apt-get install -y mate-backgrounds lomiri-wallpapers-16.04; pip install 'repsample[bench]'
    python bench/quality_checks.py --root /tmp/quality_checks --json quality_checks.json  # docs
    python bench/quality_checks.py --clean 60 --per-strength 2           # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).parent))  # photo_modes.py: the packaged photographs
from photo_modes import photographs

from repsample.cache import ContentCache
from repsample.embedding.decode import decode_sized, decode_workers
from repsample.embedding.descriptor import SOURCE_SIZE
from repsample.embedding.quality import measure_image
from repsample.hygiene.quality import CHECKS, assess_group
from repsample.output.layout import ISSUE_TYPES, ISSUES_CSV

CLEANVISION = {"blurry": "is_blurry_issue", "dark": "is_dark_issue", "light": "is_light_issue",
               "low_information": "is_low_information_issue", "grayscale": "is_grayscale_issue",
               "odd_aspect": "is_odd_aspect_ratio_issue", "odd_size": "is_odd_size_issue"}
"""cleanvision's issue column for each of repsample's issue types."""
CLEAN = "clean"
FOLDER = "photos"  # the one class folder

Plant = Callable[[Image.Image, random.Random], Image.Image]  # (a photograph, rng) -> planted image
Scores = Mapping[str, Mapping[str, float]]  # file name -> repsample's scores


def region(photo: Image.Image, rng: random.Random, aspect: float, side: int) -> Image.Image:
    """A random region of the photograph of this aspect (width / height), resized to ``side``
    squared pixels; the region is never smaller than the output unless the photograph is."""
    w, h = max(1, round(side * math.sqrt(aspect))), max(1, round(side / math.sqrt(aspect)))
    largest = min(photo.width / w, photo.height / h)  # the biggest region, in output sizes
    scale = rng.uniform(max(min(1.0, largest), 0.3 * largest), largest)
    cw, ch = min(photo.width, round(w * scale)), min(photo.height, round(h * scale))
    x, y = rng.randint(0, photo.width - cw), rng.randint(0, photo.height - ch)
    return photo.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.LANCZOS)


def clean_crop(photo: Image.Image, rng: random.Random) -> Image.Image:
    return region(photo, rng, rng.uniform(3 / 4, 4 / 3), rng.randint(256, 768))


def gamma(image: Image.Image, g: float) -> Image.Image:
    """Every channel through x ** g (g > 1 darkens, g < 1 brightens)."""
    lut = [min(255, round(255 * (i / 255) ** g)) for i in range(256)]
    return image.point(lut * 3)


def near_blank(kind: str) -> Plant:
    """A clean crop's size and mean colour, flat; with grey noise or a faint gradient."""
    def plant(photo: Image.Image, rng: random.Random) -> Image.Image:
        crop = clean_crop(photo, rng)
        pixels = np.empty((crop.height, crop.width, 3), np.float64)
        pixels[:] = np.asarray(crop, np.float64).reshape(-1, 3).mean(axis=0)
        if kind == "noise":
            noise = np.random.default_rng(rng.getrandbits(32)).standard_normal((crop.height, crop.width, 1))
            pixels += rng.uniform(2, 6) * noise
        elif kind == "gradient":
            pixels += np.linspace(-8, 8, crop.width)[None, :, None]
        return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return plant


def elongated(ratio: float) -> Plant:
    def plant(photo: Image.Image, rng: random.Random) -> Image.Image:
        return region(photo, rng, ratio if rng.random() < 0.5 else 1 / ratio, rng.randint(256, 768))
    return plant


def tiny(side: int) -> Plant:
    def plant(photo: Image.Image, rng: random.Random) -> Image.Image:
        return region(photo, rng, 1.0, 256).resize((side, side), Image.Resampling.LANCZOS)
    return plant


def exposed_crop(photo: Image.Image, rng: random.Random) -> Image.Image:
    """A clean crop whose median grey level is 80-170 (the first of 50 tries that is)."""
    for _ in range(50):
        crop = clean_crop(photo, rng)
        if 80 <= np.median(np.asarray(crop.convert("L"))) <= 170:
            break
    return crop


def plants() -> dict[str, dict[str, tuple[Plant, int]]]:
    """Per issue type, per strength: how to plant it and how many per --per-strength image."""
    def blur(r: int) -> Plant:
        def plant(p: Image.Image, rng: random.Random) -> Image.Image:
            crop = clean_crop(p, rng)
            return crop.filter(ImageFilter.GaussianBlur(r * min(crop.size) / 400))
        return plant

    def darken(g: float) -> Plant:
        return lambda p, rng: gamma(exposed_crop(p, rng), g)

    def grey(p: Image.Image, rng: random.Random) -> Image.Image:
        return ImageOps.grayscale(clean_crop(p, rng)).convert("RGB")

    return {"blurry": {f"r{r}": (blur(r), 1) for r in (2, 3, 5)},
            "dark": {f"g{g}": (darken(g), 1) for g in (2.5, 3.5, 5, 8)},
            "light": {f"g1-{g}": (darken(1 / g), 1) for g in (2.5, 3.5, 5, 8)},
            "low_information": {k: (near_blank(k), 1) for k in ("flat", "noise", "gradient")},
            "grayscale": {"equal": (grey, 3)},
            "odd_aspect": {f"a{r}": (elongated(r), 1) for r in (3, 4, 6)},
            "odd_size": {f"s{s}": (tiny(s), 1) for s in (24, 40, 64)}}


def write_set(root: Path, clean: int, per_strength: int, seed: int) -> Path:
    """ROOT/v2_c<clean>_p<per>_s<seed>/photos/*.jpg (a finished folder is left as it is; v2:
    blur relative to the crop's size, dark and light from normally exposed crops)."""
    data = root / f"v2_c{clean}_p{per_strength}_s{seed}"
    folder = data / FOLDER
    if (data / "complete.json").is_file():
        return folder
    rng = random.Random(seed)
    photos = []
    for path in photographs():
        with Image.open(path) as im:
            im.draft("RGB", (1600, 1600))  # 768 px crops need no more; halves the bigger photographs
            photos.append(ImageOps.exif_transpose(im).convert("RGB"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(clean):
        clean_crop(rng.choice(photos), rng).save(folder / f"{CLEAN}_{i:04d}.jpg", quality=90)
    for issue, strengths in plants().items():
        for strength, (plant, times) in strengths.items():
            for i in range(per_strength * times):
                plant(rng.choice(photos), rng).save(folder / f"{issue}_{strength}_{i:03d}.jpg", quality=90)
    (data / "complete.json").write_text(json.dumps({"clean": clean, "per_strength": per_strength,
                                                    "seed": seed}))
    return folder


def truth(name: str) -> tuple[str, str]:
    """(issue or "clean", strength) from a file name."""
    stem = Path(name).stem
    for issue in ISSUE_TYPES:
        if stem.startswith(issue + "_"):
            return issue, stem[len(issue) + 1 :].rsplit("_", 1)[0]
    return CLEAN, ""


def run_repsample(folder: Path, work: Path) -> tuple[dict[str, set[str]], float, float]:
    """repsample check's issues per file name, its seconds on a fresh cache and on a rerun."""
    cache = work / "cache.db"
    seconds = []
    for out in (work / "first", work / "rerun"):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "repsample", "check", str(folder.parent), str(out),
                        "--cache", str(cache), "--quiet"], check=True)
        seconds.append(time.perf_counter() - t0)
    flags: dict[str, set[str]] = {}
    with open(work / "first" / ISSUES_CSV, newline="") as fh:
        for row in csv.DictReader(fh):
            flags.setdefault(Path(row["path"]).name, set()).add(row["issue"])
    return flags, seconds[0], seconds[1]


def run_cleanvision(folder: Path) -> tuple[dict[str, set[str]], float]:
    """cleanvision's issues (its defaults), mapped to repsample's names, per file name; seconds."""
    try:
        from cleanvision import Imagelab
    except ImportError:
        sys.exit("cleanvision is missing: pip install 'repsample[bench]'")
    t0 = time.perf_counter()
    lab = Imagelab(data_path=str(folder))
    lab.find_issues()
    seconds = time.perf_counter() - t0
    flags: dict[str, set[str]] = {}
    for path, row in lab.issues.iterrows():
        hit = {ours for ours, theirs in CLEANVISION.items() if theirs in row and bool(row[theirs])}
        if hit:
            flags[Path(str(path)).name] = hit
    return flags, seconds


def score_tool(names: Iterable[str], flags: Mapping[str, set[str]]) -> dict[str, Any]:
    """Recall (all and per strength) and precision per issue type; clean files flagged."""
    known = {name: truth(name) for name in names}
    clean = [n for n, (issue, _) in known.items() if issue == CLEAN]
    issues: dict[str, Any] = {}
    for issue in ISSUE_TYPES:
        planted = [n for n, (i, _) in known.items() if i == issue]
        called = [n for n in known if issue in flags.get(n, set())]
        hits = [n for n in planted if issue in flags.get(n, set())]
        strengths = sorted({known[n][1] for n in planted}, key=_strength_order)
        issues[issue] = {
            "planted": len(planted), "caught": len(hits), "flagged": len(called),
            "recall": len(hits) / len(planted) if planted else math.nan,
            "by_strength": {s: _share([issue in flags.get(n, set()) for n in planted if known[n][1] == s])
                            for s in strengths},
            "precision": len(hits) / len(called) if called else math.nan,
            "flagged_as": _count(known[n][0] for n in called)}
    clean_flags = {i: sum(i in flags.get(n, set()) for n in clean) for i in ISSUE_TYPES}
    return {"issues": issues, "clean": len(clean),
            "clean_flagged": sum(bool(flags.get(n)) for n in clean), "clean_flagged_by_issue": clean_flags}


def _strength_order(strength: str) -> tuple[float, str]:
    digits = strength.replace("g1-", "").lstrip("rgas")
    try:
        return float(digits), strength
    except ValueError:
        return math.inf, strength


def _share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else math.nan


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def measure_files(files: list[Path]) -> tuple[Scores, dict[str, set[str]]]:
    """Every file's repsample scores and issues as assess_group gives them for the one group (the
    same as check's, unless the embed stage measured other pixels)."""
    vectors = [measure_image(*decode_sized(path, SOURCE_SIZE)) for path in files]
    group = assess_group(vectors)
    scores = {p.name: im.scores for p, im in zip(files, group.images, strict=True)}
    issues = {p.name: set(im.issues) for p, im in zip(files, group.images, strict=True) if im.issues}
    return scores, issues


def added_cost(sets: Mapping[str, list[Path]], trials: int = 3) -> dict[str, Any]:
    """The embed stage's seconds (decode, model, cache) with the quality measures and without
    them (``measure_image`` swapped for a no-op in embed.py: the only way to run the stage without
    them), alternated on fresh caches in this one process; medians, and the share added."""
    import repsample.embedding.embed as embed

    real = embed.measure_image
    embedder = embed.Embedder()
    embedder.load()  # the export is made once, outside the timings
    out: dict[str, Any] = {}
    for name, files in sets.items():
        hashes = [f"{i:064x}" for i in range(len(files))]  # each file its own content: all decoded
        times: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(trials):
            for variant in times:
                embed.measure_image = real if variant == "with" else (lambda image, size: None)
                with tempfile.TemporaryDirectory() as tmp, ContentCache(Path(tmp) / "c.db") as cache:
                    t0 = time.perf_counter()
                    embed.compute_missing(files, hashes, embedder, cache, 64, decode_workers())
                    times[variant].append(time.perf_counter() - t0)
        embed.measure_image = real
        with_, without = statistics.median(times["with"]), statistics.median(times["without"])
        out[name] = {"images": len(files), "with_s": round(with_, 3), "without_s": round(without, 3),
                     "added": round(with_ / without - 1, 4), "runs": times}
    return out


def score_spread(scores: Scores) -> dict[str, Any]:
    """Per check: its score on the clean crops (percentiles 1, 50, 99) and per planted strength
    (min, median, max), so a threshold can be read against both."""
    out: dict[str, Any] = {}
    for check in CHECKS:
        clean = _score_values(scores, check.score, (CLEAN, ""))
        planted = {}
        for strength in plants()[check.name]:
            v = _score_values(scores, check.score, (check.name, strength))
            planted[strength] = [float(v.min()), float(np.median(v)), float(v.max())] if v.size else []
        out[check.name] = {
            "score": check.score, "rule": check.rule, "planted_min_median_max": planted,
            "clean_p1_p50_p99": np.percentile(clean, [1, 50, 99]).tolist() if clean.size else []}
    return out


def _score_values(scores: Scores, column: str, kind: tuple[str, str]) -> np.ndarray:
    """One score of the files of one kind (issue, strength), NaNs left out."""
    got = [s[column] for name, s in scores.items() if truth(name) == kind]
    return np.asarray([v for v in got if not math.isnan(v)], np.float64)


def print_tables(result: Mapping[str, Any]) -> None:
    tools = result["tools"]
    print("| issue | planted | tool | recall | recall per strength | precision |")
    print("|---|---:|---|---:|---|---:|")
    for issue in ISSUE_TYPES:
        for name, tool in tools.items():
            row = tool["issues"][issue]
            per = ", ".join(f"{s} {v:.2f}" for s, v in row["by_strength"].items())
            print(f"| {issue} | {row['planted']} | {name} | {row['recall']:.2f} | {per} | "
                  f"{row['precision']:.2f} ({row['caught']}/{row['flagged']}) |")
    print("\n| tool | clean flagged (any) | per issue | seconds | rerun seconds |")
    print("|---|---:|---|---:|---:|")
    for name, tool in tools.items():
        per = ", ".join(f"{i} {n}" for i, n in tool["clean_flagged_by_issue"].items() if n) or "-"
        rerun = f"{tool['rerun_seconds']:.1f}" if "rerun_seconds" in tool else "-"
        share = tool["clean_flagged"] / max(1, tool["clean"])
        print(f"| {name} | {tool['clean_flagged']} of {tool['clean']} ({share:.1%}) | {per} | "
              f"{tool['seconds']:.1f} | {rerun} |")
    print("\n| check | score | clean p1 / p50 / p99 | planted per strength: min / median / max |")
    print("|---|---|---|---|")
    for issue, spread in result["scores"].items():
        clean = " / ".join(f"{v:.3g}" for v in spread["clean_p1_p50_p99"])
        per = "; ".join(f"{s} {' / '.join(f'{v:.3g}' for v in vs)}"
                        for s, vs in spread["planted_min_median_max"].items())
        print(f"| {issue} ({spread['rule']}) | {spread['score']} | {clean} | {per} |")
    print("\n| embed stage on | images | with the measures (s) | without (s) | added |")
    print("|---|---:|---:|---:|---:|")
    for name, cost in result["cost"].items():
        if isinstance(cost, dict):
            print(f"| {name} | {cost['images']} | {cost['with_s']} | {cost['without_s']} | "
                  f"{cost['added']:+.1%} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/quality_checks"))
    parser.add_argument("--clean", type=int, default=600, help="clean crops")
    parser.add_argument("--per-strength", type=int, default=12, help="planted crops per issue and strength")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    folder = write_set(args.root, args.clean, args.per_strength, args.seed)
    files = sorted(folder.glob("*.jpg"))
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        work = Path(tmp)
        flags, seconds, rerun = run_repsample(folder, work)
        cv_flags, cv_seconds = run_cleanvision(folder)
        scores, issues = measure_files(files)
    cost = added_cost({"crops": files, "photographs (each 3 times)": photographs() * 3})
    names = [p.name for p in files]
    cost["files_check_disagrees"] = sorted(n for n in names if flags.get(n, set()) != issues.get(n, set()))
    result = {"set": {"folder": str(folder), "clean": args.clean, "per_strength": args.per_strength,
                      "seed": args.seed, "images": len(files)},
              "tools": {"repsample": {**score_tool(names, flags), "seconds": seconds, "rerun_seconds": rerun},
                        "cleanvision": {**score_tool(names, cv_flags), "seconds": cv_seconds}},
              "scores": score_spread(scores), "cost": cost}
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
