"""`routergen generate`: datacore's shared options and build_sequential (issue 11 items 2 and 7)."""

import orjson
import pytest
from click.testing import CliRunner
from routergen.cli import main


def _gen(*args):
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


def test_generate_and_run_alias_write_the_same_bytes_through_datacores_sequential_builder(
    tmp_path, small_recipe_path, dataset_bytes
):
    a, b = tmp_path / "a", tmp_path / "b"
    r = _gen("generate", str(small_recipe_path), "--offline", "-n", "40", "--out", str(a), "-q")
    assert r.exit_code == 0, r.output
    r = _gen("run", str(small_recipe_path), "--offline", "-n", "40", "--out", str(b), "-q")
    assert r.exit_code == 0, r.output
    assert dataset_bytes(a) == dataset_bytes(b)
    m = orjson.loads((a / "dataset.json").read_bytes())
    assert m["records"] == 40
    assert m["generator_ref"] == "routergen.recipe_loop:RecipeLoop"  # datacore's build_sequential made it
    assert m["spec"]["code_digest"]  # the identity includes routergen's code, as for every generator
    assert m["regenerate"].startswith("routergen generate ")
    assert (a / "history.jsonl").exists() and (a / "bandit_state.json").exists()


@pytest.mark.slow  # three runs; in the combined session
def test_config_file_and_resume_modes_are_the_shared_ones(tmp_path, small_recipe_path, dataset_bytes):
    cfg = tmp_path / "opts.yaml"
    cfg.write_text("n: 40\noffline: true\nquiet: true\n")
    a = tmp_path / "a"
    r = _gen("generate", str(small_recipe_path), "--config", str(cfg), "--out", str(a))
    assert r.exit_code == 0, r.output
    assert orjson.loads((a / "dataset.json").read_bytes())["records"] == 40  # -n came from the file
    before = dataset_bytes(a)
    # --resume always on a finished run: nothing to do, same bytes
    r = _gen("generate", str(small_recipe_path), "--config", str(cfg), "--out", str(a), "--resume", "always")
    assert r.exit_code == 0, r.output
    assert dataset_bytes(a) == before
    # --resume always where there is nothing: one line, exit 1
    r = _gen("generate", str(small_recipe_path), "--config", str(cfg), "--out", str(tmp_path / "x"), "--resume", "always")
    assert r.exit_code == 1 and "no run to resume" in r.output and "Traceback" not in r.output
    # --no-resume rebuilds, and the rebuild is byte-identical
    r = _gen("generate", str(small_recipe_path), "--config", str(cfg), "--out", str(a), "--no-resume")
    assert r.exit_code == 0, r.output
    assert dataset_bytes(a) == before
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: 40\nbogus: 1\n")
    r = _gen("generate", str(small_recipe_path), "--config", str(bad), "--out", str(tmp_path / "y"))
    assert r.exit_code == 2 and "unknown option 'bogus'" in r.output and not (tmp_path / "y").exists()


def test_parallel_options_are_refused_with_one_line(tmp_path, small_recipe_path):
    for extra in (["-w", "2"], ["--executor", "ray"], ["--shard-size", "5"]):
        r = _gen("generate", str(small_recipe_path), "--offline", "-n", "10", "--out", str(tmp_path / "o"), *extra)
        assert r.exit_code == 2, (extra, r.output)
        assert "not apply" in r.output and "Traceback" not in r.output
        assert not (tmp_path / "o").exists()


def test_n_defaults_to_the_recipes_samples_not_the_shared_default(tmp_path, small_recipe_path):
    p = tmp_path / "r.yaml"
    p.write_text(small_recipe_path.read_text().replace("samples: 120", "samples: 30"))
    r = _gen("generate", str(p), "--offline", "--out", str(tmp_path / "o"), "-q")
    assert r.exit_code == 0, r.output
    assert orjson.loads((tmp_path / "o" / "dataset.json").read_bytes())["records"] == 30
