"""Command line of ds2ds-gen (skeleton: the generator is being built; see README)."""

import click

from . import __version__


@click.group(help="""Linked-document generation with a small document-aware transformer.""")
@click.version_option(__version__, prog_name="ds2ds-gen")
def main() -> None:
    """Entry point of the `ds2ds-gen` command."""
