"""Image quality measures, from the image the embed stage already decoded (no second decode).

Each image gets a few numbers, cached by content hash beside its embedding (``QUALITY_KEY``):
how sharp its sharpest part is, its median brightness, the information in its grey histogram,
how colourful it is, and its size as stored (EXIF orientation applied). Which of them make an
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

QUALITY_KEY = "quality|sharpness8x8+median+entropy64+chroma99+size|from224|v1"
"""Names the measures in the embedding cache, like a model's key."""
MEASURES = ("sharpness", "brightness", "entropy", "colourfulness", "width", "height")
"""The order of a quality vector's values."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as PIL's convert("L")
_BLOCKS = 8  # sharpness looks for the sharpest of 8 x 8 blocks: a sharp subject on a soft background is sharp
_NOISE_FLOOR = 25.0  # grey levels squared added to a block's variance: flat blocks cannot pass for sharp
_THUMB = 64  # entropy is read on a 64 px thumbnail, where sensor noise has averaged out


def measure_image(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The quality vector (``MEASURES``) of a decoded RGB image whose file is ``size`` pixels."""
    factor = min(image.size) // SOURCE_SIZE[0]
    work = image.reduce(factor) if factor > 1 else image
    rgb = np.asarray(work, np.float32)
    grey = rgb @ _LUMA
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return np.array([sharpness(grey), float(np.median(grey)), _thumb_entropy(work),
                     float(np.percentile(chroma, 99)), *size], np.float32)


def measure(path: Path | str) -> np.ndarray:
    """The quality vector of an image file (raises DecodeError when it cannot be decoded)."""
    return measure_image(*decode_sized(path, SOURCE_SIZE))


def sharpness(grey: np.ndarray) -> float:
    """Laplacian energy over grey variance in the sharpest block of an 8 x 8 grid: about 0 for an
    image blurred all over, 0.3 to 3 for a sharp photograph. NaN below 3 x 3 pixels."""
    if min(grey.shape) < 3:
        return math.nan
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
           - 4 * grey[1:-1, 1:-1])
    blocks = min(_BLOCKS, *lap.shape)
    bh, bw = lap.shape[0] // blocks, lap.shape[1] // blocks
    tiles = lap[: bh * blocks, : bw * blocks].reshape(blocks, bh, blocks, bw)
    inner = grey[1 : 1 + bh * blocks, 1 : 1 + bw * blocks].reshape(blocks, bh, blocks, bw)
    energy = np.square(tiles).mean(axis=(1, 3))
    return float((energy / (inner.var(axis=(1, 3)) + _NOISE_FLOOR)).max())


def _thumb_entropy(image: Image.Image) -> float:
    """Bits of the grey histogram of the image reduced to at most 64 px a side."""
    thumb = image.convert("L")
    if max(thumb.size) > _THUMB:
        thumb = thumb.resize((min(_THUMB, thumb.width), min(_THUMB, thumb.height)),
                             Image.Resampling.BOX)
    counts = np.asarray(thumb.histogram(), np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: -0.0 for a flat image reads oddly
