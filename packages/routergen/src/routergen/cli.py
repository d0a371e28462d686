"""Command line of routergen (skeleton: the generator is being built; see README)."""

import click

from . import __version__


@click.group(help="""Bandit-routed synthetic data from grammars and LLMs, with validators and feedback.""")
@click.version_option(__version__, prog_name="routergen")
def main() -> None:
    """Entry point of the `routergen` command."""
