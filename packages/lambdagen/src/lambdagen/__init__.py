"""Lambda-calculus beta-reduction traces from a Rust core."""

__version__ = "0.1.0"
__all__ = ["__version__"]
