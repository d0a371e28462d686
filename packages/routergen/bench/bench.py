"""routergen benchmark: offline throughput, bandit policies, MinHash near-duplicate removal.

    python packages/routergen/bench/bench.py [--quick] [--json PATH]

1. Offline: the built-in ``support_tickets`` recipe, validators on (schema, length, exact
   dedup, MinHash near-dup, distinct-n, dispersion), 10,000 samples through the full pipeline
   (datacore shards, report, CSV/text exports); the peer figure is bare grammar expansion
   (no validation, no storage) measured in the same run.
2. Bandit: a simulated 3-arm Bernoulli problem (means 0.3 / 0.5 / 0.7), decaying
   epsilon-greedy against fixed epsilon = 0.1, UCB1 and Thompson sampling on the same seeds.
3. Dedup: planted near-duplicates (1-2 small edits of a sample) among distinct samples;
   MinHash+LSH at two thresholds against the exact-hash baseline.
4. Faults: a recipe with procedural and model arms and LLM validators against datacore's
   ``FakeMessagesServer`` with 20% injected 429/529 replies (and 10% non-JSON replies):
   samples lost or duplicated, then an identical re-run with the same cache (model calls).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from routergen import MinHasher, builtin_recipes, load_recipe, recipe_from_text, run_recipe, simulate
from routergen.minhash import LSHIndex, normalize
from routergen.quality import text_hash
from routergen.spec import RouterConfig


def bench_offline(n: int) -> dict:
    recipe = load_recipe("support_tickets")
    tmp = Path(tempfile.mkdtemp(prefix="routergen-bench-"))
    try:
        t0 = time.perf_counter()
        res = run_recipe(recipe, tmp / "out", n=n, offline=True, progress=False, resume=False)
        secs = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    g = recipe.grammar
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(n):
        d = g.derive(rng)
        d.render(g.fill(d, rng))
    raw = time.perf_counter() - t0
    gen = sum(h["generated"] for h in res.history)
    return {
        "samples": res.records,
        "generated": gen,
        "iterations": res.iterations,
        "seconds": round(secs, 2),
        "samples_per_s": round(res.records / secs, 1),
        "pass_rate": round(res.records / gen, 4),
        "raw_expansion_seconds": round(raw, 3),
        "raw_samples_per_s": round(n / raw, 1),
    }


POLICIES = {
    "eps-greedy, decaying (1.0 x 0.995^t, floor 0.01)": RouterConfig("epsilon_greedy", 1.0, 0.01, 0.995),
    "eps-greedy, fixed eps = 0.1": RouterConfig("epsilon_greedy", 0.1, 0.1, 1.0),
    "UCB1 (c = 2)": RouterConfig("ucb1", ucb_c=2.0),
    "Thompson (Beta)": RouterConfig("thompson"),
}


FIXED = "eps-greedy, fixed eps = 0.1"


def bench_bandit(pulls: int, seeds: int) -> list[dict]:
    means = [0.3, 0.5, 0.7]
    per_seed = {name: [simulate(means, pulls, cfg, seed=s) for s in range(seeds)] for name, cfg in POLICIES.items()}
    fixed = [r["regret"] for r in per_seed[FIXED]]
    rows = []
    for name, runs in per_seed.items():
        regrets = [r["regret"] for r in runs]
        shares = [float((r["choices"][-1000:] == 2).mean()) for r in runs]
        rows.append(
            {
                "policy": name,
                "pulls": pulls,
                "seeds": seeds,
                "regret_mean": round(float(np.mean(regrets)), 1),
                "regret_sd": round(float(np.std(regrets)), 1),
                "best_arm_last_1000": round(float(np.mean(shares)), 4),
                "best_arm_last_1000_min": round(float(min(shares)), 4),
                # Seeds on which this policy's regret is no worse than fixed eps = 0.1 on the same seed.
                "seeds_regret_le_fixed": sum(r <= f for r, f in zip(regrets, fixed)),
            }
        )
    return rows


FAULT_RECIPE = """\
name: fault-bench
task: Short reviews of kitchen gadgets.
samples: 200
batch_size: 20
llm: {model: claude-3-5-haiku-latest, temperature: 0.7, max_tokens: 200}
arms: [templater, templater-llm, naive]
grammar:
  rules:
    r:
      - {text: "the {gadget} is {adj}, i use it {freq}.", set: {stars: 5}}
      - {text: "sadly the {gadget} broke after {freq} use.", set: {stars: 1}}
  slots:
    gadget: [kettle, toaster, blender, grater, whisk, scale]
    adj: [great, handy, solid, quiet, fast]
    freq: [daily, weekly, often, once]
