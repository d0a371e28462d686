"""Regex -> minimal DFA -> balanced, coverage-driven datasets of accept / incomplete / reject strings."""

__version__ = "0.1.0"
__all__ = ["__version__"]
