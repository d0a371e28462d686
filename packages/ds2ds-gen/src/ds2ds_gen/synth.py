"""A synthetic linked corpus whose links matter: each article restates facts that only the
articles it links to state first.

Five article types: regions, rivers, cities, people and organizations. An entity's own facts
(a city's trait and river, a region's trade, a river's source, a person's job, an
organization's city) are stated in its own article; an article that links to the entity
restates one of them *right after the link*, e.g. a person born in a city says which river the
city lies on, which the person's article could not know without the city's article::

    # Kelmar
    Kelmar is a quiet city in [Dorvia](Dorvia), a region known for fishing. It lies on the
    [River Vash](River Vash), which rises in the Tolm Hills.

    # Mara Tol
    Mara Tol is a poet born in [Kelmar](Kelmar), a quiet city on the River Vash. ...

So a model that attends to linked documents (cross-doc-link mask) can copy the fact, and one
that does not can only guess or memorize it: :func:`fact_slots` lists every such restatement
(article, character offset, value, source article) for the benchmark's fact accuracy, and
:func:`entity_kinds` the type of every title (slot-type accuracy). The few regions and rivers
are linked from many articles (hubs), the many cities and people less often, as in real link
graphs. Every article starts with ``# Title`` and links in the ``[text](Title)`` form, so the
whole pipeline (pretokenize, train, generate with links) runs with no download. Same seed, same
corpus.
"""

from __future__ import annotations

import random
from pathlib import Path

import attrs

from .errors import ConfigError
from .title_utils import create_filename

__all__ = [
    "KINDS",
    "FactSlot",
    "SynthConfig",
    "entity_kinds",
    "fact_slots",
    "make_entities",
    "root_prompts",
    "write_synthetic_corpus",
]

#: The article types, in the order the corpus writes them.
KINDS = ("region", "river", "city", "person", "organization")

_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
_ONSETS += ["br", "dr", "gr", "st", "th", "tr", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "m"]
_ORG_KINDS = ["Guild", "Company", "Society", "Academy", "Bank", "Press"]
_TRADES = ["fishing", "weaving", "mining", "trade", "shipbuilding", "farming", "glassmaking", "printing"]
_JOBS = ["merchant", "engineer", "poet", "historian", "sailor", "architect", "physician", "painter"]
_TRAITS = ["old", "busy", "quiet", "walled", "coastal", "hillside", "ancient", "growing"]


def _positive(_inst: object, attr: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"SynthConfig.{attr.name} = {value!r}: must be an integer >= 1")


@attrs.frozen
class SynthConfig:
    """How many entities of each kind to invent, and the seed."""

    regions: int = attrs.field(default=24, validator=_positive)
    rivers: int = attrs.field(default=30, validator=_positive)
    cities: int = attrs.field(default=700, validator=_positive)
    people: int = attrs.field(default=900, validator=_positive)
    organizations: int = attrs.field(default=400, validator=_positive)
    seed: int = 0

    @property
    def total(self) -> int:
        """Number of articles this config makes."""
        return self.regions + self.rivers + self.cities + self.people + self.organizations


@attrs.frozen
class FactSlot:
    """A fact of ``source`` restated in ``article`` right after its link to ``source``:
    ``markdown[article][offset:].startswith(value)``; ``fact`` names it (``"city.river"``)."""

    article: str
    offset: int
    value: str
    source: str
    fact: str


@attrs.frozen
class _World:
    articles: dict[str, str]
    kinds: dict[str, str]
    slots: list[FactSlot]


def _word(rng: random.Random, syllables: int) -> str:
    w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
    return w.capitalize()


def _unique(rng: random.Random, used: set[str], make) -> str:  # type: ignore[no-untyped-def]
    while True:
        name = make()
        if name not in used:
            used.add(name)
            return name