output:
  schema:
    type: object
    properties: {text: {type: string, minLength: 5}, stars: {type: integer, minimum: 1, maximum: 5}}
    required: [text, stars]
validators: {schema: {}, exact_dedup: {}, near_dup: {threshold: 0.9}, faithfulness: {min_score: 0.5}, distinct_n: {}}
router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.8}
"""

_WORDS = [
    "amber",
    "brisk",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "glint",
    "harbor",
    "iris",
    "jade",
    "koi",
    "lumen",
    "moss",
    "nimbus",
    "onyx",
    "pearl",
    "quartz",
    "rust",
    "sage",
    "tide",
]


def _fake_reply(body: dict) -> str:
    """A deterministic stand-in model: prompts, judge scores, slot values, JSON samples; 10% non-JSON."""
    import hashlib

    system = body.get("system") or ""
    user = body["messages"][-1]["content"]
    h = int(hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:8], 16)
    if "design prompts" in system:
        return "Write one realistic gadget review as JSON with text and stars."
    if "data-quality judge" in system:
        return json.dumps({"score": 0.9})
    if h % 10 == 0:
        return "Sure! Here is your review: great kettle"
    if "Slots to fill" in user:
        slots = [ln[2:].split(":")[0] for ln in user.split("Slots to fill:\n")[1].split("\n\n")[0].splitlines()]
        return json.dumps({s: f"{_WORDS[(h >> (3 * i)) % 20]}-{h % 997}" for i, s in enumerate(slots)})
    return json.dumps(
        {"text": f"the {_WORDS[h % 20]} gadget number {h % 100003} works {_WORDS[(h >> 5) % 20]}", "stars": 1 + h % 5}
    )


def bench_faults(fault_rate: float = 0.2) -> dict:
    from datacore import read_jsonl
    from datacore.llm import AnthropicClient
    from datacore.llm.testing import FakeMessagesServer

    recipe = recipe_from_text(FAULT_RECIPE, "fault-bench.yaml")
    tmp = Path(tempfile.mkdtemp(prefix="routergen-bench-"))

    def records(out: Path) -> list[dict]:
        recs = [r for p in sorted(out.glob("*/part-*.jsonl")) for r in read_jsonl(p)]
        return sorted(recs, key=lambda r: r["meta"]["index"])

    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/part-*.jsonl"))}

    try:
        with FakeMessagesServer(handler=_fake_reply, fault_rate=fault_rate, faults=("429", "529"), seed=0) as srv:

            def client() -> AnthropicClient:
                return AnthropicClient(
                    api_key="bench-key",
                    base_url=srv.base_url,
                    cache_dir=tmp / "cache",
                    backoff_base_s=0.005,
                    backoff_max_s=0.02,
                    max_retries=10,
                    max_in_flight=8,
                )

            c = client()
            t0 = time.perf_counter()
            res = run_recipe(recipe, tmp / "a", progress=False, client=c)
            secs = time.perf_counter() - t0
            c.close()
            calls_first, faults = srv.calls, sum(srv.faults_injected.values())
            c = client()
            res2 = run_recipe(recipe, tmp / "b", progress=False, client=c)
            c.close()
            calls_rerun = srv.calls - calls_first
        recs = records(tmp / "a")
        errors: dict[str, int] = {}
        for h in res.history:
            for k, v in h["errors"].items():
                errors[k] = errors.get(k, 0) + v
        return {
            "fault_rate": fault_rate,
            "target": recipe.samples,
            "stored": len(recs),
            "seconds": round(secs, 2),
            "http_calls": calls_first,
            "faults_injected": faults,
            "lost": len(set(range(recipe.samples)) - {r["meta"]["index"] for r in recs}),
            "duplicated_texts": len(recs) - len({r["text"] for r in recs}),
            "failed_samples": errors,
            "arms": sorted({h["arm"] for h in res.history}),
            "rerun_model_calls": calls_rerun,
            "rerun_client_calls": int(res2.llm_counters.get("llm.calls", 0)),
            "rerun_identical": files(tmp / "a") == files(tmp / "b"),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _perturb(text: str, rng: random.Random) -> str:
    """A near-copy: one or two small edits (typo, dropped/added word, case, punctuation)."""
    words = text.split()
    for _ in range(rng.randint(1, 2)):
        op = rng.randrange(4)
        i = rng.randrange(len(words))
        if op == 0 and len(words) > 6:
            del words[i]
        elif op == 1:
            w = words[i]
            j = rng.randrange(len(w))
            words[i] = w[:j] + rng.choice("abcdefghijklmnopqrstuvwxyz") + w[j + 1 :]
        elif op == 2:
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i] + ","
        else:
            words.insert(i, rng.choice(["really", "also", "please", "so"]))
    return " ".join(words)


def _exact_jaccard(a: str, b: str, k: int = 5) -> float:
    x = normalize(a).encode()
    y = normalize(b).encode()
    sa = {x[i : i + k] for i in range(len(x) - k + 1)}
    sb = {y[i : i + k] for i in range(len(y) - k + 1)}
    return len(sa & sb) / len(sa | sb)


DEDUP_METHODS = {
    "exact-hash (baseline)": None,
    "minhash 128p, J >= 0.8": (128, 0.8),
    "minhash 128p, J >= 0.7": (128, 0.7),
}


def bench_dedup(n_orig: int) -> dict:
    # Originals: the recipe's samples, deduplicated by the pipeline at the same setting as the
    # method under test (J >= 0.7, 128 permutations), so no two originals are near-copies.
    src = Path(builtin_recipes()["support_tickets"]).read_text()
    recipe = recipe_from_text(src.replace("near_dup: {threshold: 0.8}", "near_dup: {threshold: 0.7, num_perm: 128}"))
    tmp = Path(tempfile.mkdtemp(prefix="routergen-bench-"))
    try:
        run_recipe(recipe, tmp / "o", n=n_orig, offline=True, progress=False, resume=False)
        texts = (tmp / "o" / "exports" / "samples.txt").read_text().splitlines()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rng = random.Random(42)
    chosen = rng.sample(range(len(texts)), len(texts) // 2)
    planted = [(_perturb(texts[i], rng), i) for i in chosen]
    stream = [(t, i) for i, t in enumerate(texts)] + planted
    rng.shuffle(stream)
    out: dict = {"originals": len(texts), "planted": len(planted)}
    for name, params in DEDUP_METHODS.items():
        seen: set[str] = set()
        if params:
            hasher, idx = MinHasher(params[0], 5), LSHIndex(params[0], params[1])
        kept_groups: set[int] = set()
        caught, false_pos = 0, 0
        t0 = time.perf_counter()
        for t, group in stream:
            if params is None:
                h = text_hash(t)
                dup = h in seen
                seen.add(h)
            else:
                sig = hasher.signature(t)
                dup = idx.is_duplicate(sig)
                if not dup:
                    idx.add(sig)
            if dup:
                # Right only if a member of its own pair was kept earlier; otherwise a false positive.
                if group in kept_groups:
                    caught += 1
                else:
                    false_pos += 1
            else:
                kept_groups.add(group)
        secs = time.perf_counter() - t0
        out[name] = {
            "planted_removed": caught,
            "planted_removed_share": round(caught / len(planted), 4),
            "false_positives": false_pos,
            "seconds": round(secs, 3),
        }
    js = np.array([_exact_jaccard(p, texts[i]) for p, i in planted])
    out["planted_exact_jaccard"] = {
        "min": round(float(js.min()), 3),
        "median": round(float(np.median(js)), 3),
        "share_ge_0.8": round(float(np.mean(js >= 0.8)), 4),
        "share_ge_0.7": round(float(np.mean(js >= 0.7)), 4),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller bandit study (still 10,000 offline samples)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    t_all = time.perf_counter()
    off = bench_offline(10_000)
    bandit = bench_bandit(3000 if args.quick else 10_000, 3 if args.quick else 10)
    dedup = bench_dedup(1000 if args.quick else 4000)
    faults = bench_faults(0.2)

    print(f"routergen benchmark ({'quick' if args.quick else 'full'}), {platform.machine()}, Python {platform.python_version()}")
    print("\n1. Offline generation, support_tickets recipe, validators on")
    print(f"   {'':<38}{'samples':>9}{'seconds':>10}{'samples/s':>12}")
    print(
        f"   {'routergen run --offline (full loop)':<38}{off['samples']:>9,}{off['seconds']:>10.2f}{off['samples_per_s']:>12,.0f}"
    )
    print(
        f"   {'peer: bare grammar expansion':<38}{off['samples']:>9,}{off['raw_expansion_seconds']:>10.2f}"
        f"{off['raw_samples_per_s']:>12,.0f}"
    )
    print(
        f"   generated {off['generated']:,} in {off['iterations']} iterations, pass rate {off['pass_rate']:.3f}; "
        f"target <= 60 s: {'met' if off['seconds'] <= 60 else 'MISSED'}"
    )
    print(f"\n2. Bandit, 3 Bernoulli arms (0.3, 0.5, 0.7), {bandit[0]['pulls']:,} pulls, seeds 0..{bandit[0]['seeds'] - 1}")
    print(f"   {'policy':<50}{'regret':>10}{'sd':>8}{'best arm, last 1000':>22}{'min over seeds':>16}{'regret <= fixed 0.1':>21}")
    for r in bandit:
        print(
            f"   {r['policy']:<50}{r['regret_mean']:>10.1f}{r['regret_sd']:>8.1f}{r['best_arm_last_1000']:>22.3f}"
            f"{r['best_arm_last_1000_min']:>16.3f}{str(r['seeds_regret_le_fixed']) + '/' + str(r['seeds']) + ' seeds':>21}"
        )
    d = dedup
    pj = d["planted_exact_jaccard"]
    print(
        f"\n3. Near-duplicate removal: {d['originals']:,} distinct samples + {d['planted']:,} planted near-copies "
        f"(1-2 edits; true 5-shingle Jaccard min {pj['min']}, median {pj['median']}, "
        f"{pj['share_ge_0.8']:.1%} >= 0.8, {pj['share_ge_0.7']:.1%} >= 0.7)"
    )
    print(f"   {'method':<26}{'planted removed':>17}{'false positives':>17}{'seconds':>10}")
    for m in DEDUP_METHODS:
        print(f"   {m:<26}{d[m]['planted_removed_share']:>17.1%}{d[m]['false_positives']:>17}{d[m]['seconds']:>10.3f}")
    f = faults
    print(f"\n4. Fake server, {f['fault_rate']:.0%} injected 429/529 (plus 10% non-JSON replies), arms {', '.join(f['arms'])}")
    print(
        f"   first run: {f['stored']} of {f['target']} samples stored in {f['seconds']:.1f} s, {f['http_calls']} HTTP calls, "
        f"{f['faults_injected']} faults injected and retried; lost {f['lost']}, duplicated {f['duplicated_texts']}; "
        f"failed samples {f['failed_samples'] or 'none'}"
    )
    print(
        f"   identical re-run, same cache: {f['rerun_model_calls']} model calls "
        f"(client counted {f['rerun_client_calls']}), dataset {'byte-identical' if f['rerun_identical'] else 'DIFFERENT'}"
    )
    print(f"\ntotal {time.perf_counter() - t_all:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"offline": off, "bandit": bandit, "dedup": dedup, "faults": faults, "quick": args.quick}, indent=2)
        )


if __name__ == "__main__":
    sys.exit(main())
