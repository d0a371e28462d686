"""The frozen configuration of a lambdagen run, and its text forms (``--schedule``, ``--quotas``,
``--size-quotas``, ``--depth-quotas``)."""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from . import _core
from .errors import ScheduleError

#: Largest size / depth bound accepted in a schedule (the count tables grow as size^2 * depth^2).
MAX_CELL_SIZE = 400
MAX_CELL_DEPTH = 40
INF = 2**31 - 1


def seed_schedule() -> tuple[tuple[int, int, float], ...]:
    """The seed's ten complexity cycles (``chunk_id % 10 -> depth 6..15, size 80..200``) as
    (size, depth, weight) cells with equal weights."""
    return tuple((s, d, 1.0) for s, d in _core.seed_cycles())


def parse_schedule(text: str) -> tuple[tuple[int, int, float], ...]:
    """Parse ``"seed"`` or ``"SIZExDEPTH[:WEIGHT],..."`` (e.g. ``"100x7,120x8:2"``)."""
    text = text.strip()
    if text == "seed":
        return seed_schedule()
    cells = []
    for i, part in enumerate(text.split(",")):
        m = re.fullmatch(r"\s*(\d+)x(\d+)(?::([0-9.eE+-]+))?\s*", part)
        if not m:
            raise ScheduleError(f"--schedule item {i + 1} {part!r}: expected SIZExDEPTH or SIZExDEPTH:WEIGHT, e.g. 100x7:2")
        try:
            w = float(m.group(3)) if m.group(3) else 1.0
        except ValueError:
            raise ScheduleError(f"--schedule item {i + 1} {part!r}: weight is not a number") from None
        cells.append((int(m.group(1)), int(m.group(2)), w))
    return tuple(cells)


def parse_quotas(text: str, option: str = "--quotas") -> tuple[tuple[int, int, float], ...]:
    """Parse ``"LO-HI:SHARE,..."`` trace-length buckets (``HI`` may be empty: no upper end),
    e.g. ``"1-2:0.25,3-6:0.25,7-20:0.25,21-:0.25"``; ``""`` means no quotas."""
    if not text.strip():
        return ()
    out = []
    for i, part in enumerate(text.split(",")):
        m = re.fullmatch(r"\s*(\d+)-(\d*):([0-9.eE+-]+)\s*", part)
        if not m:
            raise ScheduleError(f"{option} item {i + 1} {part!r}: expected LO-HI:SHARE or LO-:SHARE, e.g. 1-2:0.25")
        hi = int(m.group(2)) if m.group(2) else INF
        out.append((int(m.group(1)), hi, float(m.group(3))))
    return tuple(out)


#: What an out-of-distribution split can be decided by (a trace's total steps, its start
#: term's size or depth).
SPLIT_BY = ("steps", "size", "depth")


