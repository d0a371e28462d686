"""Formats that load in each stack: every gold trace exported to each format and read back by the peer's loader.

    python packages/gatling-sid/bench/export_formats.py [-n 2000] [--json out.json]

A record "loads" when the stack accepts it without error AND the tool calls it reads out equal the
trace's (resolved) calls: all of them, or the first step for xLAM/BFCL (single-turn formats).  The
loaders are tests/fixtures/stacks.py (no gatling_sid code).  The "Anthropic blocks" row is the
record format itself rendered through the same templates (what the issue measured before exporters).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from gatling_sid import DomainRegistry, ProceduralOracle
from gatling_sid.exporters import to_hf_chat, to_openai
from gatling_sid.peer_formats import first_step_is_whole, to_bfcl, to_toolace, to_xlam

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
import stacks  # noqa: E402


def _expected(tr, first_only=False):
    outputs = {c.id: c.output for c in tr.graph.calls}
    waves = tr.graph.levels()[:1] if first_only else tr.graph.levels()
    return [(c.tool, tr.graph.resolve_arguments(c, outputs)) for w in waves for c in w]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    reg = DomainRegistry.load()
    oracle = ProceduralOracle(reg)
    rng = random.Random(a.seed)
    traces = [oracle.make_trace(rng, f"t{i}") for i in range(a.n)]
    tools = reg.tools
    rows = []

    def measure(fmt, stack, make, load, first_only=False):
        ok = 0
        errors: dict[str, int] = {}
        t0 = time.process_time()
        for i, tr in enumerate(traces):
            try:
                got = load(make(tr, i))
                if got == _expected(tr, first_only):
                    ok += 1
                else:
                    errors["calls differ"] = errors.get("calls differ", 0) + 1
            except Exception as e:  # noqa: BLE001 - any refusal of the stack counts as "does not load"
                key = f"{type(e).__name__}: {str(e)[:60]}"
                errors[key] = errors.get(key, 0) + 1
        rows.append(
            {
                "format": fmt,
                "stack": stack,
                "records": len(traces),
                "loaded": ok,
                "share": ok / len(traces),
                "cpu_s": round(time.process_time() - t0, 2),
                "errors": errors,
            }
        )

    for tpl in stacks.TEMPLATES:
        measure("hf", f"chat template {tpl}", lambda tr, i: to_hf_chat(tr, tools), lambda r, t=tpl: stacks.load_hf(t, r))
        measure(
            "hf parallel=False",
            f"chat template {tpl}",
            lambda tr, i: to_hf_chat(tr, tools, parallel=False),
            lambda r, t=tpl: stacks.load_hf(t, r),
        )

        def anthropic_blocks(tr, i):
            tf = tr.to_training_format(tools)
            return {"messages": [{"role": "system", "content": tf["system"]}, *tf["messages"]], "tools": tf["tools"]}

        measure("anthropic blocks", f"chat template {tpl}", anthropic_blocks, lambda r, t=tpl: stacks.load_hf(t, r))
    measure("openai", "openai SDK types (pydantic, strict)", lambda tr, i: to_openai(tr, tools), stacks.load_openai)
    measure("xlam", "xLAM schema + answers/tools check", lambda tr, i: to_xlam(tr, tools, record_id=i), stacks.load_xlam, True)
    measure("bfcl", "BFCL ast_checker (gold first step)", lambda tr, i: to_bfcl(tr, tools, index=i), stacks.load_bfcl, True)
    measure("toolace", "ToolACE prompt + Python-parsed calls", lambda tr, i: to_toolace(tr, tools), stacks.load_toolace)
    whole = sum(first_step_is_whole(t) for t in traces)

    print(f"{a.n} procedural gold traces (seed {a.seed}); {whole} ({whole / a.n:.1%}) are one step (xLAM/BFCL hold all of it)")
    print(f"{'format':<18} {'stack':<42} {'loaded':>13} {'cpu s':>6}  main refusal")
    for r in rows:
        top = max(r["errors"].items(), key=lambda kv: kv[1])[0] if r["errors"] else ""
        print(f"{r['format']:<18} {r['stack']:<42} {r['loaded']:>6}/{r['records']:<6} {r['cpu_s']:>6}  {top}")
    if a.json:
        Path(a.json).write_text(json.dumps({"n": a.n, "seed": a.seed, "one_step": whole, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
