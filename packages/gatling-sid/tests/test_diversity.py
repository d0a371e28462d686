import random

from gatling_sid.diversity import diversity_report, jaccard, near_duplicates, shingles


def _brute(texts, thr):
    sets = [shingles(t) for t in texts]
    out = []
    for j in range(len(texts)):
        for i in range(j):
            if jaccard(sets[i], sets[j]) >= thr:
                out.append((i, j))
                break
    return out


def test_lsh_matches_brute_force():
    rng = random.Random(5)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    base = [" ".join(rng.choice(words) for _ in range(14)) for _ in range(40)]
    texts = []
    for b in base:
        texts.append(b)
        w = b.split()
        for _ in range(rng.randint(0, 2)):  # near copies: one or two words changed at the end
            w2 = list(w)
            w2[-1] = rng.choice(words)
            texts.append(" ".join(w2))
    rng.shuffle(texts)
    got = [(i, j) for i, j, _ in near_duplicates(texts, threshold=0.7)]
    # LSH may miss a pair only with tiny probability; everything reported must be real
    brute = _brute(texts, 0.7)
    assert set(got) <= set(brute) or all(jaccard(shingles(texts[i]), shingles(texts[j])) >= 0.7 for i, j in got)
    assert len(got) >= 0.95 * len(brute)
    assert {j for _, j in got} == {j for _, j in brute}


def test_procedural_requests_are_diverse(oracle, registry):
    rng = random.Random(11)
    traces = [oracle.make_trace(rng, str(i)) for i in range(4000)]
    rep = diversity_report(traces, len(registry.tools))
    assert rep.near_duplicate_rate < 0.01
    assert len(rep.intents) >= 6 and rep.domains == len(registry.domains)
    assert rep.tools_used >= 245
    assert not rep.problems()
