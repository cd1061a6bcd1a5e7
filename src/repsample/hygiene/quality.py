"""Image quality issues: which images of a group are blurry, dark, light, near-blank, grayscale
among colour images, oddly shaped or oddly sized.

The measures come from the embed stage (repsample.embedding.quality), read from the cache; a
content the cache lacks them for (embedded by the Ray engine, by an older repsample, or given by
--embeddings) is decoded once here and its measures stored. Each issue is a score with a
threshold (``CHECKS``), and an issue is a minority property: a check that would flag more than
a quarter of a group's images flags none of them there, since what most of a group shares (black
backgrounds, grey scans, panoramas) is that group's normal, not a fault of its images.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repsample.cache import ContentCache
from repsample.embedding.decode import DecodeError
from repsample.embedding.quality import MEASURES, QUALITY_KEY, measure
from repsample.output.layout import ISSUE_TYPES, QUALITY_FIELDS
from repsample.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Check:
    """One issue: the score that ranks it (issues.csv, the report), when the scores make it, and
    that rule in words."""

    name: str
    score: str  # one of QUALITY_FIELDS
    flags: Callable[[Mapping[str, float]], bool]  # NaN scores never flag
    rule: str


LOW_ENTROPY = 4.2  # bits: below it an image is near-blank (low_information), and so not called blurry

CHECKS = (
    Check("blurry", "sharpness", lambda s: s["sharpness"] < 0.08 and s["entropy"] >= LOW_ENTROPY,
          "sharpness below 0.08 (a near-blank image is low_information instead)"),
    Check("dark", "brightness_p50", lambda s: s["brightness_p50"] < 50 and s["brightness_p90"] < 130,
          "half the pixels below 50 of 255 and nine tenths below 130 (no lit part)"),
    Check("light", "brightness_p25", lambda s: s["brightness_p25"] > 170 and s["brightness_p90"] > 225,
          "three quarters of the pixels above 170 of 255 and the brightest tenth above 225 (blown)"),
    Check("low_information", "entropy", lambda s: s["entropy"] < LOW_ENTROPY,
          f"grey histogram entropy below {LOW_ENTROPY} bits"),
    Check("grayscale", "colourfulness", lambda s: s["colourfulness"] < 4,
          "99 % of pixels within 4 levels across R, G, B"),
    Check("odd_aspect", "elongation", lambda s: s["elongation"] >= 2.5,
          "long side at least 2.5 times the short side"),
    Check("odd_size", "relative_size", lambda s: s["relative_size"] < 0.25 or s["relative_size"] > 4,
          "side (square root of the area) under a quarter or over 4 times the group's median"),
)
"""Thresholds measured on bench/quality_checks.py (docs/benchmarks.md), in ISSUE_TYPES' order."""
MINORITY = 0.25
"""A check flags nothing in a group where it would flag more than this share of the images."""


@dataclass(frozen=True)
class ImageQuality:
    """One image's scores (``QUALITY_FIELDS``, NaN where unmeasurable) and its issues."""

    scores: dict[str, float]
    issues: tuple[str, ...]


@dataclass(frozen=True)
class GroupQuality:
    """Per row of a group's embedded images (rows as in ``Embedded.vectors``), and the checks
    the minority rule switched off there."""

    images: list[ImageQuality]
    group_normal: tuple[str, ...]

    def flagged(self, issues: Sequence[str]) -> dict[int, tuple[str, ...]]:
        """Rows with any of these issues, and which of them."""
        wanted = set(issues)
        out = {}
        for row, image in enumerate(self.images):
            hit = tuple(i for i in image.issues if i in wanted)
            if hit:
                out[row] = hit
        return out

    def counts(self) -> dict[str, int]:
        return {name: sum(name in image.issues for image in self.images) for name in ISSUE_TYPES}


def assess_group(vectors: Sequence[np.ndarray | None]) -> GroupQuality:
    """The issues of one group's images from their quality vectors (None: not measured)."""
    raw = [dict(zip(MEASURES, v.tolist(), strict=True)) if v is not None else None for v in vectors]
    sides = [math.sqrt(r["width"] * r["height"]) for r in raw if r is not None]
    typical = float(np.median(sides)) if sides else math.nan
    scored = [_scores(r, typical) for r in raw]
    # Comparisons with NaN are False: an unmeasured score never flags.
    hits = {c.name: [s is not None and c.flags(s) for s in scored] for c in CHECKS}
    normal = tuple(name for name, flags in hits.items()
                   if sum(flags) > MINORITY * max(1, sum(s is not None for s in scored)))
    images = []
    for i, s in enumerate(scored):
        issues = tuple(name for name in ISSUE_TYPES if hits[name][i] and name not in normal)
        images.append(ImageQuality(s or dict.fromkeys(QUALITY_FIELDS, math.nan), issues))
    return GroupQuality(images, normal)


def _scores(raw: Mapping[str, float] | None, typical_side: float) -> dict[str, float] | None:
    if raw is None:
        return None
    width, height = raw["width"], raw["height"]
    side = math.sqrt(width * height)
    return {**{c: raw[c] for c in QUALITY_FIELDS if c in raw},
            "elongation": max(width, height) / max(1.0, min(width, height)),
            "relative_size": side / typical_side if typical_side > 0 else math.nan}


def quality_summary(quality: Mapping[str, GroupQuality], measured: int) -> dict[str, Any]:
    """Image quality issues for run.json and check.json: counts per issue, per group and issue,
    the checks each group's majority switched off, and how many images were measured after the
    embed stage (0 when it measured them all, or on a rerun)."""
    counts = {name: q.counts() for name, q in quality.items()}
    return {"issues": {i: sum(c[i] for c in counts.values()) for i in ISSUE_TYPES},
            "by_group": {name: {i: n for i, n in c.items() if n} for name, c in counts.items()},
            "group_normal": {name: list(q.group_normal) for name, q in quality.items() if q.group_normal},
            "measured_after_embedding": measured}


def quality_vectors(paths: Mapping[str, Path | str], cache: ContentCache, workers: int = 2,
                    progress: Progress | None = None) -> tuple[dict[str, np.ndarray], int]:
    """The quality vector per content hash (paths: one readable file per hash), from the cache;
    the missing ones measured now (a decode each) and stored. Returns them and how many were
    measured now (0 on a rerun)."""
    known = cache.get_many(list(paths), QUALITY_KEY)
    out = {h: e.vector for h, e in known.items() if e.vector is not None}
    todo = [h for h in paths if h not in known]
    if not todo:
        return out, 0
    logger.info("measuring image quality of %d images the embed stage did not measure", len(todo))
    bar = (progress or SilentProgress()).stage("quality", len(todo))

    def compute(digest: str) -> np.ndarray | str:
        try:
            return measure(paths[digest])
        except DecodeError as exc:
            return str(exc)

    with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL releases the GIL while decoding
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            results = list(pool.map(compute, chunk))
            found = [(h, r) for h, r in zip(chunk, results, strict=True) if not isinstance(r, str)]
            cache.put_many(QUALITY_KEY, vectors=found,
                           errors=[(h, r) for h, r in zip(chunk, results, strict=True) if isinstance(r, str)])
            out.update(found)
            bar.advance(len(chunk))
    bar.close()
    return out, len(todo)
