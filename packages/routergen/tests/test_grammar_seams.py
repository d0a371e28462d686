"""Realism of the built-in grammars: no seams in what they produce.

The forbidden patterns were written from reading 40 random records of each built-in recipe's
offline output (issue 16: "it was due three days ago as soon as possible", "Since on Monday"),
and are checked with ``re`` on a seeded sample of the grammars' raw output (both weightings,
before any validator), independent of the grammar code.
"""

from __future__ import annotations

import re

import pytest
from routergen.generators import GenerationPlan, TemplaterGenerator
from routergen.spec import ArmSpec, builtin_recipes, load_recipe

TIME = (
    r"(?:yesterday|today|tonight|this (?:morning|evening|week)|last (?:night|week|month|year)|"
    r"(?:an?|one|two|three|four|five|\d+) (?:days?|weeks?|months?) ago|on (?:mon|tues|wednes|thurs|fri|satur|sun)day|"
    r"before the holidays|as soon as possible|right away|asap)"
)
APPLIANCES = r"(?:blender|toaster|kettle|coffee maker|air fryer|rice cooker|stand mixer|microwave)"

#: (name, pattern): each is a seam seen (or one of its kind) in the built-in recipes' output
SEAMS: list[tuple[str, str]] = [
    ("two time expressions in one clause", rf"\b{TIME}\b[^.?!;\n]*\b{TIME}\b"),
    ("'since' + preposition or 'ago'", r"(?i)\bsince (?:on|in|at|during)\b|\bsince [^.?!;,\n]*\bago\b"),
    (
        "present-tense fault with a past time",
        r"\b(?:keeps|will not|won't|overheats|disconnects|drains|makes|has a)\b[^.?!;,\n]*\b(?:yesterday|last (?:week|month)|ago|this morning|before the holidays|on \w+day)\b",
    ),
    ("'a' before a vowel", r"\b[Aa] (?=[aeioAEIO])"),
    ("'an' before a consonant", r"\b[Aa]n (?=[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z])"),
    ("'a' + plural noun", r"\b[Aa] (?:\w+ )?(?:headphones|earbuds|speakers|glasses|scissors)\b"),
    (
        "plural noun + singular verb",
        r"\bheadphones (?:\w+ ){0,4}?(?:is|was|has|overheats|keeps|stopped|disconnects|drains|makes|arrived)\b",
    ),
    ("urgency inside a question", r"(?:if you can|it is urgent|as soon as possible)\?"),
    ("'can you ... if you can'", r"\b[Cc]an you\b[^.?!\n]*\bif you can\b"),
    ("urgency after a bare order number", r"\bOrder #\d+ (?:as soon|today|, it is)"),
    ("a clause glued to the subject", rf"\bThe {APPLIANCES} (?:it|the)\b"),
    ("a predicate without a subject after but/yet", r"\b(?:but|yet),? (?:is|are|leaks|has|feels?)\b"),
    (
        "praise and complaint that contradict",
        r"easy to clean[^.\n]*hard to clean|hard to clean[^.\n]*easy to clean|\bquiet\b[^.\n]*\bloud\b|\bloud\b[^.\n]*\bquiet\b",
    ),
    ("a screen on a device without one", r"\bscreen of my (?:headphones|headset|speaker|router|keyboard)\b"),
    ("doubled word", r"(?i)\b(\w+) \1\b"),
    ("doubled or stray punctuation", r"[.,;:?!] *[.,;:]|\s[.,;:?!]|\(\s*\)"),
    ("a sentence starting in lower case", r"[.?!] [a-z]"),
    ("a capital right after a comma", r", (?!I\b)[A-Z][a-z]"),
    ("a fault on arrival that came days after the purchase", r"arrived with [^.?!\n]*\bdays? after\b"),
]


def _grammar_recipes() -> list[str]:
    return [n for n in builtin_recipes() if load_recipe(n).grammar is not None]


def _texts(name: str, per_weighting: int = 600) -> list[str]:
    """Raw offline output: both weightings (the templater and templater-uniform arms)."""
    recipe = load_recipe(name)
    gen = TemplaterGenerator(recipe)
    out = []
    for weighting in ("grammar", "uniform"):
        arm = ArmSpec(f"t-{weighting}", "templater", weighting=weighting)
        for it in range(3):
            for s in gen.generate(GenerationPlan(it, arm, None, per_weighting // 3, 1000 + it)):
                assert s.fields is not None, s.error
                out.append(s.text)
    return out


def test_the_seam_patterns_catch_what_was_read() -> None:
    # The patterns can fail: each catches the seam it was written from.
    seen = [
        "Order #20917 (green phone) has not arrived; it was due three days ago as soon as possible.",
        "Dear service team, Since on Monday my black laptop disconnects every few minutes.",
        "My e-reader keeps restarting last week.",
        "Someone ordered a headphones with my account on Monday.",
        "The headphones I ordered yesterday overheats, so please refund order #10234.",
        "Is this covered by the warranty, it is urgent?",
        "Can you repair it under warranty today if you can?",
        "My phone was delivered to the wrong address two weeks ago. Order #88310 as soon as possible.",
        "Would not buy again. The air fryer the cord is too short.",
        "The air fryer is okay: it is easy to clean, yet is loud.",
        "Love it! The coffee maker is easy to clean, but it is hard to clean.",
        "I bought a e-reader last week.",
        "My blue e-reader arrived with a cracked screen only 21 days after I bought it.",
    ]
    for text in seen:
        assert any(re.search(p, text) for _, p in SEAMS), text


@pytest.mark.parametrize("name", _grammar_recipes())
def test_builtin_grammars_produce_no_seams(name: str) -> None:
    texts = _texts(name)
    assert len(texts) >= 1000
    found = {}
    for what, pattern in SEAMS:
        hits = [t for t in texts if re.search(pattern, t)]
        if hits:
            found[what] = (len(hits), hits[:2])
    assert not found, f"{name}: {found}"


def _records(name: str, n: int = 400) -> list[dict[str, object]]:
    """Raw offline records (fields and all) of both weightings."""
    recipe = load_recipe(name)
    gen = TemplaterGenerator(recipe)
    out: list[dict[str, object]] = []
    for weighting in ("grammar", "uniform"):
        arm = ArmSpec(f"t-{weighting}", "templater", weighting=weighting)
        for s in gen.generate(GenerationPlan(0, arm, None, n // 2, 77)):
            assert s.fields is not None, s.error
            out.append(dict(s.fields))
    return out


@pytest.mark.parametrize("name", _grammar_recipes())
def test_builtin_grammar_fields_are_clean_labels(name: str) -> None:
    # A field is a label a classifier trains on: "urgency" used to be " It is urgent." (the text's
    # sentence with its leading space) or "" (issue 16's follow-up). Fields other than the text
    # must be non-empty and carry no surrounding whitespace.
    bad = {}
    for rec in _records(name):
        for key, value in rec.items():
            if key == "text" or not isinstance(value, str):
                continue
            if not value or value != value.strip():
                bad.setdefault(key, repr(value))
    assert not bad, f"{name}: {bad}"
