"""Bandit-routed synthetic data from grammars and LLMs, with validators and feedback."""

__version__ = "0.1.0"
__all__ = ["__version__"]
