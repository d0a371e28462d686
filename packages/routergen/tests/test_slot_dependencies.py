"""Slot dependencies (issue 16, New 4): a slot's distribution given another slot's value,
validated at load with one-line errors naming the line."""

import textwrap
from collections import Counter

import pytest
from routergen.errors import RecipeError
from routergen.grammar import GrammarError
from routergen.pipeline import run_recipe
from routergen.spec import recipe_from_text

RECIPE = textwrap.dedent("""\
    name: deps
    task: Support tickets.
    samples: 60
    batch_size: 30
    grammar:
      rules:
        s: ["my {product} {fault}, ticket {n}"]
      slots:
        product: {values: [laptop, phone], weights: [1, 3]}
        fault:
          given: product
          cases:
            laptop: [overheats, "will not boot"]
            phone: {values: [has a cracked screen, drains its battery], weights: [3, 1]}
        n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    validators: {schema: {}, exact_dedup: {}}
    """)

CASES = {"laptop": {"overheats": 0.5, "will not boot": 0.5}, "phone": {"has a cracked screen": 0.75, "drains its battery": 0.25}}


def test_dependent_values_follow_the_parents_case_and_its_weights():
    import random

    g = recipe_from_text(RECIPE, "d.yaml").grammar
    rng = random.Random(1)
    pairs = Counter()
    for _ in range(8000):
        v = g.fill(g.derive(rng), rng)
        pairs[(v["product"], v["fault"])] += 1
    by_parent = Counter()
    for (p, _), k in pairs.items():
        by_parent[p] += k
    assert set(pairs) <= {(p, f) for p, fs in CASES.items() for f in fs}  # never a fault of the other product
    assert abs(by_parent["phone"] / 8000 - 0.75) < 0.02  # the parent keeps its own weights
    for p, fs in CASES.items():
        for f, share in fs.items():
            assert abs(pairs[(p, f)] / by_parent[p] - share) < 0.03, (p, f)


def test_a_run_stores_consistent_pairs_and_the_schema_types_the_union(tmp_path):
    r = recipe_from_text(RECIPE, "d.yaml")
    assert r.schema["properties"]["fault"]["type"] == "string"  # typed by the union of its cases' values
    res = run_recipe(r, tmp_path / "o", offline=True, progress=False)
    assert res.records == 60
    from datacore import read_jsonl

    recs = [x for s in ("train", "val", "test") for p in sorted((tmp_path / "o" / s).glob("*.jsonl")) for x in read_jsonl(p)]
    assert all(x["fault"] in CASES[x["product"]] for x in recs)


def test_a_hidden_parent_is_drawn_and_kept_in_the_sample():
    import random

    text = RECIPE.replace('s: ["my {product} {fault}, ticket {n}"]', 's: ["it {fault}, ticket {n}"]')
    g = recipe_from_text(text, "h.yaml").grammar  # product is used through fault: not "declared but unused"
    rng = random.Random(0)
    for _ in range(200):
        v = g.fill(g.derive(rng), rng)
        assert v["fault"] in CASES[v["product"]]


@pytest.mark.parametrize(
    ("old", "new", "line", "needle"),
    [
        ("        phone: {values", "        tablet: [x]\n        phone: {values", 14, "'tablet' is not a value of product"),
        ('        laptop: [overheats, "will not boot"]\n', "", 12, "no case for product value 'laptop'"),
        ("given: product", "given: prodcut", 11, "given: 'prodcut' is not a slot"),
        ("given: product", "given: fault", 11, "dependency cycle: fault -> fault"),
        ("      given: product\n", "      given: product\n      weights: [1]\n", 12, "unknown key"),
        ("laptop: [overheats", "laptop: [[1], overheats", 13, "slot values are scalars"),
    ],
)
def test_bad_dependencies_are_refused_at_their_line(old, new, line, needle):
    assert old in RECIPE
    with pytest.raises((RecipeError, GrammarError)) as e:
        recipe_from_text(RECIPE.replace(old, new), "bad.yaml")
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg
    assert f"bad.yaml:{line}:" in msg, msg
