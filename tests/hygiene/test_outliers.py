"""Per-image scores and outliers: the scores' directions on known geometry, then real Fashion-MNIST
images with planted misfits through the real default model, the real CLI, manifest, run.json and
`repsample check`'s outliers.csv; old manifests without the score columns still read."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import EXAMPLE
from repsample.cache import ContentCache
from repsample.cli import cli
from repsample.embedding.neighbours import nearest_outside, unit_rows
from repsample.errors import RepsampleError
from repsample.hygiene.outliers import (
    OUTLIER_SCORERS,
    GroupRows,
    ImageScores,
    image_scores,
    scores_key,
    split_scores,
)
from repsample.output.layout import LEGACY_MANIFEST_FIELDS, MANIFEST_FIELDS
from repsample.output.records import read_manifest, read_run

GROUP = "train/Ankle boot"
MISFITS = ("zz_shirt_0.png", "zz_shirt_1.png", "zz_shirt_2.png", "zz_blank.png")


def _blob(rng: np.random.Generator, n: int, dim: int = 4) -> np.ndarray:
    """n points around one direction, spread a little."""
    centre = np.zeros(dim)
    centre[0] = 1.0
    return centre + rng.normal(0, 0.05, (n, dim))


def test_every_score_points_the_documented_way() -> None:
    rng = np.random.default_rng(0)
    X = _blob(rng, 60)
    X[7] = -X[7]  # one image far from the others
    X[8] = X[9]  # an exact copy
    scores = image_scores(X)

    assert int(np.argmax(scores.outlier)) == 7  # higher = more unusual
    assert int(np.argmin(scores.typicality)) == 7  # higher = more typical
    assert int(np.argmax(scores.uniqueness)) == 7  # higher = more unique
    assert scores.uniqueness[8] == pytest.approx(0, abs=1e-3)
    assert scores.uniqueness[9] == pytest.approx(0, abs=1e-3)
    for name in OUTLIER_SCORERS:  # every scorer the bench compares agrees on the obvious case
        assert int(np.argmax(image_scores(X, scorer=name).outlier)) == 7, name


def test_scores_ignore_scale_and_a_lone_image_has_none() -> None:
    rng = np.random.default_rng(1)
    X = _blob(rng, 30)
    scaled = X * rng.uniform(0.5, 5.0, (30, 1))  # same directions, other lengths
    np.testing.assert_allclose(image_scores(X).outlier, image_scores(scaled).outlier, rtol=1e-4)

    lone = image_scores(X[:1])
    assert np.isnan(lone.outlier).all() and np.isnan(lone.typicality).all()
    assert lone.top_outliers(0.5) == []


def test_top_outliers_take_the_share_and_spare_protected_rows() -> None:
    scores = ImageScores(np.ones(10), np.arange(10.0), np.ones(10))
    assert scores.top_outliers(0.0) == []
    assert scores.top_outliers(0.25) == [9, 8, 7]  # 2.5 rounds half up
    assert scores.top_outliers(0.25, protected=frozenset({8})) == [9, 7]
    assert scores.top_outliers(0.04) == []  # 0.4 of an image


def _rows(X: np.ndarray, tag: str) -> GroupRows:
    return GroupRows(X, [f"{tag}{i:063x}" for i in range(len(X))])


def test_scores_are_stored_and_a_damaged_entry_is_recomputed(tmp_path: Path) -> None:
    X = _blob(np.random.default_rng(2), 25)
    contents = _rows(X, "a").contents
    with ContentCache(tmp_path / "cache.sqlite") as cache:
        first = split_scores({"a": _rows(X, "a")}, "model-a", cache, seed=0)["a"]
        np.testing.assert_allclose(first.outlier, image_scores(X, seed=0).outlier)
        key = scores_key("model-a", contents, 0)
        assert cache.get_blob(key) is not None and scores_key("model-b", contents, 0) != key

        cache.put_blob(key, b"not an npz")
        again = split_scores({"a": _rows(X, "a")}, "model-a", cache, seed=0)["a"]
        np.testing.assert_allclose(again.outlier, first.outlier)  # computed again, stored again
        with ContentCache(tmp_path / "cache.sqlite") as reopened:
            stored = split_scores({"a": _rows(X[::-1] * 0, "a")}, "model-a", reopened, seed=0)["a"]
        np.testing.assert_allclose(stored.outlier, first.outlier)  # read, not recomputed


def test_the_outlier_score_weighs_the_other_groups_of_the_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    cats, dogs = _blob(rng, 40), np.roll(_blob(rng, 40), 1, axis=1)  # two directions, 90 deg apart
    cats[0] = dogs[0] + rng.normal(0, 0.05, 4)  # a dog filed with the cats
    groups = {"train/cat": _rows(cats, "c"), "train/dog": _rows(dogs, "d"),
              "val/cat": _rows(_blob(rng, 10), "v")}
    with ContentCache(tmp_path / "cache.sqlite") as cache:
        scores = split_scores(groups, "m", cache, seed=0)
        alone = image_scores(cats, seed=0, scorer="knn").outlier  # no other group: this score
        np.testing.assert_allclose(scores["train/cat"].outlier,
                                   image_scores(cats, seed=0, others=dogs).outlier)
        assert int(np.argmax(scores["train/cat"].outlier)) == 0
        assert scores["train/cat"].outlier[0] > 2 * alone[0]  # it lies nearer the dogs
        # val/cat is alone in its split: the within-group score, whatever train holds.
        np.testing.assert_allclose(scores["val/cat"].outlier,
                                   image_scores(groups["val/cat"].vectors, scorer="knn").outlier)

        # A rerun reads every group back; a change in train/dog scores train/cat again, not val.
        stale = {**groups, "train/dog": _rows(dogs * 0 + 1, "d"),  # same contents, other values
                 "val/cat": _rows(groups["val/cat"].vectors * 0, "v")}
        again = split_scores(stale, "m", cache, seed=0)
        np.testing.assert_allclose(again["train/cat"].outlier, scores["train/cat"].outlier)
        np.testing.assert_allclose(again["val/cat"].outlier, scores["val/cat"].outlier)
        moved = {**stale, "train/dog": _rows(-dogs, "e")}  # other dogs, none near the stray one
        changed = split_scores(moved, "m", cache, seed=0)
        assert changed["train/cat"].outlier[0] < scores["train/cat"].outlier[0] / 10
        np.testing.assert_allclose(changed["val/cat"].outlier, scores["val/cat"].outlier)


@pytest.mark.parametrize("exact_up_to", [10_000, 100])  # exact; the approximate index
def test_the_search_outside_a_group_never_finds_its_rows(exact_up_to: int) -> None:
    rng = np.random.default_rng(4)
    U = unit_rows(np.concatenate([_blob(rng, 300, 16), -_blob(rng, 300, 16), _blob(rng, 50, 16)]))
    spans = [(0, 300), (300, 600), (600, 650)]
    for (start, stop), (similarity, rows) in zip(
            spans, nearest_outside(U, spans, 3, exact_up_to=exact_up_to), strict=True):
        assert similarity.shape == rows.shape == (stop - start, 3)
        assert not ((rows >= start) & (rows < stop)).any()
        inside = np.ones(len(U), bool)
        inside[start:stop] = False
        best = np.sort(U[start:stop] @ U[inside].T, axis=1)[:, ::-1][:, :3]
        found = rows >= 0
        assert (similarity[found] <= best[found] + 1e-5).all()  # never better than the truth
        if exact_up_to > len(U):
            np.testing.assert_allclose(similarity, best, atol=1e-5)


def test_planted_ankle_boots_rank_top_among_sandals(tmp_path: Path) -> None:
    """Real images through the real model and `repsample check`: four ankle boots filed with 120
    sandals, beside the other classes' folders. The within-group distance alone ranks two of
    them 5th and 9th (measured); compared with the other folders, they are the top four."""
    root = tmp_path / "data"
    shutil.copytree(EXAMPLE / "train", root / "train")
    boots = sorted((EXAMPLE / "val" / "Ankle boot").glob("*.png"))[:4]
    planted = {f"zz_boot_{i}.png" for i in range(4)}
    for i, boot in enumerate(boots):
        shutil.copy(boot, root / "train" / "Sandal" / f"zz_boot_{i}.png")
    result = CliRunner().invoke(cli, ["check", str(root), str(tmp_path / "check"), "--cache",
                                      str(tmp_path / "cache.sqlite")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "check" / "outliers.csv", newline="", encoding="utf-8") as fh:
        listed = [row for row in csv.DictReader(fh) if row["group"] == "train/Sandal"]
    assert {row["path"].rsplit("/", 1)[-1] for row in listed} == planted  # 3 % of 124: 4


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 real ankle boots with three T-shirts, a blank image and an exact copy planted."""
    root = tmp_path_factory.mktemp("outliers") / "data"
    shutil.copytree(EXAMPLE / GROUP, root / GROUP)
    shirts = sorted((EXAMPLE / "val" / "T-shirt top").glob("*.png"))[:3]
    for i, shirt in enumerate(shirts):
        shutil.copy(shirt, root / GROUP / f"zz_shirt_{i}.png")
    Image.new("L", (28, 28), 128).save(root / GROUP / "zz_blank.png")
    first = sorted((root / GROUP).glob("train_*.png"))[0]
    shutil.copy(first, root / GROUP / "zz_copy.png")
    return root


