"""A synthetic linked corpus: short markdown articles about invented entities that link to each other.

Regions contain cities; cities are in a region and on a river; people come from a region, are
born in a city and work for an organization; organizations belong to a region, are based in a
city and founded by a person. The few regions are linked from almost every article (hubs), the
many cities and people less often, as in real link graphs. Every
article starts with ``# Title`` and links in the ``[text](Title)`` form, so the whole pipeline
(pretokenize, train, generate with links) runs with no download. Same seed, same corpus.
"""

from __future__ import annotations

import random
from pathlib import Path

import attrs

from .errors import ConfigError
from .title_utils import create_filename

__all__ = ["SynthConfig", "make_entities", "write_synthetic_corpus"]

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gr",
    "st",
    "th",
    "tr",
    "sh",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "m"]
_ORG_KINDS = ["Guild", "Company", "Society", "Academy", "Bank", "Press"]
_TRADES = ["fishing", "weaving", "mining", "trade", "shipbuilding", "farming", "glassmaking", "printing"]
_JOBS = ["merchant", "engineer", "poet", "historian", "sailor", "architect", "physician", "painter"]
_TRAITS = ["old", "busy", "quiet", "walled", "coastal", "hillside", "ancient", "growing"]


def _positive(_inst: object, attr: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or value < 1:
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


def _word(rng: random.Random, syllables: int) -> str:
    w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
    return w.capitalize()


def _unique(rng: random.Random, used: set[str], make) -> str:  # type: ignore[no-untyped-def]
    while True:
        name = make()
        if name not in used:
            used.add(name)
            return name


def _link(title: str) -> str:
    return f"[{title}]({title})"


def make_entities(cfg: SynthConfig) -> dict[str, str]:
    """Invent the entities and write their articles; returns ``{title: markdown}``."""
    rng = random.Random(cfg.seed)
    used: set[str] = set()
    regions = [_unique(rng, used, lambda: _word(rng, 2)) for _ in range(cfg.regions)]
    rivers = [_unique(rng, used, lambda: "River " + _word(rng, 2)) for _ in range(cfg.rivers)]
    cities = [_unique(rng, used, lambda: _word(rng, rng.choice([2, 3]))) for _ in range(cfg.cities)]
    people = [_unique(rng, used, lambda: f"{_word(rng, 2)} {_word(rng, 2)}") for _ in range(cfg.people)]
    orgs = [_unique(rng, used, lambda: f"{_word(rng, 2)} {rng.choice(_ORG_KINDS)}") for _ in range(cfg.organizations)]

    city_region = {c: rng.choice(regions) for c in cities}
    city_river = {c: rng.choice(rivers) for c in cities}
    person_city = {p: rng.choice(cities) for p in people}
    org_city = {o: rng.choice(cities) for o in orgs}
    org_founder = {o: rng.choice(people) for o in orgs}
    person_org = {p: rng.choice(orgs) for p in people}
    arts: dict[str, str] = {}

    for r in regions:
        cs = [c for c in cities if city_region[c] == r][:3] or [rng.choice(cities)]
        body = (
            f"{r} is a region known for {rng.choice(_TRADES)}. "
            f"Its largest cities are {', '.join(_link(c) for c in cs)}. "
            f"The {_link(rng.choice(rivers))} crosses it."
        )
        arts[r] = body
    for rv in rivers:
        cs = [c for c in cities if city_river[c] == rv][:2] or [rng.choice(cities)]
        arts[rv] = f"{rv} is a river in {_link(rng.choice(regions))}. It flows past {' and '.join(_link(c) for c in cs)}."
    for c in cities:
        arts[c] = (
            f"{c} is a {rng.choice(_TRAITS)} city in {_link(city_region[c])}. "
            f"It lies on the {_link(city_river[c])}. "
            f"The town is known for {rng.choice(_TRADES)}."
        )
    for p in people:
        arts[p] = (
            f"{p} is a {rng.choice(_JOBS)} from {_link(city_region[person_city[p]])}, born in {_link(person_city[p])}. "
            f"{p.split()[0]} works for the {_link(person_org[p])}."
        )
    for o in orgs:
        arts[o] = (
            f"The {o} is a company of {_link(city_region[org_city[o]])}, based in {_link(org_city[o])}. "
            f"It was founded by {_link(org_founder[o])} and works in {rng.choice(_TRADES)}."
        )
    return {t: f"# {t}\n\n{body}\n" for t, body in arts.items()}


def write_synthetic_corpus(out: Path, cfg: SynthConfig = SynthConfig()) -> int:
    """Write one ``<create_filename(title)>.md`` per article into ``out``; returns the count."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arts = make_entities(cfg)
    for title, text in arts.items():
        (out / f"{create_filename(title)}.md").write_text(text, encoding="utf-8")
    return len(arts)
