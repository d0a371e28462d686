"""Linked-document generation with a small document-aware transformer."""

__version__ = "0.1.0"
__all__ = ["__version__"]
