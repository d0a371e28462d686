"""Command line of lambdagen (skeleton: the generator is being built; see README)."""

import click

from . import __version__


@click.group(help="""Lambda-calculus beta-reduction traces from a Rust core.""")
@click.version_option(__version__, prog_name="lambdagen")
def main() -> None:
    """Entry point of the `lambdagen` command."""
