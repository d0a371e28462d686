"""Slot values are plausible (issue 17, realism): checked from the records with rules written here, not with
the package's own classification of field names.

* every registry ``pattern`` is matched (Python ``re``) by what ``from_pattern`` draws;
* birth dates are in the past and make an adult (18..110 on 2026-01-01, the year the worlds' clocks are in);
* expiry / valid-until dates lie after the worlds' clock year;
* start/end pairs in one object are in order;
* ``last4``-style fields are four digits;
* no free-text value has the old nonsense shape ``"<word> <word> <number>"`` ("courier note prairie sierra 87").
"""

import datetime as dt
import random
import re

import pytest
from gatling_sid.dialogue import DialogueMaker
from gatling_sid.values import WORDS, from_pattern, value_for

CLOCK_YEAR = 2026  # state.World draws its clock in this year
NONSENSE = re.compile(r"^[a-z]+ [a-z]+ [0-9]{1,2}$")
PAIRS = [("from", "to"), ("start_date", "end_date"), ("window_start", "window_end"), ("valid_from", "valid_until")]


def _walk(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _walk(v, (*path, k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, path)


def _iso(v):
    if isinstance(v, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T.*)?", v):
        return dt.date.fromisoformat(v[:10])
    return None


@pytest.fixture(scope="module")
def objects(traces, oracle):
    """Every argument and output object of 700 gold traces and 150 operation dialogues."""
    rng = random.Random(77)
    dm = DialogueMaker(oracle)
    ops = [dm.make(rng, f"op{i}", "operation", rng.choice(oracle.domain_names)) for i in range(150)]
    out = []
    for t in list(traces) + ops:
        for c in t.graph.calls:
            for part in (c.arguments, c.output or {}):
                out += [obj for _p, obj in _walk(part)]
    assert len(out) > 5000
    return out


def test_from_pattern_matches_every_registry_pattern(registry):
    pats = set()
    for t in registry.tools.values():
        for _p, obj in _walk([t.input_schema, t.output_schema]):
            if isinstance(obj.get("pattern"), str) and obj.get("type") == "string":
                pats.add(obj["pattern"])
    assert len(pats) > 100
    rng = random.Random(5)
    for p in sorted(pats):
        for _ in range(20):
            s = from_pattern(rng, p)
            assert "\n" not in s and re.search(p, s), (p, s)


def test_birth_dates_are_adults_in_the_past(objects):
    n = 0
    for obj in objects:
        for k, v in obj.items():
            d = _iso(v)
            if d is not None and ("birth" in k or "born" in k or k in ("dob", "birthday")):
                age = (dt.date(CLOCK_YEAR, 1, 1) - d).days / 365.25
                assert 18 <= age <= 110, (k, v)
                n += 1
    assert n > 500


def test_expiry_dates_are_after_the_clock(objects):
    n = 0
    for obj in objects:
        for k, v in obj.items():
            d = _iso(v)
            if d is not None and ("expir" in k or k in ("valid_until", "expires_on", "renewal_date", "lease_end")):
                assert d.year > CLOCK_YEAR, (k, v)
                n += 1
    assert n > 50


def test_start_end_pairs_are_ordered(objects):
    n = 0
    for obj in objects:
        for a, b in PAIRS:
            x, y = _iso(obj.get(a)), _iso(obj.get(b))
            if x and y:
                assert x <= y, (a, obj[a], b, obj[b])
                n += 1
    assert n > 0


def test_last4_fields_are_four_digits(objects):
    n = 0
    for obj in objects:
        for k, v in obj.items():
            if k.endswith("last4") and isinstance(v, str):
                assert re.fullmatch(r"[0-9]{4}", v), (k, v)
                n += 1
    assert n > 500


def test_no_word_word_number_free_text(objects, traces):
    words = set(WORDS)
    bad = []
    for obj in objects:
        for k, v in obj.items():
            if isinstance(v, str) and NONSENSE.match(v) and set(v.split()[:2]) <= words:
                bad.append((k, v))
    alt = "|".join(WORDS)
    rx = re.compile(rf"\b(?:{alt}) (?:{alt}) [0-9]{{1,2}}\b")
    for t in traces:  # nor in what the user says (create fields and memos are quoted from the request)
        m = rx.findall(t.request.text)
        bad += [("request", x) for x in m]
    assert not bad, bad[:10]


def test_fast_random_draws_what_random_random_draws():
    from gatling_sid.values import FastRandom

    for seed in range(30):
        a, b = random.Random(seed), FastRandom(seed)
        for i in range(300):
            seq = "abcdefghij"[: 1 + i % 10]
            lo, hi = i % 7 - 3, i % 7 - 3 + i % 50
            assert a.choice(seq) == b.choice(seq)
            assert a.randint(lo, hi) == b.randint(lo, hi)
            assert a.randrange(1 + i) == b.randrange(1 + i)
            assert a.randrange(2, 9 + i, 3) == b.randrange(2, 9 + i, 3)
            assert a.sample(range(40), 3) == b.sample(range(40), 3)
        assert a.getstate() == b.getstate()
    for seed in (0, 1, -7, 2**63 - 1, 2**64 + 5, 2**200, 2.5, "s", b"b"):  # seeding: ints take the short path
        a, b = random.Random(seed), FastRandom(seed)
        assert a.getstate() == b.getstate() and a.gauss(0, 1) == b.gauss(0, 1)
        assert a.getstate() == b.getstate()
    with pytest.raises(IndexError):
        FastRandom(0).choice([])
    with pytest.raises(ValueError):
        FastRandom(0).randint(3, 2)


# keyword in the field name -> (lowest, highest) a person would plausibly state
PLAUSIBLE = {
    "mileage": (0, 300_000),
    "weight_kg": (0, 1_000),
    "nights": (1, 30),
    "guests": (1, 20),
    "party_size": (1, 12),
    "quantity": (1, 1_000),
    "hours": (0, 80),
    "pct": (0, 100),
    "percent": (0, 100),
    "model_year": (1990, 2027),
    "rental_days": (1, 60),
    "passengers": (1, 9),
}
PAGE = {10, 20, 25, 50}


def test_integers_have_plausible_magnitudes(objects):
    seen, bad = 0, []
    for obj in objects:
        for k, v in obj.items():
            if not isinstance(v, int) or isinstance(v, bool):
                continue
            for key, (lo, hi) in PLAUSIBLE.items():
                if key in k:
                    seen += 1
                    if not lo <= v <= hi:
                        bad.append((k, v))
                    break
    assert seen > 50
    assert not bad, f"{len(bad)}/{seen} implausible: {bad[:10]}"


def test_search_limits_are_page_sizes(traces):
    limits = [c.arguments["limit"] for t in traces for c in t.graph.calls if "limit" in c.arguments]
    assert len(limits) > 20
    odd = [v for v in limits if v not in PAGE]
    assert not odd, f"{len(odd)}/{len(limits)} odd limits: {sorted(set(odd))[:10]}"


def _iso3166():
    with open("/usr/share/zoneinfo/iso3166.tab", encoding="utf-8") as fh:
        return {ln.split("\t")[0] for ln in fh if ln.strip() and not ln.startswith("#")}


def _schemas(registry):
    for d in registry.domains.values():
        for t in d.tools.values():
            for sch in (t.input_schema, t.output_schema):
                for _p, obj in _walk(sch):
                    for k, sub in (obj.get("properties") or {}).items():
                        if isinstance(sub, dict) and sub.get("type") == "string" and "pattern" in sub:
                            yield k, sub


def test_well_known_fields_take_real_values(registry):
    """Timezones are IANA zones (zoneinfo), countries ISO 3166 codes (the tz database's iso3166.tab), phone numbers
    E.164 in ranges reserved for fiction; all still satisfy the schema (jsonschema)."""
    import zoneinfo

    import jsonschema
    from gatling_sid.values import value_for

    zones, countries = zoneinfo.available_timezones(), _iso3166()
    rng = random.Random(5)
    seen, bad = 0, []
    wanted = re.compile(r"timezone|country|phone|msisdn")
    for k, sub in _schemas(registry):
        if not wanted.search(k):
            continue
        check = jsonschema.Draft7Validator(sub)
        for _ in range(30):
            v = value_for(rng, sub, k)
            assert check.is_valid(v), (k, v)
            if "timezone" in k:
                seen += 1
                bad += [] if v in zones else [(k, v)]
            elif k == "country" or k.endswith("_country"):
                seen += 1
                bad += [] if v in countries else [(k, v)]
            elif "phone" in k or "msisdn" in k:
                seen += 1
                bad += [] if re.fullmatch(r"\+(447700900[0-9]{3}|120255501[0-9]{2})", v) else [(k, v)]
    assert seen >= 100
    assert not bad, f"{len(bad)}/{seen} not real: {bad[:8]}"


AWKWARD_BOOL = re.compile(
    r"\b(on|off|yes|no|true|false) as the\b|\bset to (on|off)\b|= (on|off|yes|no)\b|\b(be|is|reads|to|become) (on|off|yes|no)\b"
)


def _polarities(text, name):
    """How the request states boolean field ``name``: True / False per mention (regex over the words only)."""
    out = []
    for m in re.finditer(rf"(\b(?:not|untick|uncheck) )?\b{re.escape(name)}\b(:? (yes|no|on|off|unticked)\b)?", text):
        if m.group(1) or m.group(3) == "unticked":
            out.append(False)
        elif m.group(3):
            out.append(m.group(3) in ("yes", "on"))
        else:
            out.append(True)
    return out


def test_boolean_fields_are_stated_naturally_and_once(traces):
    """A boolean the user asks to set reads naturally and is stated one way only, the way the call sets it."""
    seen, bad = 0, []
    for t in traces:
        text = t.request.text
        for c in t.graph.calls:
            for k, v in c.arguments.items():
                if not isinstance(v, bool):
                    continue
                name = k.replace("_", " ")
                pol = _polarities(text.lower(), name)
                if not pol:
                    continue
                seen += 1
                if set(pol) != {v} or AWKWARD_BOOL.search(text.lower()):
                    bad.append((k, v, text))
    assert seen > 20
    assert not bad, f"{len(bad)}/{seen} awkward or contradictory: {bad[:3]}"


STIFF_FALSE = re.compile(r"\b(as|be|is|make the \w+ one|-) not \w")


def test_a_false_boolean_is_not_stated_as_not_x(traces):
    """'mark order X as not gift wrap', 'my order is not paperless now': stiff; a false flag is unticked or 'X: no'."""
    seen, bad = 0, []
    for t in traces:
        for c in t.graph.calls:
            if any(v is False for v in c.arguments.values()):
                seen += 1
                if STIFF_FALSE.search(t.request.text):
                    bad.append(t.request.text)
    assert seen > 10
    assert not bad, f"{len(bad)}/{seen} stiff: {bad[:3]}"


# Written from reading requests ("a order", "a in game purchase", "policys"): a/an by the next
# word's first letter (a "u" or "one" may sound like a consonant, so both are allowed there), and
# no "-ys" plural after a consonant.
A_BEFORE_VOWEL = re.compile(r"\b[Aa] (?!one\b|once\b)[aeioAEIO]\w*")
AN_BEFORE_CONSONANT = re.compile(r"\b[Aa]n [b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]\w*")
CONSONANT_YS = re.compile(r"\b\w*[b-df-hj-np-tv-z]ys\b")


def test_articles_and_plurals_in_requests(traces):
    bad = []
    for t in traces:
        text = t.request.text
        hits = A_BEFORE_VOWEL.findall(text) + AN_BEFORE_CONSONANT.findall(text)
        hits += CONSONANT_YS.findall(text)  # "days", "keys": a vowel before the y is right
        if hits:
            bad.append((hits, text))
    assert not bad, f"{len(bad)}/{len(traces)} requests: {bad[:3]}"  # 5/700 before the fix


def test_id_shortcut_draws_what_the_pattern_plan_draws():
    """from_pattern's one-expression path for literal+digits/hex ids gives the plan loop's strings and rng state."""
    from gatling_sid import values as v

    def by_plan(rng, pat):
        out = []
        for code, x, lo, hi in v._plan(pat):
            if code == v._LIT:
                out.append(x)
            elif code == v._DIGITS:
                out.append(str(rng.randrange(x)).zfill(lo))
            elif code == v._HEX:
                out.append(f"{rng.getrandbits(x):0{lo}x}")
            elif code == v._CHOICE:
                out.append("".join([rng.choice(x) for _ in range(lo)]))
            else:
                out.append(v._draw(rng, x, rng.randint(lo, hi)))
        return "".join(out)

    for pat in ("^SUB-[0-9]{6}$", "^tok_[0-9a-f]{16}$", "^AB[0-9]{3}$", "^[0-9]{4}$", "^X-[A-Z]{2}[0-9]{3}$", "^pg_[0-9]{1,6}$"):
        a, b = v.FastRandom(3), v.FastRandom(3)
        for _ in range(500):
            x = v.from_pattern(a, pat)
            assert x == by_plan(b, pat) and re.search(pat, x), (pat, x)
        assert a.getstate() == b.getstate()


def test_counts_are_small_and_a_search_total_covers_its_results(registry):
    """Drawn outputs (e.g. a negative's call to another domain's search or a bulk export) say a plausible
    count: a search total is at least its page of results and at most a few more (was 0..1000, often
    below the results listed); an export's record_count is 1..500 (was 0..1000)."""
    bad = []
    rng = random.Random(11)
    for t in registry.tools.values():
        props = t.output_schema.get("properties", {})
        for _ in range(20):
            out = value_for(rng, t.output_schema)
            if isinstance(out.get("results"), list) and "total" in props:
                n = len(out["results"])
                if not n <= out["total"] <= n + 3:
                    bad.append((t.name, n, out["total"]))
            if "record_count" in out and not 1 <= out["record_count"] <= 500:
                bad.append((t.name, "record_count", out["record_count"]))
        for name in ("total", "record_count"):  # on its own (a world filling one field)
            if name in props and props[name].get("type") == "integer":
                v = value_for(rng, props[name], name)
                if not 0 <= v <= 500:
                    bad.append((t.name, name, v))
    assert not bad, (len(bad), bad[:8])


AFTER_COMMA = re.compile(r",\s+([A-Z][a-z']*)\b")


def test_a_part_after_a_comma_does_not_start_capitalised(traces):
    """ "Hey, please ...", not "Hey, Please ...": after an opener or part ending in a comma the next
    word is lower case unless it is "I" or a person's or city's name (names come from the
    generator's pools, the only thing this oracle takes from the package)."""
    from gatling_sid.text import CITIES
    from gatling_sid.values import FIRST, LAST

    proper = {"I", "I'm", "I'd", "I've", "I'll"} | set(FIRST) | set(LAST) | set(CITIES)
    bad = [(w, t.request.text) for t in traces for w in AFTER_COMMA.findall(t.request.text) if w not in proper]
    assert not bad, f"{len(bad)} capitalised words after a comma in {len(traces)} requests: {bad[:3]}"  # 234/700 requests before


def test_dialogue_openers_do_not_capitalise_after_a_comma(oracle):
    """The same rule for the first user turn of dialogues (its own opener + core + closer join)."""
    from gatling_sid.text import CITIES
    from gatling_sid.values import FIRST, LAST

    proper = {"I", "I'm", "I'd", "I've", "I'll"} | set(FIRST) | set(LAST) | set(CITIES)
    rng = random.Random(5)
    dm = DialogueMaker(oracle)
    behaviours = ("ask_missing", "confirm_in_words", "decline_in_words", "clarify", "parallel", "operation")
    texts = [dm.make(rng, f"d{i}", behaviours[i % 6], rng.choice(oracle.domain_names)).request.text for i in range(300)]
    bad = [(w, t) for t in texts for w in AFTER_COMMA.findall(t) if w not in proper]
    assert not bad, f"{len(bad)} capitalised words after a comma in {len(texts)} dialogue requests: {bad[:3]}"
