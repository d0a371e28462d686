"""An independent grounding checker (shares no code with gatling_sid's validator).

A literal argument value of a gold trace is *grounded* if it occurs in the user's request text
or in the recorded output of a call listed before it ($ref arguments point at earlier outputs
and count as grounded).  Two figures per dataset:

* identity details: every literal argument of an identity call, every ``*_id`` argument and
  every ``recipient`` (what issue 17 found invented in 77% / 38% of traces);
* all literal values except agent-written free text (subject, body, prompt, justification, memo,
  query): the stricter "every argument value comes from the user or a tool" figure.
"""

from __future__ import annotations

import json
from typing import Any

FREE_TEXT = {"subject", "body", "prompt", "justification", "memo", "query", "notes", "description", "message"}


def _walk(x: Any) -> list[str]:
    out, stack = [], [x]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif v is not None:
            out.append(v if isinstance(v, str) else json.dumps(v))
    return out


def _spellings(v: Any) -> list[str]:
    if isinstance(v, bool):
        return ["true" if v else "false", "on" if v else "off", "yes" if v else "no"]
    if isinstance(v, (int, float)):
        return [str(v), f"{v:,}", f"{v:.2f}" if isinstance(v, float) else str(v)]
    return [str(v), str(v).replace("_", " ")]


def grounded(value: Any, text: str, earlier: list[str]) -> bool:
    low = text.lower()
    for s in _spellings(value):
        if s and (s in text or s.lower() in low):
            return True
        if any(s == e or (len(s) > 3 and s in e) for e in earlier):
            return True
    return False


def trace_stats(rec: dict[str, Any], identity_tools: set[str]) -> dict[str, int]:
    text = rec["request"]["text"]
    earlier: list[str] = []
    st = {"id_values": 0, "id_grounded": 0, "values": 0, "grounded": 0, "traces_with_invented_id": 0}
    bad = False
    for c in rec["graph"]["calls"]:
        for k, v in c["arguments"].items():
            if isinstance(v, dict) and set(v) == {"$ref"}:
                continue
            if isinstance(v, (dict, list)) or k in FREE_TEXT:
                continue
            ok = grounded(v, text, earlier)
            st["values"] += 1
            st["grounded"] += ok
            if c["tool"] in identity_tools or k.endswith("_id") or k == "recipient":
                if k in ("verification_token", "confirmation_id", "approval_id"):
                    pass  # bound to an earlier output; counted in values above
                st["id_values"] += 1
                st["id_grounded"] += ok
                bad = bad or not ok
        earlier.extend(_walk(c.get("output")))
    st["traces_with_invented_id"] = int(bad)
    return st


def dataset_stats(records: list[dict[str, Any]], identity_tools: set[str]) -> dict[str, float]:
    tot: dict[str, int] = {}
    n = 0
    for r in records:
        if r.get("label", "gold") != "gold":
            continue
        n += 1
        for k, v in trace_stats(r, identity_tools).items():
            tot[k] = tot.get(k, 0) + v
    return {
        "traces": n,
        **tot,
        "id_rate": tot["id_grounded"] / max(1, tot["id_values"]),
        "value_rate": tot["grounded"] / max(1, tot["values"]),
        "invented_trace_share": tot["traces_with_invented_id"] / max(1, n),
    }


if __name__ == "__main__":
    import sys
    from pathlib import Path

    import yaml

    recs = [json.loads(line) for p in sorted(Path(sys.argv[1]).rglob("*.jsonl")) for line in p.read_text().splitlines() if line]
    dom_dir = Path(sys.argv[2])
    ident = {t["name"] for f in dom_dir.glob("*.yaml") for t in yaml.safe_load(f.read_text())["tools"] if t["kind"] == "identity"}
    print(json.dumps(dataset_stats(recs, ident), indent=1))
