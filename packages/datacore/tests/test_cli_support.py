import click
from click.testing import CliRunner
from datacore import DatacoreError
from datacore.cli_support import CliGroup, GenerateOptions, generate_options, run_generate
from toygen import ToyConfig, ToyGenerator


@click.group(cls=CliGroup)
def cli() -> None:
    pass


@cli.command()
@generate_options
@click.option("--vocab", type=int, default=50)
def generate(opts: GenerateOptions, vocab: int) -> None:
    if vocab > 1000:
        raise DatacoreError(f"--vocab {vocab} is too large (at most 1000)")
    run_generate(ToyGenerator(ToyConfig(vocab=vocab)), opts)


def test_shared_options_build_a_dataset(tmp_path) -> None:
    out = tmp_path / "o"
    r = CliRunner().invoke(
        cli,
        [
            "generate",
            "--out",
            str(out),
            "-n",
            "300",
            "--shard-size",
            "100",
            "--workers",
            "2",
            "--compress",
            "gz",
            "--seed",
            "5",
            "--split-ratios",
            "0.5,0.25,0.25",
            "--vocab",
            "7",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "300 records" in r.output
    assert (out / "train" / "part-00002.jsonl.gz").exists()
    r = CliRunner().invoke(cli, ["generate", "--out", str(out), "-n", "300", "--shard-size", "100", "--seed", "6"])
    assert r.exit_code == 1 and "different config" in r.output and "Traceback" not in r.output


def test_errors_are_one_line(tmp_path) -> None:
    r = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "o"), "--vocab", "5000"])
    assert r.exit_code == 1 and r.output.strip() == "Error: --vocab 5000 is too large (at most 1000)"
    r = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "o"), "--split-ratios", "0.5,0.5"])
    assert r.exit_code == 2 and "summing to 1" in r.output
