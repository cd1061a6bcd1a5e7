"""Listings as INPUT: a CSV, JSONL or Parquet file naming images (paths or bytes) with a label and
a split gives the groups and the selection a folder tree gives; bad listings are one line."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import DATA, FAST_ARGS, FAST_MODEL, TreeFactory, make_image
from repsample.cli import cli
from repsample.errors import UsageError
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.output.verify import verify_output
from repsample.pipeline import select

RUN = {**FAST_MODEL, "per_class": 4, "k_min": 2, "k_max": 3, "report": False}
GROUPS = {"train/cat": 9, "train/dog": 7, "val/cat": 3}


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def tree_rows(root: Path) -> list[dict[str, str]]:
    """path,label,split of every image of a split/label tree, paths relative to root."""
    return [{"path": p.relative_to(root).as_posix(), "label": p.parent.name, "split": p.parent.parent.name}
            for p in sorted(root.rglob("*.jpg"))]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def one_line(code: int, out: str, *needles: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), (code, out)
    for needle in needles:
        assert needle in lines[0], (needle, out)


def test_a_csv_listing_gives_the_folder_trees_selection(make_tree: TreeFactory, tmp_path: Path,
                                                        cache_path: Path) -> None:
    root = make_tree(GROUPS)
    listing = write_csv(root / "labels.csv", tree_rows(root))
    folder = select(root, tmp_path / "folder", cache=cache_path, **RUN)
    listed = select(listing, tmp_path / "listed", cache=cache_path, **RUN)
    assert [g.name for g in listed.groups] == sorted(GROUPS)
    # Same files, same groups, same order: the same manifest, row for row.
    assert read_manifest(listed.manifest_path) == read_manifest(folder.manifest_path)
    for rel in listed.selected():
        assert (tmp_path / "listed" / rel).read_bytes() == (root / rel).read_bytes()
    assert verify_output(tmp_path / "listed").ok
    record = json.loads(listed.run_record_path.read_text())
    assert record["totals"]["embedded"] == 0  # the folder run embedded every content already


def test_a_flat_folder_with_labels_gives_split_label_groups(make_tree: TreeFactory, tmp_path: Path,
                                                            cache_path: Path) -> None:
    data = tmp_path / "kaggle"
    rows = []
    for i in range(14):
        make_image(data / "images" / f"{i:04d}.jpg", seed=i)
        rows.append({"file_name": f"images/{i:04d}.jpg", "class": "ab"[i % 2],
                     "split": "train" if i < 10 else "test"})
    listing = write_csv(data / "train.csv", rows)
    result = select(listing, tmp_path / "out", cache=cache_path, label_column="class", **RUN)
    assert [(g.name, g.images, g.selected) for g in result.groups] == [
        ("test/a", 2, 2), ("test/b", 2, 2), ("train/a", 5, 4), ("train/b", 5, 4)]
    assert all(p.startswith("train/a/") for p in result.selected("train/a"))
    assert verify_output(tmp_path / "out").ok
    (tmp_path / "out" / "selection.csv").write_text("path\n")  # only --mode none writes one
    assert verify_output(tmp_path / "out").extra == ["selection.csv"]


def test_jsonl_with_absolute_paths_and_mode_none_writes_the_selection_as_jsonl(
        make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree(GROUPS)
    listing = tmp_path / "elsewhere" / "list.jsonl"
    listing.parent.mkdir()
    rows = [{**r, "path": str(root / r["path"]), "note": i} for i, r in enumerate(tree_rows(root))]
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = select(listing, out, cache=cache_path, mode="none", **RUN)
    written = [json.loads(line) for line in (out / "selection.jsonl").read_text().splitlines()]
    assert len(written) == sum(g.selected for g in result.groups) == 4 + 4 + 3
    by_path = {r["path"]: r for r in rows}
    for r in written:
        # The listing's own columns as they were, then the manifest's (path renamed: it clashes).
        assert {k: r[k] for k in ("path", "label", "split", "note")} == by_path[r["path"]]
        assert r["status"] == "selected" and r["group"] == f"{r['split']}/{r['label']}"
        assert r["repsample_path"] == f"{r['group']}/{Path(r['path']).name}"
    assert sorted(r["repsample_path"] for r in written) == sorted(result.selected())
    assert sorted(p.name for p in out.iterdir()) == [".repsample", "check.csv", "manifest.csv", "run.json",
                                                     "selection.jsonl"]
    assert verify_output(out).ok


def png_bytes(seed: int) -> bytes:
    path = make_image(Path(f"/tmp/repsample-listing-{os.getpid()}-{seed}.png"), seed)
    data = path.read_bytes()
    path.unlink()
    return data


def test_a_parquet_listing_of_image_bytes(tmp_path: Path, cache_path: Path) -> None:
    images = [png_bytes(i) for i in range(16)]
    labels = [i % 2 for i in range(16)]
    listing = tmp_path / "images.parquet"
    pq.write_table(pa.table({"image": pa.array(images, pa.binary()), "label": labels}), listing)
    out = tmp_path / "out"
    result = select(listing, out, cache=cache_path, **RUN)
    assert [(g.name, g.images, g.selected) for g in result.groups] == [("0", 8, 4), ("1", 8, 4)]
    rows = read_manifest(result.manifest_path)
    assert sorted(r["path"] for r in rows) == sorted(f"{i % 2}/{i}.png" for i in range(16))
    for rel in result.selected():
        row = int(Path(rel).stem)
        assert (out / rel).read_bytes() == images[row]  # the exported file is the row's image
    assert verify_output(out).ok

    # The cache keys on content: the same images in another order embed nothing again.
    order = list(reversed(range(16)))
    moved = tmp_path / "moved.parquet"
    pq.write_table(pa.table({"image": pa.array([images[i] for i in order], pa.binary()),
                             "label": [labels[i] for i in order]}), moved)
    again = select(moved, tmp_path / "again", cache=cache_path, mode="none", **RUN)
    assert json.loads(again.run_record_path.read_text())["totals"]["embedded"] == 0
    chosen = pq.read_table(tmp_path / "again" / "selection.parquet")
    assert chosen.num_rows == 8 and chosen.column_names[:2] == ["image", "label"]
    assert {"path", "group", "status", "hash"} <= set(chosen.column_names)  # no clash: "path"
    for image, path in zip(chosen.column("image").to_pylist(), chosen.column("path").to_pylist(),
                           strict=True):
        assert image == images[order[int(Path(path).stem)]]


def test_hugging_face_style_image_structs_keep_their_file_names_extension(tmp_path: Path,
                                                                          cache_path: Path) -> None:
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(1))).convert("RGB").save(jpeg, "JPEG")
    image = pa.array([{"bytes": jpeg.getvalue(), "path": "a.jpeg"}, {"bytes": png_bytes(2), "path": None}])
    pq.write_table(pa.table({"image": image, "label": ["x", "x"]}), tmp_path / "hf.parquet")
    result = select(tmp_path / "hf.parquet", tmp_path / "out", cache=cache_path, **RUN)
    assert sorted(result.selected()) == ["x/0.jpeg", "x/1.png"]


def test_bytes_cannot_be_linked(tmp_path: Path, cache_path: Path) -> None:
    pq.write_table(pa.table({"image": pa.array([png_bytes(1)]), "label": ["x"]}), tmp_path / "b.parquet")
    code, out = run("select", str(tmp_path / "b.parquet"), str(tmp_path / "out"), "--mode", "symlink",
                    "--cache", str(cache_path), *FAST_ARGS)
    one_line(code, out, "--mode", "bytes", "copy or none")
    assert not (tmp_path / "out").exists()


def test_missing_and_broken_files_are_error_rows(make_tree: TreeFactory, tmp_path: Path,
                                                 cache_path: Path) -> None:
    root = make_tree({"train/cat": 6})
    rows = tree_rows(root)
    shutil.copy(DATA / "truncated.jpg", root / "broken.jpg")
    rows += [{"path": "gone.jpg", "label": "cat", "split": "train"},
             {"path": "broken.jpg", "label": "cat", "split": "train"}]
    result = select(write_csv(root / "l.csv", rows), tmp_path / "out", cache=cache_path, **RUN)
    errors = {r["path"]: r["error"] for r in read_manifest(result.manifest_path) if r["status"] == "error"}
    assert set(errors) == {"train/cat/gone.jpg", "train/cat/broken.jpg"}
    assert "No such file" in errors["train/cat/gone.jpg"]
    assert result.groups[0].errors == 2 and result.groups[0].selected == 4


def test_rows_of_a_group_sharing_a_file_name_get_their_row_number(tmp_path: Path,
                                                                  cache_path: Path) -> None:
    data = tmp_path / "data"
    for i, folder in enumerate(("2019", "2020", "2021")):
        make_image(data / folder / "001.jpg", seed=i)
    rows = [{"path": f"{f}/001.jpg", "label": "cat"} for f in ("2019", "2020")]
    rows.append({"path": "2021/001.jpg", "label": "dog"})
    result = select(write_csv(data / "l.csv", rows), tmp_path / "out", cache=cache_path, **RUN)
    assert sorted(result.selected()) == ["cat/0-001.jpg", "cat/1-001.jpg", "dog/001.jpg"]
    assert verify_output(tmp_path / "out").ok


def test_a_symlink_leading_out_of_the_listings_folder_is_skipped_unless_followed(
        tmp_path: Path, cache_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "outside"
    for i in range(3):
        make_image(data / f"{i}.jpg", seed=i)
    make_image(outside / "secret.jpg", seed=9)
    (data / "link.jpg").symlink_to(outside / "secret.jpg")
    rows = [{"path": f"{i}.jpg", "label": "a"} for i in range(3)] + [{"path": "link.jpg", "label": "a"}]
    listing = write_csv(data / "l.csv", rows)
    closed = select(listing, tmp_path / "closed", cache=cache_path, **RUN)
    assert "a/link.jpg" not in {r["path"] for r in read_manifest(closed.manifest_path)}
    assert closed.groups[0].outside_links == 1
    followed = select(listing, tmp_path / "followed", cache=cache_path, follow_symlinks=True, **RUN)
    assert "a/link.jpg" in followed.selected()


def test_keep_and_check_work_on_a_listing(make_tree: TreeFactory, tmp_path: Path,
                                          cache_path: Path) -> None:
    root = make_tree(GROUPS)
    shutil.copy(root / "train/cat/img_000.jpg", root / "train/cat/copy.jpg")
    listing = write_csv(root / "labels.csv", tree_rows(root))
    first = select(listing, tmp_path / "first", cache=cache_path, **RUN)
    bigger = select(listing, tmp_path / "bigger", cache=cache_path, keep=first.manifest_path,
                    **{**RUN, "per_class": 6})
    for group in ("train/cat", "train/dog"):
        assert set(first.selected(group)) < set(bigger.selected(group))
    code, out = run("check", str(listing), str(tmp_path / "check"), "--cache", str(cache_path), *FAST_ARGS)
    assert code == 0, out
    check = (tmp_path / "check" / "check.csv").read_text()
    assert "train/cat/copy.jpg" in check and "train/cat/img_000.jpg" in check


@pytest.mark.parametrize(
    ("rows", "extra", "needles"),
    [
        ([{"path": "a.jpg", "class": "x"}], [], ["no column 'label'", "class", "--label-column"]),
        ([{"file": "a.jpg", "label": "x"}], ["--path-column", "image"], ["no column 'image'"]),
        ([{"where": "a.jpg", "label": "x"}], [], ["no column 'path'", "--path-column"]),
        ([{"path": "a.jpg", "label": "x"}, {"path": "./a.jpg", "label": "y"}], [],
         ["rows 0 and 1 both name", "a.jpg"]),
        ([{"path": "a.jpg", "label": ""}, {"path": "b.jpg", "label": " "}], [],
         ["column 'label' is empty"]),
        ([{"path": "a.jpg", "label": "x"}, {"path": "b.jpg", "label": ""}], [], ["row 1 has an empty label"]),
        ([{"path": "../a.jpg", "label": "x"}], [], ["row 0", "leads outside", "absolute path"]),
        ([{"path": "a.jpg", "label": "x/y"}], [], ["label 'x/y' cannot name a folder"]),
        ([{"path": "a.jpg", "label": "x"}], ["--hf-split", "train"], ["--hf-split applies to an hf://"]),
    ],
)
def test_bad_listings_are_one_line_exit_2(tmp_path: Path, rows: list[dict[str, str]], extra: list[str],
                                          needles: list[str]) -> None:
    data = tmp_path / "data"
    for name in ("a.jpg", "b.jpg"):
        make_image(data / name, seed=len(name))
    listing = write_csv(data / "l.csv", rows)
    code, out = run("select", str(listing), str(tmp_path / "out"), *extra, *FAST_ARGS)
    one_line(code, out, *needles)
    assert not (tmp_path / "out").exists()


def test_output_may_not_hold_the_listing_or_a_listed_file(tmp_path: Path, cache_path: Path) -> None:
    make_image(tmp_path / "data" / "a.jpg", seed=1)
    listing = write_csv(tmp_path / "data" / "l.csv", [{"path": "a.jpg", "label": "x"}])
    code, out = run("select", str(listing), str(tmp_path / "data"), "--overwrite", *FAST_ARGS)
    one_line(code, out, "holds the listing")
    code, out = run("select", str(listing), str(tmp_path), "--overwrite", *FAST_ARGS)
    one_line(code, out, "holds the listing")
    # Below the listing's folder is fine; a listing naming a file in OUTPUT is not.
    out_dir = tmp_path / "data" / "out"
    code, out = run("select", str(listing), str(out_dir), "--cache", str(cache_path), *FAST_ARGS)
    assert code == 0, out
    inside = write_csv(tmp_path / "inside.csv", [{"path": str(out_dir / "x" / "a.jpg"), "label": "y"}])
    code, out = run("select", str(inside), str(out_dir), "--overwrite", "--cache", str(cache_path),
                    *FAST_ARGS)
    one_line(code, out, "inside OUTPUT")
    assert (out_dir / "x" / "a.jpg").is_file()


def test_listing_options_need_a_listing(make_tree: TreeFactory, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="label_column applies to a listing"):
        select(make_tree({"a": 2}), tmp_path / "out", label_column="y", **RUN)


def test_a_listing_on_an_fsspec_store(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    import uuid

    import fsspec

    root = make_tree({"train/cat": 5, "train/dog": 5})
    fs = fsspec.filesystem("memory")
    base = f"/listing-{uuid.uuid4().hex[:8]}"
    rows = tree_rows(root)
    for r in rows:
        fs.pipe_file(f"{base}/{r['path']}", (root / r["path"]).read_bytes())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["path", "label", "split"])
    writer.writeheader()
    writer.writerows(rows)
    fs.pipe_file(f"{base}/labels.csv", buffer.getvalue().encode())
    try:
        remote = select(f"memory://{base}/labels.csv", tmp_path / "remote", cache=cache_path, **RUN)
        local = select(root, tmp_path / "local", cache=cache_path, **RUN)
        assert read_manifest(remote.manifest_path) == read_manifest(local.manifest_path)
        assert verify_output(tmp_path / "remote").ok
    finally:
        fs.rm(base, recursive=True)


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(pa.table({"image": pa.array([png_bytes(1)]), "label": ["x"]}), tmp_path / "b.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # what an import finds where it is absent
    code, out = run("select", str(tmp_path / "b.parquet"), str(tmp_path / "out"), *FAST_ARGS)
    one_line(code, out, "pyarrow is not installed; run: pip install 'repsample[parquet]'")


def test_a_file_that_is_not_its_format(tmp_path: Path) -> None:
    (tmp_path / "l.jsonl").write_text('{"path": "a.jpg", "label": "x"}\nnot json\n')
    (tmp_path / "l.parquet").write_text("path,label\n")
    code, out = run("select", str(tmp_path / "l.jsonl"), str(tmp_path / "out"), *FAST_ARGS)
    one_line(code, out, "l.jsonl line 2 is not JSON")
    code, out = run("select", str(tmp_path / "l.parquet"), str(tmp_path / "out"), *FAST_ARGS)
    one_line(code, out, "l.parquet is not a readable Parquet file")


def test_the_report_pictures_a_listings_images_selected_or_not(tmp_path: Path, cache_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Bytes rows and --mode none: no image is at INPUT/<manifest path> nor in OUTPUT, yet every
    image the report shows has its picture (select hands it where each was read)."""
    import logging

    images = [png_bytes(i) for i in range(12)]
    listing = tmp_path / "images.parquet"
    pq.write_table(pa.table({"image": pa.array(images, pa.binary()), "label": [i % 2 for i in range(12)]}),
                   listing)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        select(listing, out, cache=cache_path, mode="none", **{**RUN, "report": True})
    assert "could not be made" not in caplog.text
    thumbs = {p.stem for p in (out / ".report" / "thumbs").glob("*.jpg")}
    hashes = {r["hash"] for r in read_manifest(out / "manifest.csv")}
    assert thumbs == hashes  # 12 images, all shown in so small a run, all pictured
    assert (out / "report.html").read_text().count("data:image/jpeg;base64,") >= 12
