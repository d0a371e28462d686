"""Seed slots from a Hugging Face dataset on this machine (issue 16, New 4): a dataset saved
with save_to_disk, or load_dataset of local files; offline; errors at the slot's line."""

import json
import textwrap

import pytest

datasets = pytest.importorskip("datasets")

from routergen.errors import RecipeError  # noqa: E402
from routergen.grammar import GrammarError  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import load_recipe  # noqa: E402

RECIPE = textwrap.dedent("""\
    name: hf-seeds
    task: Tickets.
    samples: 20
    batch_size: 10
    grammar:
      rules:
        s: ["{customer} reports a {product} problem"]
      slots:
        customer: {SLOT_C}
        product: {SLOT_P}
    validators: {schema: {}, exact_dedup: {}}
    """)

NAMES = ["ann", "bo", "cy", "di", "ed", "flo", "gus", "hal"]


def _write(tmp_path, slot_c, slot_p="[laptop, phone, desk]"):
    p = tmp_path / "r.yaml"
    p.write_text(RECIPE.replace("{SLOT_C}", slot_c).replace("{SLOT_P}", slot_p))
    return p


@pytest.fixture
def hf_data(tmp_path):
    rows = [{"name": n, "age": 20 + i, "tags": [n]} for i, n in enumerate(NAMES)] + [{"name": "ann", "age": 99, "tags": []}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "people"))
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:4]), "test": datasets.Dataset.from_list(rows[4:])}
    ).save_to_disk(str(tmp_path / "split_people"))
    (tmp_path / "people.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_slot_values_from_a_saved_dataset_and_from_load_dataset_of_local_files(hf_data, tmp_path):
    r = load_recipe(_write(tmp_path, "{from: people, column: name}"))
    assert list(r.grammar.slots["customer"].values) == NAMES  # file order, duplicate dropped
    r2 = load_recipe(_write(tmp_path, "{hf: json, data_files: people.jsonl, column: name}"))
    assert list(r2.grammar.slots["customer"].values) == NAMES
    r3 = load_recipe(_write(tmp_path, "{from: split_people, column: name, split: test}"))
    assert list(r3.grammar.slots["customer"].values) == [*NAMES[4:], "ann"]  # the test split only
    res = run_recipe(r, tmp_path / "o", n=20, offline=True, progress=False)
    assert res.records == 20
    # The values' digest is part of the identity: a changed dataset is not resumed into.
    assert res.manifest["spec"]["config"]["seed_files"]["customer"][0] == "people"


@pytest.mark.parametrize(
    ("slot", "needle"),
    [
        ("{from: people, column: nope}", "has no column 'nope' (columns: name, age, tags)"),
        ("{from: people, column: tags}", "is not a scalar"),
        ("{from: split_people, column: name}", "has splits train, test: name one with split:"),
        ("{from: people, column: name, split: train}", "single dataset (no splits)"),
        ("{hf: json, data_files: missing.jsonl, column: name}", "missing.jsonl does not exist"),
        ("{from: people, column: name, bogus: 1}", "unknown key"),
    ],
)
def test_bad_dataset_slots_are_one_line_at_the_slots_line(hf_data, tmp_path, slot, needle):
    with pytest.raises((RecipeError, GrammarError)) as e:
        load_recipe(_write(tmp_path, slot))
    msg = str(e.value)
    assert needle in msg and "\n" not in msg
    assert "r.yaml:9:" in msg, msg  # the customer slot's line