def _select(root: Path, out: Path, *options: str) -> str:
    result = CliRunner().invoke(cli, ["select", str(root), str(out), "--per-class", "10",
                                      "--cache", str(root.parent / "cache.sqlite"), "--no-report",
                                      *options])
    assert result.exit_code == 0, result.output
    return result.output


def _manifest(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def finished(planted: Path) -> Path:
    """One run with the defaults, copied by each test before it edits it."""
    out = planted.parent / "finished"
    _select(planted, out)
    return out


@pytest.fixture
def out(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "out"))


def test_drop_outliers_sets_the_misfits_aside(planted: Path, tmp_path: Path) -> None:
    text = _select(planted, tmp_path / "out", "--drop-outliers", "0.04")  # the real default model
    rows = _manifest(tmp_path / "out")

    # 125 images: the top 5 by outlier score are not eligible, the four misfits among them.
    dropped = {name for name, row in rows.items() if row["reason"] == "outlier"}
    assert len(dropped) == 5 and set(MISFITS) <= dropped
    assert all(rows[name]["status"] == "not_selected" for name in dropped)
    assert all(rows[name]["cluster"] == "" for name in dropped)  # selection never saw them
    for name, row in rows.items():  # every image is scored
        for column in ("typicality", "outlier_score", "uniqueness"):
            assert float(row[column]) >= 0, (name, column)
    by_outlier = sorted(rows, key=lambda name: -float(rows[name]["outlier_score"]))
    assert set(by_outlier[:4]) == set(MISFITS)
    assert max(float(rows[n]["typicality"]) for n in MISFITS) < np.median(
        [float(r["typicality"]) for r in rows.values()])

    copy = rows["zz_copy.png"]  # dedup's reason, its similarity on both sides
    assert copy["reason"] == "duplicate" and copy["duplicate_similarity"] == "1"
    original = rows[copy["duplicate_of"].rsplit("/", 1)[-1]]
    assert original["duplicate_similarity"] == "1" and original["reason"] == ""
    assert float(copy["uniqueness"]) == pytest.approx(0, abs=1e-3)
    assert all(row["duplicate_similarity"] == "" for name, row in rows.items()
               if name not in ("zz_copy.png", original["path"].rsplit("/", 1)[-1]))

    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["groups"][GROUP]["outliers"] == 5 and record["groups"][GROUP]["excluded"] == 6
    assert record["totals"]["outliers"] == 5 and record["parameters"]["drop_outliers"] == 0.04
    assert f"5 outlier(s) not eligible (--drop-outliers): {GROUP} 5" in " ".join(text.split())
    run = read_run(tmp_path / "out")  # and the records reader takes it back, typed
    typed = {row.name: row for row in run.manifest.rows}
    assert typed["zz_blank.png"].reason == "outlier" and typed["zz_copy.png"].duplicate_similarity == 1
    assert typed["zz_blank.png"].outlier_score == pytest.approx(float(rows["zz_blank.png"]["outlier_score"]))


