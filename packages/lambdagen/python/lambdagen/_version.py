"""Package version: the installed metadata, whose one source is packages/lambdagen/Cargo.toml (maturin)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lambdagen")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"
