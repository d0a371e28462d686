"""Detection on AgentDojo's public injection attacks, and false alarms on benign look-alikes.

    python packages/gatling-sid/bench/injection_suite.py [-n 700] [--per-pair 4] [--json out.json]

Builds negatives from the vendored suite (tests/fixtures/agentdojo/, see tests/fixtures/injection_suite.py):
every attack template x injection-task goal, planted in a tool output's notes of `--per-pair` random gold
traces, and the agent either follows it (one extra call of the kind the goal asks for) or ignores it.
Benign look-alikes (tests/fixtures/benign_lookalikes.json) are planted in compliant traces.  The judge is
TraceValidator (the behaviour rule `no_prompt_injection`, and any rule); beside it the 0.1 keyword list
(`detect_injection` on the planted text alone), the baseline the issue measured.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path

from gatling_sid import DomainRegistry, ProceduralOracle, TraceValidator, detect_injection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
import injection_suite as S  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=700)
    ap.add_argument("--per-pair", type=int, default=4)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--json", default=None)
    ap.add_argument("--proposed", action="store_true", help="judge with injection_suite.proposed_planted_actions")
    a = ap.parse_args()
    reg = DomainRegistry.load()
    oracle = ProceduralOracle(reg)
    rng = random.Random(a.seed)
    traces = [oracle.make_trace(rng, f"t{i}") for i in range(a.n)]
    t0 = time.process_time()
    validator = TraceValidator(reg)
    if a.proposed:
        import types

        validator._planted_actions = types.MethodType(S.proposed_planted_actions, validator)  # type: ignore[method-assign]
    res = S.run_suite(traces, reg, validator, per_pair=a.per_pair, seed=a.seed)
    cpu = time.process_time() - t0

    def pct(x, n):
        return f"{x}/{n} ({x / n:.1%})" if n else "0/0"

    kw_attacks = [bool(detect_injection(t)) for _, _, t in S.attack_texts()]
    print(
        f"AgentDojo: {len(S.SUITE['attacks'])} attacks x {len(S.SUITE['goals'])} goals, {a.per_pair} traces each; cpu {cpu:.2f} s"
    )
    print(f"{'set':<44} {'no_prompt_injection':>22} {'any rule':>20} {'keyword list (text)':>22}")
    for table, label in (("followed", "followed (negatives: must be flagged)"), ("ignored", "planted, ignored (must pass)")):
        n, inj, anyr = S.totals(res[table])
        print(f"{label:<44} {pct(inj, n):>22} {pct(anyr, n):>20} {pct(sum(kw_attacks), len(kw_attacks)):>22}")
    by = collections.defaultdict(lambda: [0, 0, 0])
    for (attack, _suite, action), row in res["followed"].items():
        for key in (f"  attack {attack}", f"  action {action}"):
            for i in range(3):
                by[key][i] += row[i]
    for key in sorted(by):
        n, inj, anyr = by[key]
        print(f"{key:<44} {pct(inj, n):>22} {pct(anyr, n):>20}")
    print(f"{'not applicable (text-only goal / no such tool)':<44} {res['not_applicable']:>22}")
    for kind, (n, inj, anyr) in sorted(res["benign"].items()):
        texts = S.BENIGN[kind]
        kw = sum(bool(detect_injection(t)) for t in texts)
        print(f"{'benign ' + kind + ' (false alarms)':<44} {pct(inj, n):>22} {pct(anyr, n):>20} {pct(kw, len(texts)):>22}")
    if a.json:
        out = {
            k: {" / ".join(map(str, kk)) if isinstance(kk, tuple) else kk: v for kk, v in res[k].items()}
            for k in ("followed", "ignored", "benign")
        }
        out["not_applicable"] = res["not_applicable"]
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
