"""What reading a listing costs against scanning the same images as folders (issue 17).

    .venv/bin/python bench/listing_scan.py [--sizes 10000 100000] [--work DIR]

The scan is the only stage where a listing differs from a folder tree: after it, the same
records go through the same pipeline. Per size, 20 class folders of small files (the scan stats
files, it never decodes them); timed: the folder scan (baseline), a CSV listing of their paths,
and a Parquet file holding the same bytes in a column. Prints seconds and the ratio to the
folder scan, measured in this one run.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from repsample.inputs.dispatch import InputOptions, scan_input
from repsample.inputs.folder import scan

GROUPS = 20
PAYLOAD = b"\x89PNG\r\n\x1a\n" + bytes(200)  # a PNG's signature: the format a bytes row is named by


def build(root: Path, n: int) -> tuple[Path, Path, Path]:
    folder = root / "tree"
    rows = []
    for i in range(n):
        group = f"class_{i % GROUPS:02d}"
        path = folder / group / f"{i:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PAYLOAD + i.to_bytes(8, "little"))
        rows.append((path.relative_to(folder).as_posix(), group))
    listing = folder / "labels.csv"
    with open(listing, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    parquet = root / "images.parquet"
    pq.write_table(pa.table({"image": [PAYLOAD + i.to_bytes(8, "little") for i in range(n)],
                             "label": [g for _, g in rows]}), parquet)
    return folder, listing, parquet


def timed(run: Callable[..., object], *args: object, repeat: int = 3) -> float:
    """The best of three: the machine is shared."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    options = InputOptions((".png",))
    print(f"{'images':>8} {'folder s':>9} {'csv s':>7} {'csv/folder':>10} {'parquet s':>9} "
          f"{'parquet/folder':>14}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            folder, listing, parquet = build(Path(tmp), n)
            base = timed(scan, folder, (".png",))
            from_csv = timed(scan_input, listing, options)
            from_parquet = timed(scan_input, parquet, options)
            assert sum(len(g.files) for g in scan_input(listing, options).groups) == n
            print(f"{n:>8} {base:>9.2f} {from_csv:>7.2f} {from_csv / base:>10.2f} "
                  f"{from_parquet:>9.2f} {from_parquet / base:>14.2f}")


if __name__ == "__main__":
    main()
