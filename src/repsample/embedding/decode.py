"""Decode: the one function that turns a file into an RGB image, or says why it cannot."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repsample.fsio import NotRegularFile, readable

# Modes whose samples are wider than 8 bits: convert("RGB") would clip them, so rescale first.
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def decode_workers(requested: int | None = None) -> int:
    """Decoding threads: as requested (at least 1), or min(4, CPUs) when None."""
    return min(4, os.cpu_count() or 1) if requested is None else max(1, requested)


class DecodeError(Exception):
    """A file that cannot be used as an image; the message goes into the manifest."""


def decode_image(path: str | Path | IO[bytes], min_size: tuple[int, int] | None = None) -> Image.Image:
    """Open an image file as an RGB PIL image, EXIF orientation applied.

    min_size lets a JPEG decode at a reduced DCT scale (``Image.draft``) while staying at least
    that big, so a 12-megapixel photo bound for a 224 px model is never decoded in full.
    Decompression bombs (PIL's pixel limit) are refused, not decoded.
    path may also be a binary file object or an fsspec URL (read whole; local paths are untouched).
    """
    return decode_sized(path, min_size)[0]


def decode_sized(path: str | Path | IO[bytes],
                 min_size: tuple[int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """``decode_image``, and the image's size as stored (width, height, EXIF orientation
    applied), which a reduced decode does not show."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(readable(path)) as img:
                width, height = img.size
                if min_size is not None and img.format == "JPEG":
                    img.draft("RGB", _draft_request(img, min_size))
                img.load()
                drafted = img.size
                img = ImageOps.exif_transpose(img)
                if img.size != drafted:  # rotated by a quarter turn
                    width, height = height, width
                return _to_rgb(img), (width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(f"refused: too many pixels ({exc})") from None
    except FileNotFoundError:
        raise DecodeError("file vanished during the run") from None
    except NotRegularFile as exc:  # replaced by a FIFO or a device since it was hashed
        raise DecodeError(exc.strerror or str(exc)) from None
    except UnidentifiedImageError:
        raise DecodeError("not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL reports truncated and malformed data through these.
        raise DecodeError(f"corrupt image: {exc}") from None


def _draft_request(img: Image.Image, min_size: tuple[int, int]) -> tuple[int, int]:
    # EXIF may swap width and height later; ask for the larger side in both directions.
    side = max(min_size)
    return side, side


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in _WIDE_MODES:
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") else (arr.min(), arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels hold arbitrary colour; show them on white, as a viewer would.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
