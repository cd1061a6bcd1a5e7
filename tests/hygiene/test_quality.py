"""Image quality checks: each score moves the way its name says on real images made with PIL,
odd files get scores or an error row (never a crash), a group's majority is not an issue, and the
checks reach the manifest, issues.csv and --drop-issues through the real CLI."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from conftest import FAST_ARGS
from repsample.cli import cli
from repsample.embedding.decode import decode_sized
from repsample.embedding.quality import MEASURES, QUALITY_KEY, measure, measure_image, sharpness
from repsample.hygiene.quality import CHECKS, MINORITY, assess_group
from repsample.output.layout import ISSUE_TYPES, QUALITY_FIELDS

SIZE = (480, 360)


def scene(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """A sharp colour picture: flat patches with hard edges over a gradient, like objects."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.empty((h, w, 3), np.float64)
    arr[:] = np.linspace(40, 200, w)[None, :, None] * rng.uniform(0.5, 1.0, 3)
    for _ in range(12):
        x, y = rng.integers(0, w - 20), rng.integers(0, h - 20)
        arr[y : y + rng.integers(10, h // 3), x : x + rng.integers(10, w // 3)] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(arr + rng.normal(0, 3, arr.shape), 0, 255).astype(np.uint8))


def scores(image: Image.Image) -> dict[str, float]:
    return dict(zip(MEASURES, measure_image(image, image.size).tolist(), strict=True))


def flags(image: Image.Image) -> set[str]:
    """The absolute checks' verdicts on one image (the group-relative ones need a group)."""
    values = {**scores(image), "elongation": 1.0, "relative_size": 1.0}
    return {c.name for c in CHECKS if c.flags(values)}


def gamma(image: Image.Image, g: float) -> Image.Image:
    return image.point([min(255, round(255 * (i / 255) ** g)) for i in range(256)] * 3)


@pytest.mark.parametrize("seed", range(4))
def test_a_clean_picture_has_no_issue(seed: int) -> None:
    assert flags(scene(seed)) == set()


@pytest.mark.parametrize("seed", range(4))
def test_each_planted_issue_is_found(seed: int) -> None:
    clean = scene(seed)
    assert "blurry" in flags(clean.filter(ImageFilter.GaussianBlur(4)))
    assert "dark" in flags(gamma(clean, 4))
    assert "light" in flags(Image.blend(clean, Image.new("RGB", SIZE, "white"), 0.9))  # washed out
    assert "grayscale" in flags(clean.convert("L").convert("RGB"))
    flat = Image.new("RGB", SIZE, tuple(int(v) for v in np.random.default_rng(seed).integers(0, 255, 3)))
    assert "low_information" in flags(flat) and "blurry" not in flags(flat)  # blank, not blurred


def test_scores_move_with_the_strength() -> None:
    clean = scene(7)
    sharp = [scores(clean.filter(ImageFilter.GaussianBlur(r)))["sharpness"] for r in (0.01, 1, 2, 4)]
    assert sharp == sorted(sharp, reverse=True)
    bright = [scores(gamma(clean, g))["brightness_p50"] for g in (4, 2, 1, 0.5, 0.25)]
    assert bright == sorted(bright)


def test_a_sharp_subject_on_a_soft_background_is_not_blurry() -> None:
    """Sharpness is the sharpest part's: a macro photo's bokeh is not a blurred picture."""
    soft = scene(3).filter(ImageFilter.GaussianBlur(6))
    soft.paste(scene(4, (120, 90)), (180, 135))
    assert "blurry" not in flags(soft)


def test_the_measures_are_the_same_at_any_stored_size() -> None:
    """Measured at about the model's scale: a picture and its 4x enlargement agree."""
    small = scene(5)
    big = small.resize((SIZE[0] * 4, SIZE[1] * 4), Image.Resampling.LANCZOS)
    a, b = scores(small), scores(big)
    assert abs(a["brightness_p50"] - b["brightness_p50"]) < 3
    assert abs(a["entropy"] - b["entropy"]) < 0.2
    assert (a["sharpness"] < 0.1) == (b["sharpness"] < 0.1)


# -- odd files: scores or an error row, never a crash ---------------------------------------------


def _odd_files(tmp: Path) -> dict[str, Path]:
    files = {"tiny": tmp / "tiny.png", "deep": tmp / "deep.png", "cmyk": tmp / "cmyk.tiff",
             "palette": tmp / "palette.png", "rotated": tmp / "rotated.jpg"}
    Image.new("RGB", (1, 1), (9, 9, 9)).save(files["tiny"])
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)).save(files["deep"])
    scene(1, (64, 48)).convert("CMYK").save(files["cmyk"])
    palette = scene(2, (64, 48)).convert("P")
    palette.info["transparency"] = 0
    palette.save(files["palette"], transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated a quarter turn
    scene(3, (120, 40)).save(files["rotated"], exif=exif)
    return files


def test_odd_files_get_scores(tmp_path: Path) -> None:
    files = _odd_files(tmp_path)
    measured = {name: dict(zip(MEASURES, measure(path).tolist(), strict=True))
                for name, path in files.items()}
    assert math.isnan(measured["tiny"]["sharpness"]) and measured["tiny"]["entropy"] == 0.0
    assert (measured["rotated"]["width"], measured["rotated"]["height"]) == (40, 120)
    assert measured["deep"]["brightness_p50"] > 10  # 16 bits rescaled, not clipped to black
    for values in measured.values():
        assert 0 <= values["brightness_p25"] <= values["brightness_p50"] <= values["brightness_p90"] <= 255
        assert 0 <= values["colourfulness"] <= 255


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from(["RGB", "L", "P", "1"]),
       st.integers(0, 2**32 - 1))
