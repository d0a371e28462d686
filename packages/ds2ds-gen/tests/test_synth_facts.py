"""The synthetic corpus's restated facts (issue 18, item 3), checked with regexes written here
against the linked article's own statement."""

from __future__ import annotations

import re

from ds2ds_gen.synth import KINDS, SynthConfig, entity_kinds, fact_slots, make_entities

CFG = SynthConfig(regions=4, rivers=5, cities=30, people=30, organizations=15, seed=3)
# how each fact is stated in the source entity's own article
OWN = {
    "city.trait": r"^# (?P<t>.+)\n\n(?P=t) is an? (?P<v>\w+) city in",
    "city.river": r"It lies on the \[(?P<v>River \w+)\]",
    "city.region": r"city in \[(?P<v>[^\]]+)\]",
    "region.trade": r"is a region known for (?P<v>\w+)\.",
    "river.source": r"rises in the (?P<v>\w+) Hills",
    "person.job": r"is an? (?P<v>\w+) born in",
    "organization.city": r"is a company based in \[(?P<v>[^\]]+)\]",
}


def test_every_restated_fact_is_the_linked_articles_own() -> None:
    arts, kinds, slots = make_entities(CFG), entity_kinds(CFG), fact_slots(CFG)
    assert set(kinds) == set(arts) and set(kinds.values()) == set(KINDS)
    assert {s.fact for s in slots} == set(OWN)
    for s in slots:
        text = arts[s.article]
        assert text[s.offset :].startswith(s.value)
        # the fact follows a link to its source, and the source states it itself
        links = re.findall(r"\[([^\]]+)\]\(([^)]+)\)", text[: s.offset])
        assert links and links[-1][1] == s.source, (s, links)
        own = re.search(OWN[s.fact], arts[s.source])
        assert own is not None and " " + own.group("v") == s.value, (s, arts[s.source])
        assert kinds[s.source] == s.fact.split(".")[0]


def test_every_article_type_restates_facts() -> None:
    kinds = entity_kinds(CFG)
    assert {kinds[s.article] for s in fact_slots(CFG)} == set(KINDS)


def test_root_prompts_cover_every_type_and_read_back(tmp_path) -> None:
    from click.testing import CliRunner
    from ds2ds_gen.batch import read_prompts
    from ds2ds_gen.cli import main
    from ds2ds_gen.synth import root_prompts

    small = SynthConfig(regions=2, rivers=2, cities=4, people=4, organizations=2)
    rows = root_prompts(3, small)
    assert sorted({k for k, _, _ in rows}) == sorted(KINDS) and len(rows) == 15
    seen = set(make_entities(small))
    assert all(t not in seen and p.startswith(f"# {t}\n\n") for _, t, p in rows)
    linked = [p for _, _, p in rows if p.endswith(")")]
    assert len(linked) == 5 and all(re.search(r"\[([^\]]+)\]\(\1\)$", p) for p in linked)
    r = CliRunner().invoke(main, ["corpus", "prompts", str(tmp_path / "p.txt"), "--per-kind", "2"])
    assert r.exit_code == 0, r.output
    assert list(read_prompts(tmp_path / "p.txt")) == [p for _, _, p in root_prompts(2)]


def test_articles_use_an_before_a_vowel() -> None:
    """'an old city', 'an engineer' (the corpus wrote 'a old', 'a engineer': 1 in 4 articles)."""
    arts = make_entities(CFG)
    bad = [m.group(0) for t in arts.values() for m in re.finditer(r"\ba [aeiouAEIOU]\w*", t)]
    assert not bad, bad[:5]
    assert any(re.search(r"\ban [aeiou]", t) for t in arts.values())
