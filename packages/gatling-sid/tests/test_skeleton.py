from click.testing import CliRunner

from gatling_sid import __version__
from gatling_sid.cli import main


def test_version() -> None:
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
