"""Small HTML pieces shared by every page: thumbnails, tiles, tables. All text goes through esc()."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from repsample.export import exported_path
from repsample.report.gather import Item, thumbnail_hash
from repsample.report.thumbs import thumb_relpath


def esc(value: object) -> str:
    """Text made safe for HTML; the odd bytes of a name that is not UTF-8 are shown as escapes."""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return escape(text, quote=True)


def href(rel_path: str) -> str:
    """A relative URL for a path under OUTPUT, every segment's bytes percent-encoded."""
    return "/".join(quote(part.encode("utf-8", "surrogateescape")) for part in rel_path.split("/"))


class Thumbs:
    """Renders thumbnails from a page at some depth below OUTPUT (prefix '' or '../../')."""

    def __init__(self, output: Path, available: set[str], prefix: str, link_exports: bool) -> None:
        self.output, self.available, self.prefix = output, available, prefix
        self.link_exports = link_exports

    def figure(self, item: Item, kept: bool = False, cluster_color: str | None = None) -> str:
        digest = thumbnail_hash(item)
        detail = [item.path]
        if item.rank is not None:
            detail.append(f"rank {item.rank} in its cluster")
        if item.distance is not None:
            detail.append(f"distance to centre {item.distance:.4g}")
        title = esc(" | ".join(detail))
        if digest and digest in self.available:
            inner = (f'<img src="{self.prefix}{thumb_relpath(digest)}" alt="{esc(item.name)}" '
                     'loading="lazy" decoding="async">')
        else:
            inner = '<span class="none">no preview</span>'
        if kept and self.link_exports:
            rel = exported_path(Path(), item.group, item.path).as_posix()
            if (self.output / rel).exists():
                inner = f'<a href="{self.prefix}{href(rel)}">{inner}</a>'
        cls = "thumb kept" if kept else "thumb"
        style = f' style="--c:{cluster_color}"' if cluster_color else ""
        return (f'<figure class="{cls}"{style} title="{title}"><div class="box">{inner}</div>'
                f"<figcaption>{esc(item.name)}</figcaption></figure>")


def tile(label: str, value: object, small: bool = False) -> str:
    cls = "v small" if small else "v"
    return f'<div class="tile"><div class="{cls}">{esc(value)}</div><div class="k">{esc(label)}</div></div>'


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = (),
          raw: Sequence[int] = ()) -> str:
    """A table of escaped cells; columns in raw hold HTML this module built."""
    def cell(tag: str, i: int, value: object) -> str:
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{value if i in raw else esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"
