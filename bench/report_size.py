"""How big report.html gets, by the number of images, with photographs as pictures.

    .venv/bin/python bench/report_size.py [--work DIR]

Each run is written directly (tests/synthetic_run.py: the manifest, run record and embedding
cache select would leave, with the score columns), its INPUT files hard links to 300 photo-like
512x384 JPEGs cropped from Debian's wallpapers (bench/speed.py's photo_group), so 100,000 images
cost seconds; every manifest row has its own hash, so the report treats them as distinct images.
Prints, per scale, the size of report.html and what it is made of: the pictures (data URIs), the
rest of the pictures' markup, the image lists, the charts and maps (SVG), and everything else.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from speed import photo_group  # noqa: E402  (bench/)

from repsample.report import build_report  # noqa: E402
from synthetic_run import write_run  # noqa: E402  (tests/)

SCALES = ((5, 200, 100), (5, 2000, 100), (50, 2000, 100), (50, 2000, 1000))  # groups, images, kept


def parts(html: str) -> dict[str, int]:
    pictures = sum(map(len, re.findall(r'src="(data:[^"]+)"', html)))
    figures = sum(map(len, re.findall(r'<figure class="thumb.*?</figure>', html, re.S)))
    lists = sum(map(len, re.findall(r'<pre class="list">.*?</pre>', html, re.S)))
    charts = sum(map(len, re.findall(r"<svg.*?</svg>", html, re.S)))
    total = len(html.encode())
    return {"total": total, "pictures": pictures, "picture markup": figures - pictures,
            "image lists": lists, "charts and maps": charts,
            "the rest": total - figures - lists - charts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="report-size-"))
    photo_group(work / "photos", 300, seed=0)
    photos = sorted((work / "photos").iterdir())
    print("| images | groups x images | kept per group | pictures | report.html | per image | "
          "pictures (data) | picture markup | image lists | charts and maps | the rest |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for groups, per_group, kept in SCALES:
        root = work / f"run-{groups}x{per_group}-{kept}"
        out = write_run(root, groups, per_group, kept, photos, scores=True)
        html = build_report(out, staged=True, projection="pca").read_text(encoding="utf-8")
        size = parts(html)
        images = groups * per_group
        shown = html.count('<img src="data:')
        mb = {k: f"{v / 1e6:.2f} MB" for k, v in size.items()}
        print(f"| {images:,} | {groups} x {per_group:,} | {kept:,} | {shown:,} | {mb['total']} | "
              f"{size['total'] / images:.0f} B | {mb['pictures']} | {mb['picture markup']} | "
              f"{mb['image lists']} | {mb['charts and maps']} | {mb['the rest']} |")


if __name__ == "__main__":
    main()
