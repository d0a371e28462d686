from click.testing import CliRunner
from ds2ds_gen import __version__
from ds2ds_gen.cli import main


def test_version() -> None:
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