def test_any_size_and_mode_measures(width: int, height: int, mode: str, seed: int) -> None:
    arr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(arr).convert(mode).convert("RGB")
    values = dict(zip(MEASURES, measure_image(image, (width, height)).tolist(), strict=True))
    assert math.isnan(values["sharpness"]) == (min(width, height) < 3)
    assert 0 <= values["entropy"] <= 8 and 0 <= values["brightness_p50"] <= 255
    assert (values["width"], values["height"]) == (width, height)


def test_the_embed_stage_and_a_later_measure_agree(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    scene(8, (1200, 900)).save(path, quality=90)
    image, size = decode_sized(path, (224, 224))
    assert size == (1200, 900) and image.size != size  # a reduced decode, the stored size kept
    assert np.array_equal(measure_image(image, size), measure(path))


# -- groups ---------------------------------------------------------------------------------------


def _vector(brightness: float, width: int = 400, height: int = 300) -> np.ndarray:
    return np.array([1.0, brightness / 2, brightness, brightness * 1.5, 6.0, 80.0, width, height],
                    np.float32)


def test_a_group_majority_is_not_an_issue() -> None:
    mostly_dark = [_vector(10)] * 6 + [_vector(120)] * 4
    quality = assess_group(mostly_dark)
    assert "dark" in quality.group_normal and quality.counts()["dark"] == 0
    few_dark = [_vector(10)] * 2 + [_vector(120)] * 8
    assert assess_group(few_dark).counts()["dark"] == 2 and MINORITY * 10 >= 2


def test_size_and_shape_are_judged_against_the_group() -> None:
    vectors = [_vector(120)] * 8 + [_vector(120, 40, 30), _vector(120, 1200, 300), None]
    quality = assess_group(vectors)
    assert quality.images[8].issues == ("odd_size",)
    assert quality.images[9].issues == ("odd_aspect",)
    assert quality.images[10].issues == () and math.isnan(quality.images[10].scores["sharpness"])
    assert quality.images[8].scores["relative_size"] == pytest.approx(0.1)


def test_checks_follow_the_declared_order() -> None:
    assert tuple(c.name for c in CHECKS) == ISSUE_TYPES
    assert {c.score for c in CHECKS} <= set(QUALITY_FIELDS)
    ranked = dict.fromkeys(QUALITY_FIELDS, 1.0) | {"relative_size": 1.0, "elongation": 1.0}
    for check in CHECKS:  # each rule reads declared scores only, and NaN never flags
        assert check.flags(dict.fromkeys(ranked, math.nan)) is False
        check.flags(ranked)


# -- through the real CLI -------------------------------------------------------------------------


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    birds = _mkdir(root / "train" / "birds")
    for i in range(10):
        scene(i, (160, 120)).save(birds / f"img_{i:02d}.jpg", quality=92)
    gamma(scene(20, (160, 120)), 5).save(birds / "night.jpg", quality=92)
    scene(21, (160, 120)).convert("L").save(birds / "grey.png")
    _odd_files(_mkdir(root / "train" / "odd"))
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_check_writes_issues_csv_and_counts(planted: Path, tmp_path: Path, cache_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["check", str(planted), str(out), "--cache", str(cache_path),
                                      "-q", *FAST_ARGS])
    assert result.exit_code == 0, result.output
    issues = {(r["path"], r["issue"]) for r in _rows(out / "issues.csv")}
    assert ("train/birds/night.jpg", "dark") in issues
    assert ("train/birds/grey.png", "grayscale") in issues
    assert not any(p.startswith("train/birds/img_") for p, _ in issues)
    summary = json.loads((out / "check.json").read_text())["summary"]["quality"]
    assert summary["by_group"]["train/birds"]["dark"] == 1
    assert summary["measured_after_embedding"] == 0  # the embed stage measured every image


def test_drop_issues_and_rerun(planted: Path, tmp_path: Path, cache_path: Path) -> None:
    args = ["select", str(planted), str(tmp_path / "out"), "--cache", str(cache_path), "-q",
            "--per-class", "11", "--mode", "none", "--no-report", *FAST_ARGS]
    result = CliRunner().invoke(cli, [*args, "--drop-issues", "dark,grayscale"])
    assert result.exit_code == 0, result.output
    rows = {r["path"]: r for r in _rows(tmp_path / "out" / "manifest.csv")}
    assert rows["train/birds/night.jpg"]["reason"] == "dark"
    assert rows["train/birds/night.jpg"]["status"] == "not_selected"
    assert rows["train/birds/grey.png"]["issues"] == "grayscale"
    assert all(rows[f"train/birds/img_{i:02d}.jpg"]["status"] == "selected" for i in range(10))
    assert float(rows["train/birds/img_01.jpg"]["sharpness"]) > 0.1

    with sqlite3.connect(cache_path) as db:  # an older cache: vectors, no quality measures
        db.execute("DELETE FROM embeddings WHERE model = ?", (QUALITY_KEY,))
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["check"]["quality"]["measured_after_embedding"] == len(rows)
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["check"]["quality"]["measured_after_embedding"] == 0
    assert _rows(tmp_path / "out" / "manifest.csv")[0].keys() >= {"issues", *QUALITY_FIELDS}


def test_drop_issues_refuses_an_unknown_name(planted: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", str(planted), str(tmp_path / "o"),
                                      "--drop-issues", "blury"])
    assert result.exit_code == 2
    assert "blury" in result.output and "blurry" in result.output


