"""Decode: every mode to RGB, EXIF orientation applied, broken files and bombs refused cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import DATA, make_image
from repsample.embedding.decode import DecodeError, decode_image


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    path = make_image(tmp_path / f"img.{fmt.lower()}", 1, mode="RGB")
    img = Image.open(path)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    else:
        img = img.convert(mode)
    img.save(path, format=fmt)
    out = decode_image(path)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert np.asarray(out).std() > 1  # not a blank image: wide modes were rescaled, not clipped


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path: Path) -> None:
    arr = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    out = np.asarray(decode_image(tmp_path / "deep.png"))
    assert out.min() == 0 and out.max() == 255 and 100 < out.mean() < 155


def test_transparent_pixels_are_white(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert np.asarray(decode_image(tmp_path / "clear.png")).min() == 255


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert decode_image(tmp_path / "rot.jpg").size == (20, 60)


def test_draft_decodes_large_jpeg_smaller_but_not_below_size(tmp_path: Path) -> None:
    path = make_image(tmp_path / "big.jpg", 1, size=(2000, 1500))
    small = decode_image(path, (224, 224))
    assert min(small.size) >= 224 and small.size[0] < 2000


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.suffix != ".md"))
def test_broken_files_raise_decode_error(name: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_image(DATA / name)
    assert str(err.value)


@pytest.fixture(scope="module")
def few_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Five images of different sizes and one file that is not an image (the last)."""
    folder = tmp_path_factory.mktemp("few")
    files = [make_image(folder / f"{i}.png", seed=i, size=(40 + 30 * i, 30 + 20 * i)) for i in range(5)]
    (folder / "bad.jpg").write_bytes(b"not an image")
    return [*files, folder / "bad.jpg"]


@settings(max_examples=25, deadline=None)
@given(picks=st.lists(st.integers(0, 5), max_size=14), batch_size=st.integers(1, 5),
       workers=st.integers(1, 3))
def test_reused_batch_memory_holds_each_batch_until_the_next(
    few_files: list[Path], picks: list[int], batch_size: int, workers: int,
) -> None:
    """Batches are written into reused buffers: more batches than buffers, errors anywhere, any
    batch size, buffers the caller passes again (a run's next group), and each batch still
    holds its own files' pixels when it is yielded."""
    from repsample.embedding.embed import batch_buffers, decoded_batches
    from repsample.models import get_model

    preprocess = get_model("efficientnet-lite0").preprocess
    expected = {i: preprocess(decode_image(f, preprocess.draft_size)) for i, f in enumerate(few_files[:5])}
    shared = batch_buffers(preprocess, batch_size)
    for order, buffers in ((picks, None), (picks[::-1], shared), (picks, shared)):
        paths = [few_files[i] for i in order]
        seen: list[int] = []
        for batch in decoded_batches(paths, preprocess, batch_size, workers, buffers=buffers):
            time.sleep(0.01)  # the batches decoded ahead are written meanwhile: none into this one
            assert all(order[i] == 5 for i, _ in batch.errors)
            assert (batch.pixels is None) == (not batch.positions)
            for row, i in zip(batch.pixels if batch.pixels is not None else [], batch.positions, strict=True):
                assert np.array_equal(row, expected[order[i]])
            seen += batch.positions + [i for i, _ in batch.errors]
        assert sorted(seen) == list(range(len(order)))


def test_decompression_bomb_refused(tmp_path: Path) -> None:
    Image.new("L", (10000, 10000)).save(tmp_path / "bomb.png")  # 1e8 px > PIL's default limit
    with pytest.raises(DecodeError, match="too many pixels"):
        decode_image(tmp_path / "bomb.png")


def test_decoded_batches_keep_order_and_report_errors_in_place(tmp_path: Path) -> None:
    """Threads decode ahead of the model; batches still come in file order, errors at their place."""
    from repsample.embedding.descriptor import describe
    from repsample.embedding.embed import decoded_batches
    from repsample.models import get_model

    preprocess = get_model("efficientnet-lite0").preprocess
    paths: list[Path] = []
    for i in range(11):
        if i in (3, 8):
            bad = tmp_path / f"{i}.jpg"
            bad.write_bytes(b"not an image")
            paths.append(bad)
        else:
            paths.append(make_image(tmp_path / f"{i}.png", seed=i))
    batches = []
    for batch in decoded_batches(paths, preprocess, batch_size=4, workers=3, describe=True):
        # the same pixels as decoding each file by itself (read now: the batch's memory is reused)
        assert batch.pixels is not None and batch.pixels.shape == (len(batch.positions), 3, 224, 224)
        for row, i in zip(batch.pixels, batch.positions, strict=True):
            assert np.array_equal(row, preprocess(decode_image(paths[i], preprocess.draft_size)))
        batches.append(batch)
    assert [b.positions for b in batches] == [[0, 1, 2], [4, 5, 6, 7], [9, 10]]
    assert [[i for i, _ in b.errors] for b in batches] == [[3], [], [8]]
    # the duplicate check's descriptor, made from the same decode, equals one made on demand
    assert [len(b.descriptors) for b in batches] == [3, 4, 2]
    assert np.array_equal(batches[1].descriptors[1], describe(paths[5]))
