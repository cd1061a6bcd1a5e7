"""The installed version, from the package metadata (pyproject.toml is the one place it is written)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("repsample")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