def _sharpness_int64(grey: np.ndarray) -> float:
    """The sharpness measure written plainly, every value int64 (the cached measures' recipe)."""
    if min(grey.shape) < 3:
        return math.nan
    levels = grey.astype(np.int64)
    blocks = min(8, levels.shape[0] - 2, levels.shape[1] - 2)
    bh, bw = (levels.shape[0] - 2) // blocks, (levels.shape[1] - 2) // blocks
    step = 2 if bh >= 4 else 1
    bh -= bh % step
    h, w = bh * blocks, bw * blocks
    rows = slice(1, 1 + h, step)
    centre = levels[rows, 1 : 1 + w]
    lap = (levels[0:h:step, 1 : 1 + w] + levels[2 : 2 + h : step, 1 : 1 + w] + levels[rows, :w]
           + levels[rows, 2 : 2 + w] - 4 * centre)

    def sums(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = v.reshape(blocks, bh // step, blocks, bw).sum(axis=(1, 3))
        return out

    n = bh // step * bw
    variance = (sums(centre * centre) - sums(centre) ** 2 / n) / n
    return float((sums(lap * lap) / n / (variance + 25.0)).max())


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 120), width=st.integers(1, 120),
       extreme=st.booleans())
def test_sharpness_in_small_integers_is_the_int64_recipe(seed: int, height: int, width: int,
                                                         extreme: bool) -> None:
    """int16 Laplacian, int32 squares: the same float as every value in int64, for any size
    and the extreme levels (a 0/255 checkerboard makes the largest Laplacian)."""
    rng = np.random.default_rng(seed)
    grey = (rng.integers(0, 2, (height, width)) * 255 if extreme
            else rng.integers(0, 256, (height, width))).astype(np.uint8)
    ours, plain = sharpness(grey), _sharpness_int64(grey)
    assert (math.isnan(ours) and math.isnan(plain)) or ours == plain
    board = (np.indices((height, width)).sum(axis=0) % 2 * 255).astype(np.uint8)
    ours, plain = sharpness(board), _sharpness_int64(board)
    assert (math.isnan(ours) and math.isnan(plain)) or ours == plain
