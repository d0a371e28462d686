"""Exact merging of telemetry (datacore.telemetry), unit by unit; written to kill mutmut survivors.

Oracles: fractions.Fraction for exact sums, Python's json for the serialized form, hand-written values.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

from datacore import Telemetry
from datacore.telemetry import _Exact, _grow, _json_number, _sort_key


def test_json_number() -> None:
    assert _json_number(3) == 3 and _json_number(2.5) == 2.5
    assert _json_number(math.inf) is None and _json_number(-math.inf) is None and _json_number(math.nan) is None


def test_sort_key_orders_numbers_numerically_then_text() -> None:
    keys = ["x", "10", "2", "a", "-1", "1.5", "inf"]
    assert sorted(keys, key=_sort_key) == ["-1", "1.5", "2", "10", "inf", "a", "x"]
    assert _sort_key("2") == (0, 2.0, "") and _sort_key("b") == (1, 0.0, "b")


def test_grow_keeps_the_exact_sum() -> None:
    vals = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3, 1e-300, -0.1, 3.0]
    parts: list[float] = []
    for v in vals:
        _grow(parts, v)
        assert sum((Fraction(p) for p in parts), Fraction(0)) == sum(
            (Fraction(x) for x in vals[: vals.index(v) + 1]), Fraction(0)
        )
    assert all(p != 0 for p in parts)
    parts = []
    _grow(parts, 1.0)
    _grow(parts, -1.0)
    assert parts == []  # a zero sum leaves no partial
    parts = [1.0]
    _grow(parts, 2.0**-60)
    assert sorted(parts, key=abs) == [2.0**-60, 1.0]


def test_exact_add_value_and_dict() -> None:
    e = _Exact()
    assert (e.ints, e.parts, e.special, e.value()) == (0, [], None, 0.0) and type(e.value()) is float
    e.add(3)
    e.add(True)  # an Integral: into the int part
    assert e.ints == 4 and e.parts == [] and e.value() == 4.0
    e.add(0.1)
    e.add(0.2)
    exact = Fraction(4) + Fraction(0.1) + Fraction(0.2)
    assert e.value() == float(exact) == 4.3
    d = e.to_dict()
    assert set(d) == {"int", "parts"} and d["int"] == 4
    assert sum((Fraction(p) for p in d["parts"]), Fraction(0)) == Fraction(0.1) + Fraction(0.2)
    assert d["parts"][0] == float(Fraction(0.1) + Fraction(0.2))  # canonical: the rounded sum first
    back = _Exact.from_dict(d)
    assert (back.ints, back.value(), back.special) == (4, e.value(), None)
    assert _Exact.from_dict({}).value() == 0.0 and _Exact.from_dict({}).ints == 0


def test_canonical_parts() -> None:
    e = _Exact(0, [1.0, 2.0**-60, -(2.0**-60)])
    assert e.canonical_parts() == [1.0]
    e = _Exact(0, [2.0**-60, 1.0])
    assert e.canonical_parts() == [1.0, 2.0**-60]
    assert _Exact(0, [0.5, -0.5]).canonical_parts() == []


def test_exact_specials() -> None:
    e = _Exact.of(math.inf)
    assert e.special == math.inf and e.value() == math.inf
    assert e.to_dict() == {"int": 0, "parts": [], "special": "inf"}
    e.add(5.0)
    e.add(7)
    assert e.value() == math.inf
    e.add(-math.inf)
    assert math.isnan(e.value()) and e.to_dict()["special"] == "nan"
    m = _Exact.of(-math.inf)
    assert m.to_dict()["special"] == "-inf"
    back = _Exact.from_dict({"int": 2, "parts": [0.5], "special": "-inf"})
    assert back.special == -math.inf and back.ints == 2 and back.parts == [0.5]


def test_exact_merge() -> None:
    a, b = _Exact.of(0.1), _Exact(5, [0.2], None)
    a.merge(b)
    assert a.ints == 5 and a.value() == float(Fraction(5) + Fraction(0.1) + Fraction(0.2))
    c = _Exact(1, [], math.inf)
    a.merge(c)
    assert a.ints == 6 and a.value() == math.inf
    assert b.ints == 5 and b.parts == [0.2]  # the other side is untouched


def test_constructor_forms() -> None:
    t = Telemetry({"n": 3, "f": 0.5}, {"h": {"a": 1}})
    assert t.counters == {"n": 3, "f": 0.5}
    assert t.to_dict() == {
        "counters": {"f": 0.5, "n": 3},
        "histograms": {"h": {"a": 1}},
        "exact": {"f": {"int": 0, "parts": [0.5]}},
    }
    t2 = Telemetry({"x": 1.0}, None, {"x": {"int": 2, "parts": [0.25]}})
    assert t2.counters["x"] == 2.25  # the exact form wins over the shown value
    assert Telemetry().to_dict() == {"counters": {}, "histograms": {}}
    src = {"h": {"a": 1}}
    t3 = Telemetry(None, src)
    t3.observe("h", "a")
    assert src == {"h": {"a": 1}}  # copied, not aliased


def test_count() -> None:
    t = Telemetry()
    t.count("n")
    t.count("n")
    t.count("n", 5)
    assert t.counters["n"] == 7 and type(t.counters["n"]) is int and "exact" not in t.to_dict()
    t.count("n", 0.5)
    assert t.counters["n"] == 7.5 and t.to_dict()["exact"] == {"n": {"int": 7, "parts": [0.5]}}
    t.count("n", 2)
    assert t.counters["n"] == 9.5 and t.to_dict()["exact"]["n"] == {"int": 9, "parts": [0.5]}
    t.count("f", 0.1)
    t.count("f", 0.2)
    assert t.counters["f"] == float(Fraction(0.1) + Fraction(0.2))
    u = Telemetry({"g": 2.0})
    u.count("g", 3)
    assert u.counters["g"] == 5.0 and type(u.counters["g"]) is float


def test_observe_and_add_histogram() -> None:
    t = Telemetry()
    t.observe("len", 3)
    t.observe("len", "3")
    t.observe("len", 4, by=5)
    assert t.histograms == {"len": {"3": 2, "4": 5}}
    t.add_histogram("len", {3: 1, "x": 2.0, 10: 0})
    assert t.histograms == {"len": {"3": 3, "4": 5, "x": 2, "10": 0}} and type(t.histograms["len"]["x"]) is int
    t.add_histogram("new", {})
    assert t.histograms["new"] == {}
    assert list(t.to_dict()["histograms"]["len"]) == ["3", "4", "10", "x"]
    assert list(t.to_dict()["histograms"]) == ["len", "new"]


def test_merge_cases() -> None:
    a = Telemetry({"i": 2, "f": 0.1}, {"h": {"a": 1}})
    b = Telemetry({"i": 3, "f": 0.2, "only_b": 4, "fb": 1.5}, {"h": {"a": 2, "b": 1}, "g": {"z": 1}})
    out = a.merge(b)
    assert out is a
    assert a.counters["i"] == 5 and type(a.counters["i"]) is int
    assert a.counters["only_b"] == 4 and type(a.counters["only_b"]) is int
    assert a.counters["f"] == float(Fraction(0.1) + Fraction(0.2)) and a.counters["fb"] == 1.5
    assert a.histograms == {"h": {"a": 3, "b": 1}, "g": {"z": 1}}
    assert set(a.to_dict()["exact"]) == {"f", "fb"}
    # an int counter meeting a float one (either side) becomes exact
    c = Telemetry({"x": 1})
    c.merge(Telemetry({"x": 0.5}))
    assert c.counters["x"] == 1.5 and c.to_dict()["exact"]["x"] == {"int": 1, "parts": [0.5]}
    d = Telemetry({"x": 0.5})
    d.merge(Telemetry({"x": 1}))
    assert d.counters["x"] == 1.5 and d.to_dict()["exact"]["x"] == {"int": 1, "parts": [0.5]}
    e = Telemetry({"x": 2.0})  # a float counter whose value is integral stays exact after an int merge
    e.merge(Telemetry({"x": 1}))
    assert e.counters["x"] == 3.0 and e.to_dict()["exact"]["x"]["parts"] == [2.0]
    f = Telemetry()
    f.count("x", 1)
    f.merge(Telemetry.from_dict({"counters": {"x": 2}, "exact": {"x": {"int": 2, "parts": []}}}))
    assert f.counters["x"] == 3.0 and "x" in f.to_dict()["exact"]
    g = Telemetry({"x": 1})
    g.merge(Telemetry({"x": math.inf}))
    assert g.counters["x"] == math.inf and g.to_dict()["counters"]["x"] is None


def test_merged() -> None:
    assert Telemetry.merged([]) == Telemetry()
    parts = [Telemetry({"n": i}, {"h": {str(i % 2): 1}}) for i in range(5)]
    m = Telemetry.merged(parts)
    assert m.counters == {"n": 10} and m.histograms == {"h": {"0": 3, "1": 2}}
    assert parts[0].counters == {"n": 0}  # parts untouched
    assert type(m) is Telemetry


def test_from_dict_and_json() -> None:
    d = {"counters": {"a": 1, "b": None, "c": 0.5}, "histograms": {"h": {"2": 1, "10": 2}}}
    t = Telemetry.from_dict(d)
    assert t.counters == {"a": 1, "c": 0.5} and t.histograms == {"h": {"2": 1, "10": 2}}
    assert Telemetry.from_dict({}).to_dict() == {"counters": {}, "histograms": {}}
    t.count("z", math.inf)
    raw = t.to_json()
    assert isinstance(raw, bytes)
    assert json.loads(raw) == {
        "counters": {"a": 1, "c": 0.5, "z": None},
        "histograms": {"h": {"2": 1, "10": 2}},
        "exact": {"c": {"int": 0, "parts": [0.5]}, "z": {"int": 0, "parts": [], "special": "inf"}},
    }
    assert raw == json.dumps(json.loads(raw), indent=2).encode()  # indented by 2, keys in stored order
    back = Telemetry.from_json(raw.decode())
    assert back == t and back.counters["z"] == math.inf
    assert Telemetry.from_json(raw) == t


def test_eq_and_repr() -> None:
    assert Telemetry({"a": 1}) == Telemetry({"a": 1})
    assert Telemetry({"a": 1}) != Telemetry({"a": 2})
    assert Telemetry() != {"counters": {}, "histograms": {}}
    assert repr(Telemetry({"a": 1, "b": 2}, {"h": {}})) == "Telemetry(counters=2, histograms=1)"


def test_pretty() -> None:
    t = Telemetry({"tokens": 12345, "cost": 0.123456, "whole": 2.0})
    for i, c in enumerate([5, 10, 0, 1]):
        t.observe("len", i, by=c)
    for i in range(25):
        t.observe("many", f"b{i:02d}")
    text = t.pretty(max_buckets=20)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert "counters" in lines[0]
    assert any("tokens" in ln and "12,345" in ln for ln in lines)
    assert any("cost" in ln and "0.1235" in ln for ln in lines)
    assert any("whole" in ln and ln.rstrip(" │|").endswith("2") and "2.0" not in ln for ln in lines)
    assert any("name" in ln and "value" in ln for ln in lines)
    assert "len (4 buckets)" in text and "many (25 buckets)" in text
    assert any("bucket" in ln and "count" in ln and "share" in ln for ln in lines)
    row = {ln.split()[1]: ln for ln in lines if ln.split()[1:2] and ln.split()[1] in {"0", "1", "2", "3"} and "%" in ln}
    assert "#" * 30 in row["1"] and "#" * 31 not in row["1"]  # the peak gets the full bar
    assert "#" * 15 in row["0"] and "#" * 16 not in row["0"] and "31.2%" in row["0"]  # 5 of 16
    assert "#" not in row["2"] and "0.0%" in row["2"]
    assert "#" * 3 in row["3"] and "#" * 4 not in row["3"] and "6.2%" in row["3"]  # round(30/10) = 3
    assert "... 5 more" in text and "b19" in text and "b20" not in text
    assert "... " not in Telemetry(None, {"h": {"a": 1}}).pretty()
    assert Telemetry().pretty() == ""
    assert "... 24 more" in t.pretty(max_buckets=1)


def test_overflowing_float_counter_reads_as_inf() -> None:
    t = Telemetry()
    t.count("x", 1e308)
    t.count("x", 1e308)
    assert t.counters["x"] == math.inf
    t.count("y", -1e308)
    t.count("y", -1e308)
    assert t.counters["y"] == -math.inf


def test_pretty_headers_and_right_alignment() -> None:
    t = Telemetry(None, {"h": {"a": 5, "b": 1000, "c": 0}})
    lines = t.pretty().splitlines()
    head = next(ln for ln in lines if "bucket" in ln and "share" in ln)
    assert ["bucket", "count", "share"] == [w for w in head.replace("│", " ").replace("┃", " ").split() if w.isalpha()]
    rows = {ln.split()[1]: ln for ln in lines if len(ln.split()) > 2 and ln.split()[1] in {"a", "b", "c"}}
    # right-justified: the counts end in the same column, and so do the shares
    assert rows["a"].index("5 ") + 1 == rows["b"].index("1,000") + 5
    assert rows["c"].index("0.0%") + 4 == rows["b"].index("99.5%") + 5
