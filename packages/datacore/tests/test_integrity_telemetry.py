"""Float counters merge exactly: any order and grouping of shards gives the same figures.

Oracle: fractions.Fraction (the exact sum), rounded once.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

from datacore import Telemetry
from hypothesis import given, settings
from hypothesis import strategies as st

floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
values = st.lists(st.one_of(floats, st.integers(-(10**12), 10**12)), min_size=1, max_size=40)


def _shards(vals: list, cuts: list[int]) -> list[Telemetry]:
    bounds = sorted({0, len(vals), *(c % (len(vals) + 1) for c in cuts)})
    parts = []
    for a, b in zip(bounds, bounds[1:]):
        t = Telemetry()
        for v in vals[a:b]:
            t.count("x", v)
        parts.append(t)
    return parts


def _tree_merge(parts: list[Telemetry], rng: random.Random) -> Telemetry:
    parts = [Telemetry.from_dict(p.to_dict()) for p in parts]  # via JSON, as shard markers travel
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        merged = Telemetry.merged([parts[i], parts[i + 1]])
        parts[i : i + 2] = [Telemetry.from_json(merged.to_json())]
    return parts[0]


def test_the_issue_example() -> None:
    a, b, c = (Telemetry({"x": v}) for v in (0.1, 0.2, 0.3))
    left = Telemetry.merged([Telemetry.merged([a, b]), c])
    right = Telemetry.merged([a, Telemetry.merged([b, c])])
    assert left.counters["x"] == right.counters["x"] == 0.6
    assert left == right and left.to_json() == right.to_json()


@settings(max_examples=200, deadline=None)
@given(values, st.lists(st.integers(0, 100), max_size=6), st.integers(0, 2**32))
def test_merge_order_and_grouping_never_change_a_figure(vals, cuts, seed) -> None:
    rng = random.Random(seed)
    parts = _shards(vals, cuts)
    ref = Telemetry.merged(parts)
    shuffled = parts[:]
    rng.shuffle(shuffled)
    other = _tree_merge(shuffled, rng)
    assert other.to_json() == ref.to_json()
    ints = sum(v for v in vals if isinstance(v, int))
    exact_floats = sum((Fraction(v) for v in vals if isinstance(v, float)), Fraction(0))
    if any(isinstance(v, float) for v in vals):
        assert ref.counters["x"] == float(ints + float(exact_floats))
    else:
        assert ref.counters["x"] == ints and isinstance(ref.counters["x"], int)


def test_float_counter_equals_fsum_and_int_counters_stay_ints() -> None:
    t = Telemetry()
    vals = [0.1] * 10 + [1e16, 1.0, -1e16]
    for v in vals:
        t.count("cost", v)
    t.count("n", 3)
    assert t.counters["cost"] == math.fsum(vals) and t.counters["n"] == 3 and isinstance(t.counters["n"], int)
    assert Telemetry.from_json(t.to_json()) == t


def test_non_finite_counters_round_trip() -> None:
    t = Telemetry()
    t.count("x", math.inf)
    t.count("x", 1.5)
    back = Telemetry.from_json(t.to_json())
    assert back.counters["x"] == math.inf
    t.count("x", -math.inf)
    assert math.isnan(Telemetry.from_json(t.to_json()).counters["x"])
