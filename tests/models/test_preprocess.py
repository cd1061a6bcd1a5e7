"""The model's input: the lookup that normalises pixels gives the very bits of the per-pixel
formula ``(level / 255 - mean) / std`` in float32, for any size, crop, mean and std (hypothesis),
so vectors and the cache keyed by the preprocessing's identity do not move."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from repsample.models import get_model
from repsample.models.base import Preprocess

channel = st.floats(-2.0, 2.0, allow_nan=False)
spread = st.floats(0.01, 3.0, allow_nan=False)


def per_pixel(pre: Preprocess, img: Image.Image) -> np.ndarray:
    """The formula, pixel by pixel, as it was written before the lookup."""
    resample = getattr(Image.Resampling, pre.resample.upper())
    box = pre._centre(img.size) if pre.crop else None
    pixels = np.asarray(img.resize(pre.size, resample, box), dtype=np.float32) / np.float32(255.0)
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), source=st.tuples(st.integers(1, 90), st.integers(1, 90)),
       size=st.tuples(st.integers(1, 64), st.integers(1, 64)), crop=st.booleans(),
       mean=st.tuples(channel, channel, channel), std=st.tuples(spread, spread, spread),
       resample=st.sampled_from(["bilinear", "bicubic", "nearest", "lanczos"]))
def test_the_lookup_gives_the_formulas_bits(seed: int, source: tuple[int, int], size: tuple[int, int],
                                            crop: bool, mean: tuple[float, float, float],
                                            std: tuple[float, float, float], resample: str) -> None:
    levels = np.random.default_rng(seed).integers(0, 256, (source[1], source[0], 3), dtype=np.uint8)
    img = Image.fromarray(levels, "RGB")
    pre = Preprocess(size, mean, std, resample, crop=crop)
    out = pre(img)
    assert out.dtype == np.float32 and out.shape == (3, size[1], size[0]) and out.flags.c_contiguous
    assert out.tobytes() == per_pixel(pre, img).tobytes()


def test_every_level_of_the_default_model() -> None:
    """All 256 levels in every channel, through the default model's own preprocessing."""
    pre = get_model("efficientnet-lite0").preprocess
    w, h = pre.size  # at the model's size the resize keeps every level
    levels = (np.arange(w * h * 3) % 256).astype(np.uint8).reshape(h, w, 3)
    img = Image.fromarray(levels, "RGB")
    assert len(np.unique(np.asarray(img.resize(pre.size)))) == 256
    assert pre(img).tobytes() == per_pixel(pre, img).tobytes()


def test_a_crop_whose_box_rounds_past_the_image_is_taken_within_it() -> None:
    """3 x 27 to 1 x 13: the centred box's height computes as 27.000000000000004 (found by the
    hypothesis test above); PIL refused the box until it was clamped to the image."""
    img = Image.fromarray(np.zeros((27, 3, 3), np.uint8), "RGB")
    pre = Preprocess((1, 13), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), crop=True)
    assert pre._centre(img.size)[1] >= 0 and pre(img).shape == (3, 13, 1)
