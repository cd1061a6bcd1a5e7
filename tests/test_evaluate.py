"""evaluate: metric directions on plain matrices, then `select` -> `evaluate` and --keep/--fraction
through the real CLI (random-weights ResNet18: the test is about the plumbing, not the model)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import TreeFactory, make_image
from repsample.cli import cli
from repsample.evaluate import Reference, duplicate_rate, evaluate_output, linear_probe, random_subsets

FAST = ["--model", "resnet18", "--weights", "random", "--no-report", "-q"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def two_blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (150, 8)), rng.normal(8, 1, (50, 8))])
    return X, np.repeat([0, 1], [150, 50])


def test_whole_group_scores_perfectly() -> None:
    X, labels = two_blobs()
    ref = Reference.build(X, labels)
    s = ref.score(np.arange(len(X)))
    # Coverage is each image's distance to its nearest selected one, taken as a difference: exactly
    # 0 for an image that is selected, on every BLAS (the dot-product formula left 1.8e-8 on AVX2).
    assert s["coverage_mean"] == 0 and s["coverage_max"] == 0
    # MMD is the square root of a difference of kernel means: a rounding of 1e-16 shows as 1e-8.
    # The bar stays meaningful: leaving out one image of the 200 already scores 5e-3.
    assert s["mmd"] is not None and s["mmd"] < 1e-6 and s["cluster_tv"] == 0
    assert ref.score(np.arange(len(X) - 1))["mmd"] > 1e-3  # type: ignore[operator]


def test_a_one_sided_subset_scores_worse_than_a_spread_one() -> None:
    X, labels = two_blobs()
    ref = Reference.build(X, labels)
    one_sided = ref.score(np.arange(20))  # only the first blob
    spread = ref.score(np.r_[np.arange(0, 150, 10), np.arange(150, 200, 10)])  # 15 + 5
    for metric in ("coverage_mean", "coverage_max", "mmd", "cluster_tv"):
        assert spread[metric] < one_sided[metric], metric  # type: ignore[operator]
    assert spread["cluster_tv"] == 0 and one_sided["cluster_tv"] == 0.25


def test_duplicates_are_counted_by_cosine() -> None:
    angle = np.deg2rad([0.0, 10.0, 45.0, 90.0])  # cos(10 deg) = 0.985; cos(45 deg) = 0.71
    Y = np.c_[np.cos(angle), np.sin(angle)] * np.array([[1.0], [7.0], [1.0], [3.0]])
    assert duplicate_rate(Y) == 0.5  # the first two, whatever their lengths
    assert duplicate_rate(Y, min_cosine=0.99) == 0.0
    assert duplicate_rate(np.vstack([Y, Y[3]])) == 0.8  # an exact copy: it and its original count
    assert duplicate_rate(Y[:1]) == 0.0


def test_random_subsets_are_seeded() -> None:
    a, b = random_subsets(100, 10, 2), random_subsets(100, 10, 2)
    assert [x.tolist() for x in a] == [x.tolist() for x in b] and a[0].tolist() != a[1].tolist()


def test_probe_learns_separable_classes() -> None:
    X, y = two_blobs()
    assert linear_probe(X[::2], y[::2], X[1::2], y[1::2]) == 1.0
    assert linear_probe(X[:10], y[:10], X, y) is None  # one class only: no probe


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_select_then_evaluate_then_keep(make_tree: TreeFactory, tmp_path: Path,
                                        cache_path: Path) -> None:
    root = make_tree({"train/a": 24, "train/b": 24, "test/a": 6, "test/b": 6})
    out = tmp_path / "out"
    code, text = run("select", str(root), str(out), "--per-class", "8", "--strategy", "facility",
                     "--allocation", "sqrt", "--k-min", "2", "--k-max", "4",
                     "--cache", str(cache_path), *FAST)
    assert code == 0, text

    code, text = run("evaluate", str(out))
    assert code == 0, text
    assert "train/a" in text and "linear probe" in text
    result = json.loads((out / "evaluation.json").read_text())
    assert set(result["groups"]) == {"train/a", "train/b", "test/a", "test/b"}
    group = result["groups"]["train/a"]
    assert group["images"] == 24 and group["selected"] == 8
    assert set(group["random"]["mmd"]) == {"mean", "std"} and result["seeds"] == 5
    probe = result["linear_probe"]
    assert probe["test_split"] == "test" and probe["test_images"] == 12
    assert 0 <= probe["selection"] <= 1

    first = {r["path"] for r in manifest(out) if r["status"] == "selected"}
    grown = tmp_path / "grown"
    code, text = run("select", str(root), str(grown), "--per-class", "12", "--keep",
                     str(out / "manifest.csv"), "--strategy", "kcenter", "--k-min", "2",
                     "--k-max", "4", "--cache", str(cache_path), *FAST)
    assert code == 0, text
    rows = manifest(grown)
    second = {r["path"] for r in rows if r["status"] == "selected"}
    assert first < second
    assert sum(r["group"] == "train/a" and r["status"] == "selected" for r in rows) == 12
    record = json.loads((grown / "run.json").read_text())
    assert "kept" in record["groups"]["train/a"]["note"]


def test_fraction_budget(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/a": 20, "train/b": 9})
    out = tmp_path / "out"
    code, text = run("select", str(root), str(out), "--fraction", "0.25", "--strategy", "typical",
                     "--k-min", "2", "--k-max", "3", "--cache", str(cache_path), *FAST)
    assert code == 0, text
    rows = manifest(out)
    count = {g: sum(r["group"] == g and r["status"] == "selected" for r in rows)
             for g in ("train/a", "train/b")}
    assert count == {"train/a": 5, "train/b": 2}  # 20 * 0.25; 9 * 0.25 = 2.25 -> 2


def test_user_mistakes_are_one_line(tmp_path: Path, make_tree: TreeFactory) -> None:
    root = make_tree({"a": 3})
    for args, needle in [
        (("evaluate", str(tmp_path)), "manifest.csv"),
        (("select", str(root), str(tmp_path / "o"), "--per-class", "2", "--fraction", "0.5"),
         "give one of --per-class, --fraction or --total"),
        (("select", str(root), str(tmp_path / "o"), "--fraction", "1.5"), "--fraction"),
        (("select", str(root), str(tmp_path / "o"), "--keep", str(tmp_path / "nope.csv")),
         "--keep"),
    ]:
        code, text = run(*args)
        assert code == 2, text
        assert needle in text and len(text.strip().splitlines()) == 1 and "Traceback" not in text


def test_an_evaluation_of_an_earlier_selection_is_never_shown(make_tree: TreeFactory,
                                                              tmp_path: Path, cache_path: Path) -> None:
    """evaluate, then a new selection: the old figures must not appear as the new one's, even
    where the old evaluation.json is still (or again) beside the new manifest."""
    from repsample.output.records import read_evaluation, read_run

    root = make_tree({"train/a": 12, "train/b": 12})
    out = tmp_path / "out"
    select = ["select", str(root), str(out), "--k-min", "2", "--k-max", "3", "--cache",
              str(cache_path), "--model", "resnet18", "--weights", "random", "-q"]
    code, text = run(*select, "--per-class", "6")
    assert code == 0, text
    code, text = run("evaluate", str(out))
    assert code == 0, text
    old = (out / "evaluation.json").read_bytes()
    assert json.loads(old)["scored"] == read_run(out).selection_id
    assert "Evaluation against random" in (out / "report.html").read_text(encoding="utf-8")

    code, text = run(*select, "--per-class", "3", "--overwrite")
    assert code == 0, text
    assert "Evaluation against random" not in (out / "report.html").read_text(encoding="utf-8")

    (out / "evaluation.json").write_bytes(old)  # left behind, copied back, restored from a backup
    evaluation = read_evaluation(read_run(out))
    assert evaluation is not None and evaluation.state == "stale"
    code, text = run("report", str(out), "-q")
    assert code == 0, text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Evaluation against random" not in html and 'id="evaluation"' not in html
    assert "scored an earlier selection" in html

    code, text = run("evaluate", str(out))  # scoring the new selection makes it current again
    assert code == 0, text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Evaluation against random" in html and "earlier selection" not in html


# -- bugs of issue 13 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copies_evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """train/a: 16 distinct images and 48 exact copies of its first (dedup sets them aside);
    train/b: 16 distinct. Selected and evaluated with the real default model, on which distinct
    images are not near-duplicates (the random-weights network calls most pairs near)."""
    base = tmp_path_factory.mktemp("copies")
    root, out, cache = base / "data", base / "out", base / "cache.sqlite"
    for g, group in enumerate(("train/a", "train/b")):
        for i in range(16):
            make_image(root / group / f"img_{i:03d}.jpg", seed=1000 * g + i)
    for i in range(48):
        shutil.copy(root / "train/a/img_000.jpg", root / f"train/a/z_copy_{i:02d}.jpg")
    code, text = run("select", str(root), str(out), "--per-class", "6", "--k-min", "2",
                     "--k-max", "3", "--cache", str(cache), "--no-report", "-q")
    assert code == 0, text
    assert sum(r["duplicate_of"] != "" for r in manifest(out)) == 48
    code, text = run("evaluate", str(out))
    assert code == 0, text
    return out, cache, json.loads((out / "evaluation.json").read_text())


def test_dedup_keeps_the_cluster_tv(copies_evaluated: tuple[Path, Path, dict[str, Any]]) -> None:
    """Copies dedup set aside have no cluster: the shares are those of the eligible images."""
    _, _, result = copies_evaluated
    for name in ("train/a", "train/b"):
        assert result["groups"][name]["selection"]["cluster_tv"] is not None, name
        assert result["groups"][name]["random"]["cluster_tv"]["mean"] is not None, name
    assert result["overall"]["selection"]["cluster_tv"] is not None
    assert result["overall"]["random"]["cluster_tv"] is not None
    assert result["groups"]["train/a"]["images"] == 64  # every valid image is still represented


def test_random_subsets_never_hold_images_dedup_set_aside(
        copies_evaluated: tuple[Path, Path, dict[str, Any]]) -> None:
    """Drawing from all 64 rows of train/a (49 of them one picture) puts copies in most subsets;
    drawing from the 16 eligible ones, as the selector did, puts in none."""
    from repsample.cache import ContentCache
    from repsample.output.records import read_run

    out, cache_path, result = copies_evaluated
    record = read_run(out)
    rows = [r for r in record.manifest.rows if r.group == "train/a"]
    with ContentCache(cache_path) as db:
        entries = db.get_many([r.hash for r in rows], record.record.cache_key)
    X = np.stack([entries[r.hash].vector for r in rows])  # type: ignore[misc]
    ref = Reference.build(X)
    from_all = float(np.mean([ref.score(s)["duplicate_rate"]  # type: ignore[misc]
                              for s in random_subsets(len(X), 6, 5)]))
    drawn = result["groups"]["train/a"]["random"]["duplicate_rate"]["mean"]
    assert from_all > 0.5 and drawn < from_all - 0.3, (from_all, drawn)


def test_random_subsets_come_from_the_eligible_rows() -> None:
    from repsample.evaluate import GroupEmbeddings, evaluate_group

    rng = np.random.default_rng(1)
    distinct = rng.normal(size=(10, 16))
    X = np.vstack([distinct, np.repeat(distinct[:1], 30, axis=0)])  # 30 copies of row 0, set aside
    labels = np.r_[np.repeat([0, 1], 5), np.full(30, -1)]
    g = GroupEmbeddings("g", X, selected=np.arange(0, 10, 2), clusters=labels, eligible=np.arange(10))
    scores = evaluate_group(g, seeds=5)
    assert scores.random["duplicate_rate"].mean == 0.0  # no copy is ever drawn
    assert scores.selection["cluster_tv"] == pytest.approx(0.1)  # 3 of 5 from cluster 0 against half and half
    assert scores.random["cluster_tv"].mean is not None and scores.images == 40


def test_the_probe_reads_split_names_as_drop_leaks_does(make_tree: TreeFactory, tmp_path: Path,
                                                        cache_path: Path) -> None:
    root = make_tree({"Training/a": 10, "Training/b": 10, "Validation/a": 4, "Validation/b": 4})
    out = tmp_path / "out"
    code, text = run("select", str(root), str(out), "--per-class", "4", "--k-min", "2",
                     "--k-max", "2", "--cache", str(cache_path), *FAST)
    assert code == 0, text
    code, text = run("evaluate", str(out))
    assert code == 0, text
    probe = json.loads((out / "evaluation.json").read_text())["linear_probe"]
    assert probe is not None and (probe["train_split"], probe["test_split"]) == ("Training", "Validation")
    assert probe["test_images"] == 8 and "linear probe (Training subset" in text


def test_one_parser_of_split_names() -> None:
    from repsample.hygiene.leaks import held_out_split, is_train_split, train_split

    assert is_train_split("TRAIN") and is_train_split("training") and not is_train_split("trainval")
    assert train_split(["test", "Training"]) == "Training" and train_split(["test", "val"]) is None
    assert held_out_split(["train", "valid", "Test"]) == "Test"  # test before val
    assert held_out_split(["train", "VAL"]) == "VAL" and held_out_split(["train", "extra"]) is None


def test_evaluate_output_returns_a_typed_result_whose_dict_is_the_file(
        make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    import dataclasses

    from repsample import EvaluationResult

    root = make_tree({"train/a": 10, "train/b": 10, "test/a": 3, "test/b": 3})
    out = tmp_path / "out"
    code, text = run("select", str(root), str(out), "--per-class", "4", "--k-min", "2",
                     "--k-max", "2", "--cache", str(cache_path), *FAST)
    assert code == 0, text
    result = evaluate_output(out, seeds=3)
    assert isinstance(result, EvaluationResult) and dataclasses.is_dataclass(result)
    data = json.loads((out / "evaluation.json").read_text())
    assert result.to_dict() == data
    assert list(data) == ["scored", "seeds", "duplicate_min_cosine", "groups", "overall", "linear_probe"]
    assert list(data["groups"]["train/a"]) == ["images", "selected", "selection", "random"]
    assert list(data["linear_probe"]) == ["train_split", "test_split", "classes", "test_images",
                                          "selection", "random"]
    assert result.groups["train/a"].selected == 4 and result.seeds == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seeds = 4  # type: ignore[misc]


def test_eligibility_follows_what_select_set_aside() -> None:
    """Duplicates only with dedup on, leaks only from a train split with --drop-leaks, and a
    selected image always (an earlier selection kept it)."""
    from repsample.evaluate import eligibility
    from repsample.output.layout import LEGACY_MANIFEST_FIELDS
    from repsample.output.records import Manifest, ManifestRow, Run, RunRecord

    def row(path: str, status: str = "not_selected", dup: str = "", leak: str = "") -> ManifestRow:
        return ManifestRow(path, path.rsplit("/", 1)[0], status, None, None, None, "0" * 64, "",
                           dup, leak)

    rows = (row("Train/a/1.jpg"), row("Train/a/2.jpg", dup="Train/a/1.jpg"),
            row("Train/a/3.jpg", leak="test/a/9.jpg"), row("test/a/9.jpg", leak="Train/a/3.jpg"),
            row("Train/a/4.jpg", "selected", dup="Train/a/1.jpg"))

    def eligible(check: dict[str, Any] | None) -> list[bool]:
        data = {} if check is None else {"check": check}
        legacy = Manifest(Path("m"), rows, "", LEGACY_MANIFEST_FIELDS)  # no reason column: run.json says
        run = Run(Path("out"), legacy, RunRecord(Path("r"), data, "", "", "", {}))
        return [eligibility(run)(r) for r in rows]

    assert eligible({"dedup": True, "drop_leaks": False}) == [True, False, True, True, True]
    assert eligible({"dedup": False, "drop_leaks": True}) == [True, True, False, True, True]
    assert eligible({"dedup": False, "drop_leaks": False}) == [True] * 5
    assert eligible(None) == [True] * 5  # a record from before the check: nothing was set aside


# -- modes covered (issue 14) ----------------------------------------------------------------


def test_modes_covered_counts_distinct_labels_and_names_the_missed() -> None:
    from repsample.evaluate import GroupEmbeddings, mode_scores

    X = np.random.default_rng(0).normal(size=(30, 4))
    labels = ["a"] * 20 + ["b"] * 6 + ["c"] * 2 + [None] * 2  # two images without a mode
    spread = GroupEmbeddings("g", X, np.array([0, 20, 26, 28]), np.zeros(30, int), np.arange(30))
    one_sided = GroupEmbeddings("g", X, np.arange(4), np.zeros(30, int), np.arange(30))
    held = mode_scores(spread, 5, labels)
    narrow = mode_scores(one_sided, 5, labels)
    assert held is not None and narrow is not None
    assert (held.total, held.selection, held.missed) == (3, 3, ())
    assert (narrow.selection, narrow.missed) == (1, ("b", "c"))
    assert held.random.mean is not None and 1 <= held.random.mean <= 3
    assert len(held.random_counts) == 5
    assert mode_scores(spread, 5, [None] * 30) is None  # no mode known: nothing to score


def test_mode_labels_from_a_csv_column_and_from_a_pattern(tmp_path: Path) -> None:
    from repsample.errors import UsageError
    from repsample.evaluate import ModeLabels

    table = tmp_path / "modes.csv"
    table.write_text("path,source\ntrain/a/x_1.jpg,lake\ntrain/a/x_2.jpg,\n", encoding="utf-8")
    labels = ModeLabels.from_csv(table, "source")
    assert labels.label("train/a/x_1.jpg") == "lake" and labels.label("train/a/x_2.jpg") is None
    assert labels.source == "modes.csv:source"
    pattern = ModeLabels.from_pattern(r"/([a-z]+)_\d+\.jpg$")
    assert pattern.label("train/a/lake_12.jpg") == "lake" and pattern.label("train/a/1.png") is None
    assert ModeLabels.from_pattern(r"lake|hill").label("a/hill_3.jpg") == "hill"  # no group: the match

    with pytest.raises(UsageError, match=r"has no 'mode' column .*path, source"):
        ModeLabels.from_csv(table)
    table.write_text("path,mode\na.jpg,x\na.jpg,y\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"line 3: a\.jpg is labelled both 'x' and 'y'"):
        ModeLabels.from_csv(table)
    with pytest.raises(UsageError, match="cannot read"):
        ModeLabels.from_csv(tmp_path / "missing.csv")
    with pytest.raises(UsageError, match="mode_pattern is not a regular expression"):
        ModeLabels.from_pattern("([a-z")


def test_evaluate_scores_modes_covered_through_the_cli(make_tree: TreeFactory, tmp_path: Path,
                                                       cache_path: Path) -> None:
    root = make_tree({"train/a": 12, "train/b": 12})
    out = tmp_path / "out"
    code, text = run("select", str(root), str(out), "--per-class", "4", "--k-min", "2",
                     "--k-max", "2", "--cache", str(cache_path), *FAST)
    assert code == 0, text
    # Mode = the image number's parity in train/a, its tens digit in train/b.
    table = tmp_path / "modes.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "kind"])
        for i in range(12):
            w.writerow([f"train/a/img_{i:03d}.jpg", f"p{i % 2}"])
            w.writerow([f"train/b/img_{i:03d}.jpg", f"t{i // 10}"])
    code, text = run("evaluate", str(out), "--modes", str(table), "--mode-column", "kind")
    assert code == 0, text
    data = json.loads((out / "evaluation.json").read_text())
    assert data["modes"]["source"] == "modes.csv:kind" and data["modes"]["total"] == 4
    picked = [r for r in manifest(out) if r["status"] == "selected"]
    expected = {("a", f"p{int(r['path'][-7:-4]) % 2}") if "/a/" in r["path"] else
                ("b", f"t{int(r['path'][-7:-4]) // 10}") for r in picked}
    assert data["modes"]["selection"] == len(expected)
    assert data["groups"]["train/a"]["modes"]["total"] == 2
    assert f"modes covered (modes.csv:kind): {len(expected)} of 4" in text

    code, text = run("evaluate", str(out), "--mode-pattern", r"img_0(\d)")
    assert code == 0, text
    assert json.loads((out / "evaluation.json").read_text())["modes"]["total"] == 4  # 0 and 1, twice

    code, text = run("evaluate", str(out), "--mode-pattern", "nothing-matches")
    assert code == 2 and "mode labels (pattern:nothing-matches) give no image" in text
    code, text = run("evaluate", str(out), "--modes", str(table))
    assert code == 2 and "has no 'mode' column" in text and "Traceback" not in text
