import json

from click.testing import CliRunner
from routergen import __version__
from routergen.cli import main


def test_version():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_run_offline_quick_start(tmp_path):
    r = CliRunner().invoke(main, ["run", "support_tickets", "--out", str(tmp_path / "t"), "-n", "150", "--offline"])
    assert r.exit_code == 0, r.output
    assert "150 samples" in r.output and "stopped: target" in r.output
    m = json.loads((tmp_path / "t" / "dataset.json").read_text())
    assert m["records"] == 150 and m["generator"] == "routergen"
    assert (tmp_path / "t" / "exports" / "samples.csv").exists()


def test_validate_ok_and_json(small_recipe_path):
    r = CliRunner().invoke(main, ["validate", str(small_recipe_path), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["recipe"] == "small" and d["schema"] == "derived from the grammar" and "label" in d["fields"]


def test_bad_recipe_is_one_line_error_with_line_number(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: a\ntask: b\ngrammar:\n  rules:\n    s: ['<missing>']\n")
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and f"{p}:5: grammar.rules.s[0]: undefined non-terminal <missing>" in lines[0]
    assert "Traceback" not in r.output


def test_arms_explains(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = CliRunner().invoke(main, ["arms", "product_reviews"])
    assert r.exit_code == 0
    assert "+ templater" in r.output and "- naive" in r.output and "ANTHROPIC_API_KEY is not set" in r.output


def test_run_with_no_usable_arm_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = CliRunner().invoke(main, ["run", "math_word_problems", "--out", str(tmp_path / "m"), "--offline"])
    assert r.exit_code == 1 and "no arm can run here" in r.output and "Traceback" not in r.output
