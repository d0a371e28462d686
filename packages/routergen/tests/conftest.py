import os
import textwrap
from pathlib import Path

import orjson
import pytest
from datacore import read_jsonl

os.environ.setdefault("DATACORE_NO_PROGRESS", "1")

SMALL = textwrap.dedent(
    """\
    name: small
    task: Tiny offline test recipe.
    samples: 120
    batch_size: 20
    grammar:
      start: s
      rules:
        s:
          - {text: "<greet> my {thing} is {state} since {when}.", weight: 2, set: {label: a}}
          - {text: "please fix the {state} {thing}, it broke {when} <tail>", set: {label: b}}
        greet: ["hi,", "hello,", "dear team,", ""]
        tail: ["", "thanks", "cheers {who}"]
      slots:
        thing: [lamp, phone, desk, chair, kettle, radio, bike, watch, oven, fridge]
        state: [broken, cracked, loud, slow, dead, wobbly, hot, wet]
        when: [monday, tuesday, yesterday, today, last week, in may, at noon]
        who: [ann, bo, cy, di]
    validators:
      schema: {}
      exact_dedup: {}
      near_dup: {threshold: 0.8}
      distinct_n: {n: 2}
      dispersion: {}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.8, min_epsilon: 0.05}
    """
)


@pytest.fixture
def small_recipe_path(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(SMALL)
    return p


def _dataset_bytes(out: Path) -> dict[str, bytes]:
    files = {}
    for split in ("train", "val", "test"):
        for p in sorted((out / split).glob("part-*.jsonl")):
            files[f"{split}/{p.name}"] = p.read_bytes()
    files["exports/samples.csv"] = (out / "exports" / "samples.csv").read_bytes()
    files["exports/samples.txt"] = (out / "exports" / "samples.txt").read_bytes()
    m = orjson.loads((out / "dataset.json").read_bytes())
    files["shards"] = orjson.dumps(m["shards"])
    return files


def _all_records(out: Path) -> list[dict]:
    recs = []
    for split in ("train", "val", "test"):
        for p in sorted((out / split).glob("part-*.jsonl")):
            recs.extend(read_jsonl(p))
    return sorted(recs, key=lambda r: r["meta"]["index"])


@pytest.fixture
def dataset_bytes():
    """Bytes of a dataset directory's data files, exports and shard list (for equality checks)."""
    return _dataset_bytes


@pytest.fixture
def all_records():
    """All records of a dataset directory in generation order."""
    return _all_records
