from datacore import Telemetry
from hypothesis import given
from hypothesis import strategies as st

names = st.sampled_from(["a", "b", "c", "len"])
tele = st.builds(
    Telemetry,
    st.dictionaries(names, st.integers(-1000, 10**9), max_size=4),
    st.dictionaries(
        names, st.dictionaries(st.sampled_from(["1", "2", "10", "x"]), st.integers(0, 10**6), max_size=4), max_size=3
    ),
)


@given(tele, tele, tele)
def test_merge_associative_and_commutative(a, b, c) -> None:
    left = Telemetry.merged([Telemetry.merged([a, b]), c])
    right = Telemetry.merged([a, Telemetry.merged([b, c])])
    assert left == right
    assert Telemetry.merged([a, b]) == Telemetry.merged([b, a])


@given(tele)
def test_json_round_trip(t) -> None:
    assert Telemetry.from_json(t.to_json()) == t


def test_counts_and_pretty() -> None:
    t = Telemetry()
    for n in [1, 2, 2, 10]:
        t.observe("length", n)
        t.count("tokens", n)
    assert t.histograms["length"] == {"1": 1, "2": 2, "10": 1}
    assert t.counters["tokens"] == 15
    # numeric buckets sort numerically
    assert list(t.to_dict()["histograms"]["length"]) == ["1", "2", "10"]
    text = t.pretty()
    assert "length" in text and "tokens" in text and "50.0%" in text
