"""The generator's promises as datacore strata: gold/negative shares and equal intent shares (procedural)."""

import json
from collections import Counter

from datacore import build_dataset, read_jsonl
from gatling_sid import INTENTS, GatlingConfig, GatlingGenerator


def test_targets_declared_and_delivered(tmp_path):
    gen = GatlingGenerator(GatlingConfig(negatives=0.4))
    t = {x.stratum: x.share for x in gen.targets(700)}
    assert abs(t["label=negative"] - 0.4 / 1.4) < 1e-9 and set(t) >= {f"intent={i}" for i in INTENTS}
    build_dataset(gen, tmp_path / "d", 700, 5, shard_size=70, executor="inline", progress=False)
    recs = [r for p in sorted((tmp_path / "d").rglob("*.jsonl")) for r in read_jsonl(p)]
    labels = Counter(r["label"] for r in recs)
    intents = Counter(r["intent"] for r in recs if r["label"] == "gold")
    # counted from the records themselves (not from telemetry): within one record per shard of the schedule
    assert abs(labels["negative"] - 700 * 0.4 / 1.4) <= 10
    assert max(intents.values()) - min(intents.values()) <= 10
    man = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert man["delivery"]["ok"] and {s["stratum"] for s in man["delivery"]["strata"]} >= {"label=gold", "intent=report"}


def test_no_negatives_means_exact_intent_cycle(tmp_path):
    build_dataset(GatlingGenerator(GatlingConfig()), tmp_path / "d", 140, 1, shard_size=35, executor="inline", progress=False)
    recs = [r for p in sorted((tmp_path / "d").rglob("*.jsonl")) for r in read_jsonl(p)]
    assert set(Counter(r["intent"] for r in recs).values()) == {20}
