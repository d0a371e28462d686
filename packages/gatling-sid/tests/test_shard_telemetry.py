"""A shard's counts land in the telemetry it is given, added to what it already holds (the generator
tallies them in plain dicts and adds them once at the end of the shard)."""

from datacore import ShardTask, Telemetry
from gatling_sid import GatlingConfig, GatlingGenerator


def test_shard_telemetry_counts_every_record():
    gen = GatlingGenerator(GatlingConfig(negatives=0.3, dialogues=0.3))
    tel = Telemetry()
    tel.count("gold", 5)  # something already counted by the caller stays and is added to
    tel.observe("domain", "banking", 2)
    recs = list(gen.generate_shard(ShardTask(0, 123, 60, 0), tel))
    gold = [r for r in recs if r["label"] == "gold"]
    neg = [r for r in recs if r["label"] == "negative"]
    assert len(recs) == 60 and tel.counters["gold"] == len(gold) + 5 and tel.counters["negatives"] == len(neg)
    assert tel.counters["validated"] == tel.counters["gold_passed"] + tel.counters.get("gold_rejected", 0)
    assert sum(tel.histograms["domain"].values()) == len(gold) + 2
    assert sum(tel.histograms["tool"].values()) == sum(len(r["graph"]["calls"]) for r in gold)
    assert sum(tel.histograms["mutation"].values()) == len(neg)
    for r in gold:
        assert tel.histograms["intent"][r["intent"]] >= 1