def parse_split(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``"KIND:VAL_FROM,TEST_FROM"`` (``--split``), e.g. ``"steps:10,20"``: traces of
    under 10 steps are train, 10..19 val, 20 and more test.  ``KIND`` is ``steps``, ``size``
    (of the start term) or ``depth`` (of the start term); ``""`` means the hash split."""
    text = text.strip()
    if not text:
        return "", ()
    m = re.fullmatch(r"(\w+):(\d+),(\d+)", text)
    if not m or m.group(1) not in SPLIT_BY:
        raise ScheduleError(
            f"--split {text!r}: expected KIND:VAL_FROM,TEST_FROM with KIND one of {', '.join(SPLIT_BY)}, e.g. steps:10,20"
        )
    return m.group(1), (int(m.group(2)), int(m.group(3)))


def _split_at(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _quota_tuple(value: Any, option: str = "--quotas") -> tuple[tuple[int, int, float], ...]:
    if isinstance(value, str):
        return parse_quotas(value, option)
    return tuple((int(a), int(b), float(c)) for a, b, c in value)


def _check_buckets(what: str, quotas: tuple[tuple[int, int, float], ...], first: int, last: int, unit: str, bound: str) -> None:
    """Shares > 0 summing to 1; buckets contiguous, disjoint and covering ``first..last``."""
    if not quotas:
        return
    if abs(sum(q[2] for q in quotas) - 1.0) > 1e-6 or any(q[2] <= 0 for q in quotas):
        raise ScheduleError(f"{what}: shares must be > 0 and sum to 1, got {[q[2] for q in quotas]}")
    spans = sorted((lo, hi) for lo, hi, _ in quotas)
    if any(lo > hi for lo, hi in spans):
        raise ScheduleError(f"{what}: a bucket has LO > HI: {spans}")
    if spans[0][0] > first or spans[-1][1] < last:
        raise ScheduleError(
            f"{what}: buckets must cover {unit} {first}..{last} ({bound}), got {spans} "
            "(end with LO-:SHARE for an open last bucket)"
        )
    for (a_lo, a_hi), (b_lo, _) in zip(spans, spans[1:]):
        if b_lo != a_hi + 1:
            raise ScheduleError(f"{what}: buckets must be contiguous and disjoint, got {a_lo}-{a_hi} then {b_lo}-")


def _cells(value: Any) -> tuple[tuple[int, int, float], ...]:
    if isinstance(value, str):
        return parse_schedule(value)
    return tuple((int(s), int(d), float(w)) for s, d, w in value)


def _check_schedule(_inst: Any, _attr: Any, cells: tuple[tuple[int, int, float], ...]) -> None:
    if not cells:
        raise ScheduleError("schedule: needs at least one SIZExDEPTH cell")
    for s, d, w in cells:
        if not (1 <= s <= MAX_CELL_SIZE) or not (0 <= d <= MAX_CELL_DEPTH):
            raise ScheduleError(f"schedule: cell {s}x{d}: size must be in 1..{MAX_CELL_SIZE} and depth in 0..{MAX_CELL_DEPTH}")
        if not (w > 0 and math.isfinite(w)):
            raise ScheduleError(f"schedule: cell {s}x{d}: weight must be a positive number, got {w}")
    if len({(s, d) for s, d, _ in cells}) != len(cells):
        raise ScheduleError("schedule: a (size, depth) cell is listed twice")
    seen: dict[int, int] = {}
    for s, d, _ in cells:
        if s in seen:
            raise ScheduleError(
                f"schedule: cells {s}x{seen[s]} and {s}x{d} overlap (every term of {s} nodes and depth <= "
                f"{min(d, seen[s])} is in both, so start terms could repeat); give each size one depth bound"
            )
        seen[s] = d
    bad = _core.infeasible_cells([(s, d) for s, d, _ in cells])
    if bad:
        raise ScheduleError("schedule: " + "; ".join(bad))


def _positive(_inst: Any, attr: Any, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ScheduleError(f"{attr.name} must be an integer >= 1, got {value!r}")


def _non_negative(_inst: Any, attr: Any, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ScheduleError(f"{attr.name} must be an integer >= 0, got {value!r}")


@attrs.frozen
class LambdaConfig:
    """Everything that decides a lambdagen dataset besides the seed and ``n``.

    * ``schedule``: (size, depth bound, weight) cells start terms are drawn from, uniformly
      within a cell; each cell gets its weight's share of the *records* (exactly, up to a
      few records per run), declared to datacore as targets (default: the seed's ten
      cycles); a string is parsed by :func:`parse_schedule`.  Infeasible cells, cells
      above ``max_size`` and two cells of one size are refused.
    * ``max_steps`` / ``max_size``: caps of each trace (status ``step_cap`` / ``size_cap``).
    * ``max_examples_per_trace``: keep at most this many steps per trace, evenly spread (0: all).
    * ``redex_only``: skip start terms already in normal form (else they give one record
      with ``input == target`` and ``total_steps == 0``).
    * ``whole_trace``: one record per trace (``trace`` lists every term) instead of per step.
    * ``quotas``: (lo, hi, share) buckets of trace length; each gets at most ``ceil(share*count)``
      examples per shard (a string is parsed by :func:`parse_quotas`); empty: none.
    * ``size_quotas`` / ``depth_quotas``: the same, over the size (nodes) / depth of each
      example's input term; an example whose bucket is full is skipped.  At most one of the
      three quota kinds per run (greedy filling of several marginals at once can deadlock).
    * ``chunk_traces``: start terms per parallel chunk; ``zstd_level`` for ``--compress zst``.
    * ``named``: also write ``input_named`` / ``target_named`` (named binders, ``λa. λb. a b``).
    * ``strategy``: which redex each step contracts: ``normal`` (leftmost-outermost),
      ``call_by_name``, ``call_by_value``, ``applicative`` (leftmost-innermost) or ``head``;
      written to every record's ``meta.strategy``.
    * ``tokens``: also write ``input_ids`` / ``target_ids`` (see :mod:`lambdagen.tokens`); the
      dataset then gets a ``vocab.json`` with the longest input and target in tokens.
    * ``split_by`` / ``split_at``: an out-of-distribution split instead of the hash one:
      with ``split_by`` ``steps`` (the trace's total steps), ``size`` or ``depth`` (of the
      trace's start term) and ``split_at = (val_from, test_from)``, a trace whose value is
      below ``val_from`` is train, below ``test_from`` val, else test (the split ratios are
      then not used).  A function of the start term alone, so a trace, and every trace of one
      start term, is never split; records then carry ``meta.start_size`` / ``start_depth``.
    * ``curriculum``: order the records by difficulty: cells (by size, then depth) take
      contiguous blocks of the run's records, so shard ``i`` holds no cell harder than
      shard ``i + 1``, and within a shard records are sorted by (cell, trace length), each
      trace whole and in step order.  The generator then needs the run's ``n``
      (``LambdaGenerator(records=n)``; :func:`lambdagen.generate` and the CLI set it).
    * ``threads``: Rust threads per shard (0: all cores); it does not change the output.
    """

    schedule: tuple[tuple[int, int, float], ...] = attrs.field(factory=seed_schedule, converter=_cells, validator=_check_schedule)
    max_steps: int = attrs.field(default=100, validator=_positive)
    max_size: int = attrs.field(default=400, validator=_positive)
    max_examples_per_trace: int = attrs.field(default=0, validator=_non_negative)
    redex_only: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    whole_trace: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    quotas: tuple[tuple[int, int, float], ...] = attrs.field(default=(), converter=_quota_tuple)
    chunk_traces: int = attrs.field(default=32, validator=_positive)
    zstd_level: int = attrs.field(default=1)
    threads: int = attrs.field(default=0, validator=_non_negative)
    size_quotas: tuple[tuple[int, int, float], ...] = attrs.field(
        default=(), converter=lambda v: _quota_tuple(v, "--size-quotas")
    )
    depth_quotas: tuple[tuple[int, int, float], ...] = attrs.field(
        default=(), converter=lambda v: _quota_tuple(v, "--depth-quotas")
    )
    named: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    tokens: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    strategy: str = attrs.field(default="normal")
    split_by: str = attrs.field(default="")
    split_at: tuple[int, ...] = attrs.field(default=(), converter=_split_at)
    curriculum: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @split_at.validator
    def _check_split(self, _attr: Any, value: tuple[int, ...]) -> None:
        if self.split_by not in ("", *SPLIT_BY):
            raise ScheduleError(
                f"split_by must be one of {', '.join(SPLIT_BY)} (or '' for the hash split), got {self.split_by!r}"
            )
        if not self.split_by:
            if value:
                raise ScheduleError(f"split_at {list(value)} needs split_by (steps, size or depth)")
            return
        if len(value) != 2 or not 0 < value[0] <= value[1]:
            raise ScheduleError(f"split_at must be (val_from, test_from) with 0 < val_from <= test_from, got {list(value)}")

    @strategy.validator
    def _check_strategy(self, _attr: Any, value: str) -> None:
        if value not in _core.strategies():
            raise ScheduleError(f"strategy must be one of {', '.join(_core.strategies())}, got {value!r}")

    def __attrs_post_init__(self) -> None:
        # Inputs above the size cap are never made: a cell's start terms must fit under it.
        big = [f"{s}x{d}" for s, d, _ in self.schedule if s > self.max_size]
        if big:
            raise ScheduleError(
                f"schedule: cell(s) {', '.join(big)} have start terms above max_size {self.max_size}; "
                "raise --max-size or use smaller cells"
            )

    @zstd_level.validator
    def _check_level(self, _attr: Any, value: int) -> None:
        if not isinstance(value, int) or not 1 <= value <= 19:
            raise ScheduleError(f"zstd_level must be an integer in 1..19, got {value!r}")

    @quotas.validator
    def _check_quotas(self, _attr: Any, quotas: tuple[tuple[int, int, float], ...]) -> None:
        _check_buckets("quotas", quotas, 1 if self.redex_only else 0, self.max_steps, "trace lengths", "max_steps")

    @size_quotas.validator
    def _check_size_quotas(self, _attr: Any, quotas: tuple[tuple[int, int, float], ...]) -> None:
        # The smallest closed term (an abstraction over its variable) has 2 nodes; inputs never exceed max_size.
        _check_buckets("size_quotas", quotas, 2, self.max_size, "input sizes", "max_size")

    @depth_quotas.validator
    def _check_depth_quotas(self, _attr: Any, quotas: tuple[tuple[int, int, float], ...]) -> None:
        # A closed term has depth >= 1; a term of at most max_size nodes has depth < max_size.
        _check_buckets("depth_quotas", quotas, 1, self.max_size - 1, "input depths", "max_size - 1")
        kinds = [k for k in ("quotas", "size_quotas", "depth_quotas") if getattr(self, k)]
        if len(kinds) > 1:
            raise ScheduleError(f"only one kind of quota per run, got {' and '.join(kinds)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the manifest (``threads`` left out: it does not change the output)."""
        d = attrs.asdict(self)
        d.pop("threads")
        d["schedule"] = [list(c) for c in self.schedule]
        for k in ("quotas", "size_quotas", "depth_quotas"):
            d[k] = [list(q) for q in getattr(self, k)]
        d["split_at"] = list(self.split_at)
        return d

    def split_rule(self) -> str | None:
        """The out-of-distribution split in words (recorded in the manifest), or None."""
        if not self.split_by:
            return None
        what = {"steps": "total steps", "size": "start-term size", "depth": "start-term depth"}[self.split_by]
        lo, hi = self.split_at
        return f"{what} < {lo}: train; {lo} <= {what} < {hi}: val; {what} >= {hi}: test (split ratios not used)"

    def split_of_value(self, value: int) -> str:
        """The split of a trace whose ``split_by`` value is ``value``."""
        lo, hi = self.split_at
        return "train" if value < lo else "val" if value < hi else "test"

    def spec(self) -> Any:
        """The Rust-side spec (built per process; not picklable)."""
        return _core.GenSpec(
            list(self.schedule),
            self.max_steps,
            self.max_size,
            self.max_examples_per_trace,
            self.redex_only,
            self.whole_trace,
            self.chunk_traces,
            list(self.quotas),
            self.zstd_level,
            list(self.size_quotas),
            list(self.depth_quotas),
            self.named,
            self.tokens,
            self.strategy,
            self.split_by,
            (self.split_at[0], self.split_at[1]) if self.split_at else (0, 0),
            self.curriculum,
        )

    def cell_shares(self) -> dict[str, float]:
        """The share of records each cell is configured to get, by stratum name ``cell=SIZExDEPTH``."""
        total = sum(w for _, _, w in self.schedule)
        return {f"cell={s}x{d}": w / total for s, d, w in self.schedule}
