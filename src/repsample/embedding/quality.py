"""Image quality measures, from the image the embed stage already decoded (no second decode).

Each image gets a few numbers, cached by content hash beside its embedding (``QUALITY_KEY``):
how sharp its sharpest part is, three brightness percentiles, the information in its grey
histogram, how colourful it is, and its size as stored (EXIF orientation applied). Which of them make an
issue (blurry, dark, ...) is decided per group in repsample.hygiene.quality.

Everything is measured at about the model's scale: the decoded image (at least SOURCE_SIZE,
JPEGs through ``Image.draft``) is reduced by a whole factor until its shorter side is under
twice SOURCE_SIZE's, so a 12-megapixel PNG and its JPEG give the same figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from repsample.embedding.decode import decode_sized
from repsample.embedding.descriptor import SOURCE_SIZE

QUALITY_KEY = "quality|sharpness8x8+grey25,50,90+entropy64+chroma99+size|from224|v2"
"""Names the measures in the embedding cache, like a model's key."""
MEASURES = ("sharpness", "brightness_p25", "brightness_p50", "brightness_p90", "entropy",
            "colourfulness", "width", "height")
"""The order of a quality vector's values."""

_BLOCKS = 8  # sharpness looks for the sharpest of 8 x 8 blocks: a sharp subject on a soft background is sharp
_NOISE_FLOOR = 25.0  # grey levels squared added to a block's variance: flat blocks cannot pass for sharp
_THUMB = 64  # entropy and colour are read on a thumbnail of 64-127 px, where noise has averaged out


def measure_image(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The quality vector (``MEASURES``) of a decoded RGB image whose file is ``size`` pixels.

    The embed stage pays for it on every image, so it works on 8-bit planes, PIL's histograms
    and a small thumbnail where it can: about 1 ms at 224-448 px (docs/benchmarks.md)."""
    factor = min(image.size) // SOURCE_SIZE[0]
    work = image.reduce(factor) if factor > 1 else image
    grey = work.convert("L")  # ITU-R 601 luma
    thumb = work.reduce(max(1, min(work.size) // _THUMB))  # 64-127 px: a whole factor is cheap
    levels = grey.histogram()
    return np.array([sharpness(np.asarray(grey)),
                     *(_percentile(levels, q) for q in (25, 50, 90)),
                     _entropy(thumb.convert("L").histogram()), _percentile(_chroma(thumb), 99),
                     *size], np.float32)


def measure(path: Path | str) -> np.ndarray:
    """The quality vector of an image file (raises DecodeError when it cannot be decoded)."""
    return measure_image(*decode_sized(path, SOURCE_SIZE))


def sharpness(grey: np.ndarray) -> float:
    """Laplacian energy over grey variance (plus a noise floor) in the sharpest block of an 8 x 8
    grid: about 0 for an image blurred all over, 0.3 to 3 for a sharp photograph. NaN below
    3 x 3 pixels. grey: 8-bit levels (integer arithmetic, exact). Every other row of a block is
    read where blocks are at least 4 rows high: the same figure, within sampling, for half the
    cost."""
    if min(grey.shape) < 3:
        return math.nan
    blocks = min(_BLOCKS, grey.shape[0] - 2, grey.shape[1] - 2)
    bh, bw = (grey.shape[0] - 2) // blocks, (grey.shape[1] - 2) // blocks
    step = 2 if bh >= 4 else 1
    bh -= bh % step
    h, w = bh * blocks, bw * blocks
    # int16 holds the Laplacian (-1020..1020) exactly; squares in int32, block sums in int64.
    levels = grey[: 2 + h, : 2 + w].astype(np.int16)
    rows = slice(1, 1 + h, step)
    centre = levels[rows, 1 : 1 + w]
    lap = levels[0:h:step, 1 : 1 + w] + levels[2 : 2 + h : step, 1 : 1 + w]
    lap += levels[rows, :w]
    lap += levels[rows, 2 : 2 + w]
    lap -= 4 * centre
    energy = lap.astype(np.int32)
    energy *= energy
    centre32 = centre.astype(np.int32)

    def block_sums(values: np.ndarray) -> np.ndarray:
        sums: np.ndarray = values.reshape(blocks, bh // step, blocks, bw).sum(axis=(1, 3), dtype=np.int64)
        return sums

    n = bh // step * bw
    total = block_sums(centre32)
    centre32 *= centre32
    variance = (block_sums(centre32) - total * total / n) / n
    return float((block_sums(energy) / n / (variance + _NOISE_FLOOR)).max())


def _chroma(image: Image.Image) -> list[int]:
    """The histogram of max(R, G, B) - min(R, G, B) over the pixels."""
    rgb = np.asarray(image)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    counts: list[int] = np.bincount(spread.ravel(), minlength=256).tolist()
    return counts


def _percentile(histogram: list[int], q: float) -> float:
    """The q-th percentile of 8-bit values from their histogram: the lowest level with q % of
    the values at or below it."""
    counts = np.cumsum(histogram)
    return float(np.searchsorted(counts, q / 100 * counts[-1]))


def _entropy(histogram: list[int]) -> float:
    """Bits of a histogram."""
    counts = np.asarray(histogram, np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: -0.0 for a flat image reads oddly
