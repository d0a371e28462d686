"""Requested vs delivered (datacore.strata), tested unit by unit; written to kill mutmut survivors.

Oracles: shares and bands computed here with fractions.Fraction, messages written out by hand.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from datacore.errors import DatacoreError
from datacore.strata import STRATA, Delivery, ShortfallError, Target, check_delivery, targets_of


def test_histogram_name() -> None:
    assert STRATA == "strata"


def test_target_defaults_and_bounds() -> None:
    t = Target("a", 0.25)
    assert (t.stratum, t.share, t.tolerance) == ("a", 0.25, 0.02)
    for ok in (0, 1, 0.0, 1.0, 0.5):
        assert Target("a", ok, ok).share == ok
    assert issubclass(ShortfallError, DatacoreError)


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, -math.inf, True, False, "0.5", None])
def test_target_refuses_bad_share_and_tolerance(bad) -> None:
    with pytest.raises(DatacoreError) as e:
        Target("a", bad)
    assert str(e.value) == f"Target.share must be a number in [0, 1], got {bad!r}"
    with pytest.raises(DatacoreError) as e:
        Target("a", 0.5, bad)
    assert str(e.value) == f"Target.tolerance must be a number in [0, 1], got {bad!r}"


def test_target_stratum_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        Target(5, 0.5)  # type: ignore[arg-type]


def _band_ok(got: int, delivered: int, share: float, tol: float) -> bool:
    return abs(Fraction(got, delivered) - Fraction(repr(share))) <= Fraction(repr(tol))  # decimal shares


def test_rows_are_exact() -> None:
    targets = [Target("x", 0.25, 0.05), Target("y", 0.75, 0.01), Target("z", 0.1, 0.1)]
    d = check_delivery(200, 200, targets, {"x": 40, "y": 150, "z": 20.0, "other": 7}, allow_shortfall=True)
    assert d.rows == (
        {"stratum": "x", "share": 0.25, "tolerance": 0.05, "requested": 50, "delivered": 40, "delivered_share": 0.2, "ok": True},
        {
            "stratum": "y",
            "share": 0.75,
            "tolerance": 0.01,
            "requested": 150,
            "delivered": 150,
            "delivered_share": 0.75,
            "ok": True,
        },
        {"stratum": "z", "share": 0.1, "tolerance": 0.1, "requested": 20, "delivered": 20, "delivered_share": 0.1, "ok": True},
    )
    assert type(d.rows[2]["delivered"]) is int
    assert d.ok and d.worst() is None and d.allowed is True
    assert (d.requested, d.delivered) == (200, 200)


def test_requested_is_rounded_share_of_n() -> None:
    d = check_delivery(7, 7, [Target("a", 0.5, 1.0), Target("b", 0.3, 1.0)], {"a": 3, "b": 2})
    assert [r["requested"] for r in d.rows] == [round(3.5), 2]  # 3.5 -> 4 (banker's), 2.1 -> 2
    assert [r["requested"] for r in d.rows] == [4, 2]


def test_band_edges_follow_the_exact_fraction() -> None:
    # share 0.3, tolerance 0.1: counts 20..40 of 100 are in the band (0.4 - 0.3 is 0.10000000000000003 in floats)
    for got in range(0, 101):
        d = check_delivery(100, 100, [Target("a", 0.3, 0.1)], {"a": got}, allow_shortfall=True)
        assert d.rows[0]["ok"] is _band_ok(got, 100, 0.3, 0.1), got
        assert d.rows[0]["delivered_share"] == got / 100


def test_missing_stratum_and_empty_run() -> None:
    d = check_delivery(10, 10, [Target("a", 0.0, 0.0)], {})
    assert d.rows[0]["delivered"] == 0 and d.rows[0]["delivered_share"] == 0.0 and d.ok
    d = check_delivery(0, 0, [Target("a", 0.0, 0.0)], {"a": 0})
    assert d.rows[0]["delivered_share"] == 0.0 and d.ok and d.worst() is None


def test_duplicate_stratum_is_refused() -> None:
    with pytest.raises(DatacoreError) as e:
        check_delivery(10, 10, [Target("a", 0.5), Target("b", 0.5), Target("a", 0.5)], {"a": 5, "b": 5})
    assert type(e.value) is DatacoreError
    assert str(e.value) == "generator declared stratum 'a' twice"
    check_delivery(10, 10, [Target("a", 0.5), Target("b", 0.5)], {"a": 5, "b": 5})  # distinct names pass


def test_n_mismatch_is_the_worst_and_raises() -> None:
    with pytest.raises(ShortfallError) as e:
        check_delivery(1234, 1233, [], {})
    assert str(e.value) == (
        "requested != delivered: -n asked 1,234 records, delivered 1,233 (pass --allow-shortfall to keep such a dataset)"
    )
    d = check_delivery(1234, 1235, [Target("a", 1.0, 0.0)], {"a": 1235}, allow_shortfall=True)
    assert d.rows[0]["ok"] and not d.ok
    assert d.worst() == "-n asked 1,234 records, delivered 1,235"
    assert d.to_dict() == {
        "requested": 1234,
        "delivered": 1235,
        "ok": False,
        "shortfall_allowed": True,
        "strata": [
            {
                "stratum": "a",
                "share": 1.0,
                "tolerance": 0.0,
                "requested": 1234,
                "delivered": 1235,
                "delivered_share": 1.0,
                "ok": True,
            }
        ],
    }


def test_worst_is_the_largest_excess_over_tolerance() -> None:
    # a: |0.30 - 0.50| - 0.15 = 0.05 ; b: |0.40 - 0.20| - 0.05 = 0.15 (worst) ; c: |0.30 - 0.30| ok
    targets = [Target("a", 0.5, 0.15), Target("b", 0.2, 0.05), Target("c", 0.3, 0.0)]
    counts = {"a": 3000, "b": 4000, "c": 3000}
    with pytest.raises(ShortfallError) as e:
        check_delivery(10000, 10000, targets, counts)
    line = "stratum b: asked 20.0% (2,000 records), got 40.0% (4,000), tolerance 5.0%"
    assert str(e.value) == f"requested != delivered: {line} (pass --allow-shortfall to keep such a dataset)"
    d = check_delivery(10000, 10000, targets, counts, allow_shortfall=True)
    assert [r["ok"] for r in d.rows] == [False, False, True]
    assert d.worst() == line and not d.ok
    # the raw deviation alone would pick a (0.20 vs 0.20 tie broken by order) - the excess picks b; reversed order too
    d = check_delivery(10000, 10000, targets[::-1], counts, allow_shortfall=True)
    assert d.worst() == line
    assert d.to_dict()["ok"] is False and d.to_dict()["shortfall_allowed"] is True


def test_worst_prefers_excess_not_raw_deviation() -> None:
    # a deviates more (0.30) but has tolerance 0.28 -> excess 0.02; b deviates 0.10 with tolerance 0 -> excess 0.10
    targets = [Target("a", 0.6, 0.28), Target("b", 0.4, 0.0)]
    d = check_delivery(10, 10, targets, {"a": 3, "b": 5}, allow_shortfall=True)
    assert d.worst() == "stratum b: asked 40.0% (4 records), got 50.0% (5), tolerance 0.0%"


def test_delivery_ok_and_to_dict() -> None:
    rows = ({"ok": True}, {"ok": True})
    assert Delivery(5, 5, rows).ok and Delivery(5, 5, ()).ok
    assert not Delivery(5, 4, rows).ok
    assert not Delivery(
        5,
        5,
        (
            {"ok": True},
            {"ok": False, "delivered_share": 0.1, "share": 0.2, "tolerance": 0.0, "stratum": "s", "requested": 1, "delivered": 0},
        ),
    ).ok
    d = Delivery(3, 3, ())
    assert d.allowed is False
    assert d.to_dict() == {"requested": 3, "delivered": 3, "ok": True, "shortfall_allowed": False, "strata": []}
    assert type(d.to_dict()["strata"]) is list


def test_no_error_when_all_is_delivered() -> None:
    d = check_delivery(4, 4, [Target("a", 0.5, 0.0)], {"a": 2})
    assert d.ok and d.allowed is False and d.to_dict()["ok"] is True


class _NoTargets:
    pass


class _NotCallable:
    targets = 5


class _Declares:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def targets(self, n: int):
        self.asked.append(n)
        return (Target(f"s{i}", 0.5) for i in range(2))


class _Bad:
    def targets(self, n: int):
        return [Target("a", 1.0), ("b", 0.5)]


def test_targets_of() -> None:
    assert targets_of(_NoTargets(), 10) == []
    assert targets_of(_NotCallable(), 10) == []
    g = _Declares()
    out = targets_of(g, 17)
    assert out == [Target("s0", 0.5), Target("s1", 0.5)] and type(out) is list and g.asked == [17]
    with pytest.raises(TypeError) as e:
        targets_of(_Bad(), 3)
    assert str(e.value) == "_Bad.targets() must return Target objects, got ('b', 0.5)"
