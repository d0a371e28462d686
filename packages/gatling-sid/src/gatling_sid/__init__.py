"""Policy-compliant gold tool-call traces and labelled hard negatives."""

__version__ = "0.1.0"
__all__ = ["__version__"]