class _Writer:
    """Builds one article from pieces, recording where each restated fact starts."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.text = f"# {title}\n\n"
        self.slots: list[FactSlot] = []

    def add(self, *parts: str) -> _Writer:
        self.text += "".join(parts)
        return self

    def link(self, target: str) -> _Writer:
        return self.add(f"[{target}]({target})")

    def fact(self, value: str, source: str, fact: str) -> _Writer:
        # the value starts with its space, so the prefix before it ends at a word boundary
        self.slots.append(FactSlot(self.title, len(self.text), value, source, fact))
        return self.add(value)


def _world(cfg: SynthConfig) -> _World:
    rng = random.Random(cfg.seed)
    used: set[str] = set()
    regions = [_unique(rng, used, lambda: _word(rng, 2)) for _ in range(cfg.regions)]
    rivers = [_unique(rng, used, lambda: "River " + _word(rng, 2)) for _ in range(cfg.rivers)]
    cities = [_unique(rng, used, lambda: _word(rng, rng.choice([2, 3]))) for _ in range(cfg.cities)]
    people = [_unique(rng, used, lambda: f"{_word(rng, 2)} {_word(rng, 2)}") for _ in range(cfg.people)]
    orgs = [_unique(rng, used, lambda: f"{_word(rng, 2)} {rng.choice(_ORG_KINDS)}") for _ in range(cfg.organizations)]

    region_trade = {r: rng.choice(_TRADES) for r in regions}
    river_region = {v: rng.choice(regions) for v in rivers}
    river_source = {v: _word(rng, 2) for v in rivers}
    city_region = {c: rng.choice(regions) for c in cities}
    city_river = {c: rng.choice(rivers) for c in cities}
    city_trait = {c: rng.choice(_TRAITS) for c in cities}
    person_job = {p: rng.choice(_JOBS) for p in people}
    person_city = {p: rng.choice(cities) for p in people}
    person_org = {p: rng.choice(orgs) for p in people}
    org_city = {o: rng.choice(cities) for o in orgs}
    org_founder = {o: rng.choice(people) for o in orgs}
    org_trade = {o: rng.choice(_TRADES) for o in orgs}

    writers: list[_Writer] = []
    kinds: dict[str, str] = {}
    for r in regions:
        capital = next((c for c in cities if city_region[c] == r), None) or rng.choice(cities)
        w = _Writer(r).add(f"{r} is a region known for {region_trade[r]}. Its capital is ").link(capital)
        w.add(f", {_an(city_trait[capital])}").fact(f" {city_trait[capital]}", capital, "city.trait").add(" city on the")
        w.fact(f" {city_river[capital]}", capital, "city.river").add(".\n")
        writers.append(w)
        kinds[r] = "region"
    for v in rivers:
        region = river_region[v]
        w = _Writer(v).add(f"{v} is a river in ").link(region).add(", a region known for")
        w.fact(f" {region_trade[region]}", region, "region.trade").add(f". It rises in the {river_source[v]} Hills")
        cs = [c for c in cities if city_river[c] == v][:2] or [rng.choice(cities)]
        w.add(" and flows past ")
        for i, c in enumerate(cs):
            w.add(" and " if i else "").link(c)
        writers.append(w.add(".\n"))
        kinds[v] = "river"
    for c in cities:
        region, river = city_region[c], city_river[c]
        w = _Writer(c).add(f"{c} is {_an(city_trait[c])} {city_trait[c]} city in ").link(region).add(", a region known for")
        w.fact(f" {region_trade[region]}", region, "region.trade").add(". It lies on the ").link(river)
        w.add(", which rises in the").fact(f" {river_source[river]}", river, "river.source").add(" Hills.\n")
        writers.append(w)
        kinds[c] = "city"
    for p in people:
        city, org = person_city[p], person_org[p]
        w = _Writer(p).add(f"{p} is {_an(person_job[p])} {person_job[p]} born in ").link(city).add(f", {_an(city_trait[city])}")
        w.fact(f" {city_trait[city]}", city, "city.trait").add(" city on the")
        w.fact(f" {city_river[city]}", city, "city.river").add(f". {p.split()[0]} works for the ").link(org)
        w.add(", based in").fact(f" {org_city[org]}", org, "organization.city").add(".\n")
        writers.append(w)
        kinds[p] = "person"
    for o in orgs:
        city, founder = org_city[o], org_founder[o]
        w = _Writer(o).add(f"The {o} is a company based in ").link(city).add(", a city in")
        w.fact(f" {city_region[city]}", city, "city.region").add(". It was founded by ").link(founder)
        w.add(f", {_an(person_job[founder])}").fact(f" {person_job[founder]}", founder, "person.job").add(
            f", and works in {org_trade[o]}.\n"
        )
        writers.append(w)
        kinds[o] = "organization"
    return _World({w.title: w.text for w in writers}, kinds, [s for w in writers for s in w.slots])


def _an(word: str) -> str:
    """The indefinite article before ``word`` (``an old city``, ``a busy city``)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def make_entities(cfg: SynthConfig) -> dict[str, str]:
    """Invent the entities and write their articles; returns ``{title: markdown}``."""
    return _world(cfg).articles


def entity_kinds(cfg: SynthConfig) -> dict[str, str]:
    """``{title: kind}`` of the corpus ``cfg`` makes (kinds: :data:`KINDS`)."""
    return _world(cfg).kinds


def fact_slots(cfg: SynthConfig) -> list[FactSlot]:
    """Every fact an article of the corpus restates from an article it links to."""
    return _world(cfg).slots


def root_prompts(per_kind: int, corpus: SynthConfig = SynthConfig(), seed: int = 999) -> list[tuple[str, str, str]]:
    """``(kind, title, prompt)`` roots for ``batch``/benchmarks: ``per_kind`` novel entities
    (titles not in the corpus ``corpus`` makes) of every article type. Every second prompt
    starts the article up to a link to another novel entity, so that the linked document is
    generated (an auxiliary document) and the root can restate its facts; the others are a bare
    ``# Title``."""
    if not isinstance(per_kind, int) or isinstance(per_kind, bool) or not 1 <= per_kind <= 1000:
        raise ConfigError(f"root_prompts: per_kind = {per_kind!r}: must be an integer in [1, 1000]")
    n = max(40, 2 * per_kind + 2)  # 40: the pool the benchmark figures were measured with
    world = _world(SynthConfig(regions=n, rivers=n, cities=n, people=n, organizations=n, seed=seed))
    seen = set(make_entities(corpus))
    by_kind = {k: [t for t in world.articles if world.kinds[t] == k and t not in seen] for k in KINDS}
    out = []
    for k in KINDS:
        for i in range(per_kind):
            t = by_kind[k][i]
            if i % 2 == 0:
                out.append((k, t, f"# {t}\n\n"))
                continue
            city, region = by_kind["city"][-1 - i], by_kind["region"][-1 - i]
            lead = {
                "region": f"{t} is a region known for fishing. Its capital is [{city}]({city})",
                "river": f"{t} is a river in [{region}]({region})",
                "city": f"{t} is a quiet city in [{region}]({region})",
                "person": f"{t} is a poet born in [{city}]({city})",
                "organization": f"The {t} is a company based in [{city}]({city})",
            }[k]
            out.append((k, t, f"# {t}\n\n{lead}"))
    return out


def write_synthetic_corpus(out: Path, cfg: SynthConfig = SynthConfig()) -> int:
    """Write one ``<create_filename(title)>.md`` per article into ``out``; returns the count."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arts = make_entities(cfg)
    for title, text in arts.items():
        (out / f"{create_filename(title)}.md").write_text(text, encoding="utf-8")
    return len(arts)
