"""Score a validator on the frozen held-out mutations (tests/data/heldout_mutations.jsonl)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

FILE = Path(__file__).parent / "data" / "heldout_mutations.jsonl"


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FILE.read_text().splitlines() if line.strip()]


def score(registry: Any, validator: Any) -> dict[str, Any]:
    """Per category and overall: negatives detected (any violation), cited an expected rule; controls passing."""
    from gatling_sid import GoldTrace

    per: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "detected": 0, "exact": 0})
    for row in load():
        tr = dict(row["trace"])
        tr["policy"] = registry.domains[tr["domain"]].policy.to_dict()
        rep = validator.validate(GoldTrace.from_dict(tr))
        c = per[row["category"]]
        c["n"] += 1
        if row["expect"]:
            c["detected"] += bool(rep.violations)
            c["exact"] += bool(rep.rules & set(row["expect"]))
        else:
            c["detected"] += bool(rep.violations)  # a false alarm on a control
    neg = {k: v for k, v in per.items() if not k.startswith("control_")}
    ctl = {k: v for k, v in per.items() if k.startswith("control_")}
    n_neg = sum(v["n"] for v in neg.values())
    n_ctl = sum(v["n"] for v in ctl.values())
    return {
        "negatives": n_neg,
        "detected": sum(v["detected"] for v in neg.values()),
        "exact": sum(v["exact"] for v in neg.values()),
        "controls": n_ctl,
        "false_alarms": sum(v["detected"] for v in ctl.values()),
        "per_category": dict(sorted(per.items())),
    }


if __name__ == "__main__":
    from gatling_sid import DomainRegistry, TraceValidator

    reg = DomainRegistry.load()
    s = score(reg, TraceValidator(reg))
    for k, v in s["per_category"].items():
        print(f"{k:<30} {v['detected']:>2}/{v['n']} detected  {v['exact']:>2} expected rule")
    print(
        f"negatives: {s['detected']}/{s['negatives']} detected ({s['detected'] / s['negatives']:.1%}), "
        f"{s['exact']} with an expected rule ({s['exact'] / s['negatives']:.1%}); "
        f"controls: {s['false_alarms']}/{s['controls']} false alarms"
    )
