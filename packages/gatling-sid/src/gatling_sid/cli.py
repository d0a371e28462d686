"""Command line of gatling-sid (skeleton: the generator is being built; see README)."""

import click

from . import __version__


@click.group(help="""Policy-compliant gold tool-call traces and labelled hard negatives.""")
@click.version_option(__version__, prog_name="gatling-sid")
def main() -> None:
    """Entry point of the `gatling-sid` command."""