def test_off_by_default_scores_still_written(out: Path) -> None:
    rows = _manifest(out)
    assert not any(row["reason"] == "outlier" for row in rows.values())
    assert sum(row["status"] == "selected" for row in rows.values()) == 10
    assert all(row["outlier_score"] for row in rows.values())
    record = json.loads((out / "run.json").read_text())
    assert record["groups"][GROUP]["outliers"] == 0 and record["groups"][GROUP]["excluded"] == 1


def test_check_lists_each_groups_outliers(planted: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(planted), str(tmp_path / "check"), "--cache",
                                      str(planted.parent / "cache.sqlite")])
    assert result.exit_code == 0, result.output
    assert "outliers (top 3% of each group)" in result.output
    with open(tmp_path / "check" / "outliers.csv", newline="", encoding="utf-8") as fh:
        listed = list(csv.DictReader(fh))
    assert len(listed) == 4  # 3 % of 125, rounded
    assert [row["rank"] for row in listed] == ["1", "2", "3", "4"]
    assert {row["path"].rsplit("/", 1)[-1] for row in listed} == set(MISFITS)
    scores = [float(row["outlier_score"]) for row in listed]
    assert scores == sorted(scores, reverse=True)
    summary = json.loads((tmp_path / "check" / "check.json").read_text())["summary"]
    assert summary["outliers"] == 4


