"""Exports of a dataset with dialogues, read back by the peers' parsers (tests/fixtures/stacks.py).

Usage (from the repository root, after ``gatling-sid generate --out DS --dialogues 0.3`` and
``gatling-sid export DS --format F --out OUT/F.jsonl`` for openai, hf, toolace and ``hf --no-parallel``
to ``OUT/hfnp.jsonl``)::

    .venv/bin/python packages/gatling-sid/bench/export_dialogues.py DS OUT

Counts, per format and template, the gold records whose exported calls (tool names, in the order the
dialogue makes them, read from the record itself) come back from the stack's own parser.
"""

import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
import stacks  # noqa: E402


def _calls(r):
    by = {c["id"]: c for c in r["graph"]["calls"]}
    t = r["meta"].get("dialogue", {}).get("turns")
    order = [i for x in t if "calls" in x for i in x["calls"]] if t else [c["id"] for c in r["graph"]["calls"]]
    return [by[i]["tool"] for i in order]


def _lines(f):
    return [json.loads(x) for x in open(f)]


def main(ds: str, out: str) -> None:
    """Print the table (see the module docstring)."""
    gold = [json.loads(x) for p in sorted(Path(ds).rglob("*.jsonl")) for x in open(p)]
    gold = [r for r in gold if r.get("label") == "gold"]
    dia = collections.Counter(r["meta"]["dialogue"]["behaviour"] for r in gold if "dialogue" in r["meta"])
    print(f"gold {len(gold)}, dialogues {sum(dia.values())}: {dict(sorted(dia.items()))}")
    o = Path(out)
    ok = sum([n for n, _ in stacks.load_openai(rec)] == _calls(g) for rec, g in zip(_lines(o / "openai.jsonl"), gold))
    print(f"| openai | openai SDK types | {ok}/{len(gold)} |")
    for tpl in stacks.TEMPLATES:
        f = o / ("hfnp.jsonl" if tpl.startswith("llama") else "hf.jsonl")
        n = 0
        for rec, g in zip(_lines(f), gold):
            try:
                n += [a for a, _ in stacks.load_hf(tpl, rec)] == _calls(g)
            except Exception:  # noqa: BLE001 - a template refusal counts as not loaded
                pass
        print(f"| {f.stem} | {tpl} | {n}/{len(gold)} |")
    n = 0
    for rec, g in zip(_lines(o / "toolace.jsonl"), gold):
        conv = rec["conversations"]
        at = [i for i in range(len(conv) - 1) if conv[i + 1]["from"] == "tool"]
        n += [a for i in at for a, _ in stacks.parse_python_calls(conv[i]["value"])] == _calls(g)
    print(f"| toolace | calls parsed by Python's ast | {n}/{len(gold)} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
