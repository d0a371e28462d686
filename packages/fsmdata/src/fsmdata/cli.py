"""Command line of fsmdata (skeleton: the generator is being built; see README)."""

import click

from . import __version__


@click.group(help="""Regex -> minimal DFA -> balanced, coverage-driven datasets of accept / incomplete / reject strings.""")
@click.version_option(__version__, prog_name="fsmdata")
def main() -> None:
    """Entry point of the `fsmdata` command."""
