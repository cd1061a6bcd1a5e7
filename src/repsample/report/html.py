"""Small HTML pieces shared by every page: thumbnails, tiles, tables. All text goes through esc()."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from repsample.output.export import exported_path
from repsample.output.records import Scores
from repsample.report.gather import SCORE_COLUMNS, Item, RunData, thumbnail_hash


def esc(value: object) -> str:
    """Text made safe for HTML; the odd bytes of a name that is not UTF-8 are shown as escapes."""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return escape(text, quote=True)


def href(rel_path: str) -> str:
    """A relative URL for a path under OUTPUT, every segment's bytes percent-encoded."""
    return "/".join(quote(part.encode("utf-8", "surrogateescape")) for part in rel_path.split("/"))


STATUS_TEXT = {"selected": "kept", "not_selected": "not kept", "error": "failed"}


def status_text(item: Item, scores: Scores | None = None) -> str:
    """kept / not kept / failed, with the manifest's reason when it gives one."""
    text = STATUS_TEXT.get(item.status, item.status)
    reason = scores.reason if scores is not None else ""
    return f"{text}: {reason}" if reason and item.status == "not_selected" else text


def score_text(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


class Thumbs:
    """Renders thumbnails carried inside the page (data URIs), each one a link that enlarges it.

    An image's first figure on the page has the id ``v<uid>`` (its point on the map links there);
    a figure repeated elsewhere (the outlier gallery, a duplicate pair) gets an id of its own.
    The enlarged view is the figure itself under CSS :target, so no picture is carried twice.
    """

    def __init__(self, output: Path, uris: dict[str, str], run: RunData, link_exports: bool) -> None:
        self.output, self.uris, self.run, self.link_exports = output, uris, run, link_exports
        self.uid = {item.path: n for n, item in enumerate(i for g in run.groups for i in g.items)}
        self.placed: set[str] = set()  # paths whose v<uid> figure is on the page
        self._repeats = 0

    def figure(self, item: Item, kept: bool = False, cluster_color: str | None = None,
               caption: str = "") -> str:
        uid = self.uid.get(item.path)
        if uid is None or item.path in self.placed:
            self._repeats += 1
            ident = f"w{self._repeats}"
        else:
            ident = f"v{uid}"
            self.placed.add(item.path)
        scores = self.run.scores_of(item)
        facts = self._facts(item, scores)
        digest = thumbnail_hash(item)
        if digest and digest in self.uris:
            inner = (f'<img src="{self.uris[digest]}" alt="{esc(item.name)}" decoding="async" '
                     'loading="lazy">')
        else:
            inner = (f'<span class="none" role="img" aria-label="{esc(item.name)}: no preview">'
                     "no preview</span>")
        cls = "thumb kept" if kept else "thumb"
        style = f' style="--c:{cluster_color}"' if cluster_color else ""
        extra = f'<div class="score">{esc(caption)}</div>' if caption else ""
        rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
        exported = ""
        if item.status == "selected" and self.link_exports:
            rel = exported_path(Path(), item.group, item.path).as_posix()
            if (self.output / rel).exists():
                exported = f' · <a href="{href(rel)}">the exported file (beside this report in OUTPUT)</a>'
        # The facts show on hover or focus (CSS), and beside the enlarged picture.
        return (f'<figure class="{cls}" id="{ident}"{style}>'
                f'<a class="open" href="#{ident}" aria-label="enlarge {esc(item.name)}">'
                f'<div class="box">{inner}</div></a><figcaption>{esc(item.name)}</figcaption>{extra}'
                f'<div class="zoomed"><dl>{rows}</dl><p><a href="#_" class="close">Close</a>'
                f"{exported}</p></div></figure>")

    def _facts(self, item: Item, scores: Scores | None) -> list[tuple[str, str]]:
        facts = [("file", item.path), ("status", status_text(item, scores))]
        if item.cluster is not None and item.cluster >= 0:
            facts.append(("cluster", str(item.cluster)))
        if item.rank is not None:
            facts.append(("rank in its cluster", str(item.rank)))
        if item.distance is not None:
            facts.append(("distance to centre", f"{item.distance:.4g}"))
        if scores is not None:
            facts.extend((SCORE_COLUMNS[c].label, score_text(scores.get(c)))
                         for c in self.run.score_columns if scores.get(c) is not None)
        if item.duplicate_of:
            facts.append(("duplicate of", item.duplicate_of))
        if item.leak_with:
            facts.append(("also in another split", item.leak_with))
        return facts


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
