"""The guards that keep INPUT unmodified: OUTPUT and the embedding cache stay apart from it, and
the cache out of OUTPUT, whatever INPUT's kind (a folder, a listing, an hf:// dataset)."""

from __future__ import annotations

from pathlib import Path

from repsample.errors import RepsampleError, UsageError
from repsample.inputs.dispatch import listing_file, local_root


def check_input_apart(input_dir: Path, output_dir: Path) -> None:
    """INPUT must be an existing folder, and OUTPUT neither INPUT nor inside it."""
    if not input_dir.exists():
        raise RepsampleError(f"INPUT {input_dir} does not exist")
    if not input_dir.is_dir():
        raise RepsampleError(f"INPUT {input_dir} is not a folder; point it at the dataset folder "
                             "or at a .csv, .jsonl or .parquet listing")
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst == src or src in dst.parents:
        raise RepsampleError(f"OUTPUT {output_dir} is inside INPUT {input_dir}; choose a folder outside it")


def check_paths(input_dir: Path, output_dir: Path) -> None:
    """Refuse what would modify INPUT: OUTPUT inside INPUT, or INPUT inside OUTPUT."""
    check_input_apart(input_dir, output_dir)
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst in src.parents:
        raise RepsampleError(f"OUTPUT {output_dir} contains INPUT {input_dir}; choose a folder beside it")


def check_input(src: Path | str, output_dir: Path) -> None:
    """Refuse what would modify INPUT, whatever its kind: a folder (check_paths), a listing
    (check_listing_apart), an hf:// dataset's folder; a URL is checked by repsample.fsio."""
    root, listed = local_root(src), listing_file(src)
    if root is not None:
        check_paths(root, output_dir)
    elif listed is not None:
        check_listing_apart(listed, output_dir)


def check_listing_apart(listing: Path, output_dir: Path) -> None:
    """OUTPUT may not hold a listing INPUT (its folder included); a listed file inside OUTPUT is
    refused when the listing is read (repsample.inputs.listing)."""
    src, dst = listing.resolve(), output_dir.resolve()
    if dst in src.parents:
        raise RepsampleError(f"OUTPUT {output_dir} holds the listing {listing}; choose a folder "
                             "beside it or below it")


def check_cache_apart(cache: Path, *, input_path: Path | None = None,
                      output_dir: Path | None = None) -> None:
    """Refuse an embedding cache at or inside INPUT (a folder or a listing file), which is never
    written, or inside OUTPUT, which each run replaces whole: the cache would stay behind in the
    replaced result, and the next command would not find it."""
    path = cache.resolve()
    for folder, why in ((input_path, "INPUT {}, which repsample never writes"),
                        (output_dir, "OUTPUT {}, which each run replaces whole")):
        if folder is not None and (path == folder.resolve() or folder.resolve() in path.parents):
            raise UsageError(f"{str(cache)!r} is inside {why.format(folder)}; pass a path outside it",
                             option="cache")