def test_drop_outliers_must_be_a_share_below_one(planted: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", str(planted), str(tmp_path / "out"),
                                      "--drop-outliers", "1"])
    assert result.exit_code == 2
    assert "--drop-outliers must be in [0, 1), got 1" in result.output
    assert not (tmp_path / "out").exists()


def test_a_manifest_from_before_the_scores_still_reads(planted: Path, out: Path,
                                                       tmp_path: Path) -> None:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert tuple(table[0]) == MANIFEST_FIELDS
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(row[: len(LEGACY_MANIFEST_FIELDS)] for row in table)

    run = read_run(out)
    assert all(row.outlier_score is None and row.reason == "" for row in run.manifest.rows)
    kept = CliRunner().invoke(cli, ["select", str(planted), str(tmp_path / "again"), "--keep",
                                    str(out / "manifest.csv"), "--per-class", "12", "--cache",
                                    str(planted.parent / "cache.sqlite"), "--no-report"])
    assert kept.exit_code == 0, kept.output


@pytest.mark.parametrize(("column", "value", "message"), [
    ("reason", "weird", "reason 'weird' is not one of duplicate, leak, outlier"),
    ("outlier_score", "nan", "outlier_score 'nan' is not a number"),
    ("uniqueness", "-1", "uniqueness '-1' is not a number >= 0"),
])
def test_a_bad_score_cell_is_one_line(out: Path, column: str, value: str, message: str) -> None:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    at = MANIFEST_FIELDS.index(column)
    row = next(i for i, r in enumerate(table) if r[2] == "not_selected")
    table[row][at] = value
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(RepsampleError, match=message):
        read_manifest(out / "manifest.csv")
    result = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert result.exit_code == 2 and message in result.output
