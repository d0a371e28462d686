"""Generation settings: :class:`GenConfig` (attrs, frozen, validated at construction)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import FsmError

try:  # datacore contract v2
    from datacore import ConfigError as _DatacoreConfigError
except ImportError:  # pragma: no cover - older datacore
    _DatacoreConfigError = FsmError  # type: ignore[misc,assignment]

__all__ = ["MIX_PRIORITIES", "REJECT_SUBTYPES", "TASK_CLASSES", "GenConfig", "parse_mix"]

TASK_CLASSES = {"ternary": ("A", "I", "R"), "binary": ("A", "R")}
#: Reject subtypes; ``premature`` exists only in the binary task (in ternary it is class I).
REJECT_SUBTYPES = ("illegal_step", "overrun", "premature", "wrong_alt", "dead_suffix")
#: How the reject mix and the length balance of R are reconciled (see GenConfig).
MIX_PRIORITIES = ("exact", "subtype", "length")
L_LIMIT = 4096


class ConfigError(FsmError, _DatacoreConfigError):
    """A bad GenConfig value: names the field, the value and what is allowed (a
    :class:`datacore.ConfigError` too)."""


def _mix(value: Any, field: str, allowed: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field}: expected a mapping of {'/'.join(allowed)} to weights, got {value!r}")
    out = {}
    for k, v in value.items():
        if k not in allowed:
            raise ConfigError(f"{field}: unknown key {k!r}; allowed: {', '.join(allowed)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{field}: weight of {k!r} must be a finite number >= 0, got {v!r}")
        out[k] = float(v)
    if sum(out.values()) <= 0:
        raise ConfigError(f"{field}: weights must not all be 0, got {dict(value)!r}")
    total = sum(out.values())
    return {k: out.get(k, 0.0) / total for k in allowed}


def parse_mix(text: str, field: str) -> dict[str, float]:
    """Parse ``"A=0.5,I=0.25,R=0.25"`` (the CLI form of a mix) into a dict."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[k.strip()] = float(v)
        except ValueError:
            raise ConfigError(f"{field}: expected KEY=WEIGHT pairs separated by commas, got {part!r}") from None
    return out


def _positive_int(name: str, lo: int, hi: int | None = None):
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
            bound = f">= {lo}" + (f" and <= {hi}" if hi is not None else "")
            raise ConfigError(f"{name}: must be an integer {bound}, got {value!r}")

    return check


def _one_of(name: str, allowed: tuple[str, ...]):
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value not in allowed:
            raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")

    return check


@attrs.frozen
class GenConfig:
    """How to sample a corpus from an FSM.

    * ``L_min``/``L_max``: string length range (uniform over the lengths a class can have);
    * ``task``: ``ternary`` (classes A, I, R) or ``binary`` (A, R; I strings count as R);
    * ``p_class``: share of each class (None: equal over the classes the FSM can produce in
      the length range; a class given a share that no string can have is an error); normalized;
    * ``reject_mix``: share of each reject subtype among R strings (None: equal over the
      crafted subtypes of the task that the FSM allows, ``dead_suffix`` only when no other
      exists; ``premature`` only in binary); normalized; a subtype given a share that the
      FSM cannot produce in the length range is an error;
    * ``mix_priority``: how an explicit ``reject_mix`` and an even spread of R over its
      lengths are reconciled when a subtype exists only at some lengths: ``exact`` (both
      must hold, else the plan is refused), ``subtype`` (subtype shares exact, R lengths
      bend), ``length`` (R lengths even, subtype shares bend); None = ``exact`` with an
      explicit mix, ``length`` without.  The residual is reported per stratum;
    * ``attempts_per_sample``: vectorized tries per ``wrong_alt`` before the exact
      constructor takes over;
    * ``mode``: ``coverage`` (feasible walks steered by coverage quotas) or ``uniform``
      (exactly uniform over the strings of each (class, length) cell);
    * ``batch_size``: samples walked together (vectorized); quotas update between batches;
    * ``edge_target``/``state_target``/``boost``: coverage targets of the QuotaManager;
    * ``beam``: beam width of the forward generator;
    * ``balance``: coverage balance target of the batch engine (coverage mode): edges
      contained in more than ``least / balance`` samples are avoided by part of each batch
      (:meth:`~fsmdata.quotas.QuotaManager.palettes`); 0 turns that off (inverse-sqrt
      weights only);
    * ``unique``: every record of a (class, length, subtype) cell is a distinct string,
      over the whole dataset (every shard): strings are unranked from exact counts without
      replacement (uniform within the cell; coverage steering off); a cell asked for more
      strings than exist is refused; ``wrong_alt`` is not countable and is refused;
    * ``unique_seed``: which distinct strings ``unique`` picks (the CLI passes ``--seed``);
    * ``split``: ``hash`` (datacore's hash of the token ids) or ``length`` (out-of-distribution
      lengths: train holds the short strings, val longer ones, test the longest; bands from
      ``split_lengths=(train_max, val_max)`` or :meth:`split_bounds`' default 80/10/10 cut).
    """

    L_min: int = attrs.field(default=1, validator=_positive_int("L_min", 0, L_LIMIT))
    L_max: int = attrs.field(default=16, validator=_positive_int("L_max", 0, L_LIMIT))
    task: str = attrs.field(default="ternary", validator=_one_of("task", tuple(TASK_CLASSES)))
    p_class: dict[str, float] | None = attrs.field(default=None)
    reject_mix: dict[str, float] | None = attrs.field(default=None)
    attempts_per_sample: int = attrs.field(default=8, validator=_positive_int("attempts_per_sample", 1, 1000))
    mode: str = attrs.field(default="coverage", validator=_one_of("mode", ("coverage", "uniform")))
    batch_size: int = attrs.field(default=8192, validator=_positive_int("batch_size", 1, 1 << 20))
    edge_target: int = attrs.field(default=0, validator=_positive_int("edge_target", 0))
    state_target: int = attrs.field(default=0, validator=_positive_int("state_target", 0))
    boost: float = attrs.field(default=4.0)
    beam: int = attrs.field(default=16, validator=_positive_int("beam", 1, 4096))
    balance: float = attrs.field(default=0.65)
    mix_priority: str | None = attrs.field(default=None)
    unique: bool = attrs.field(default=False)
    unique_seed: int = attrs.field(default=0, validator=_positive_int("unique_seed", 0))
    split: str = attrs.field(default="hash", validator=_one_of("split", ("hash", "length")))
    split_lengths: tuple[int, int] | None = attrs.field(
        default=None,
        converter=lambda v: None if v is None else tuple(v),  # type: ignore[misc]
    )

    def __attrs_post_init__(self) -> None:
        if self.L_max < self.L_min:
            raise ConfigError(f"L_max: must be >= L_min ({self.L_min}), got {self.L_max}")
        if self.split == "length":
            b = self.split_bounds()
            if not b["train"][0] <= b["train"][1] < b["val"][0] <= b["val"][1] < b["test"][0] <= b["test"][1]:
                raise ConfigError(
                    f"split_lengths: need L_min <= train_max < val_max < L_max ({self.L_min}..{self.L_max}), "
                    f"got {self.split_lengths}" + ("" if self.split_lengths else " (the range needs at least 3 lengths)")
                )
        elif self.split_lengths is not None:
            raise ConfigError("split_lengths: only with split='length'")
        if not isinstance(self.boost, (int, float)) or not math.isfinite(self.boost) or self.boost < 1:
            raise ConfigError(f"boost: must be a number >= 1, got {self.boost!r}")
        if not isinstance(self.balance, (int, float)) or isinstance(self.balance, bool) or not 0 <= self.balance < 1:
            raise ConfigError(f"balance: must be a number in [0, 1), got {self.balance!r}")
        if self.mix_priority is not None and self.mix_priority not in MIX_PRIORITIES:
            raise ConfigError(f"mix_priority: must be one of {', '.join(MIX_PRIORITIES)}, got {self.mix_priority!r}")
        if not isinstance(self.unique, bool):
            raise ConfigError(f"unique: must be true or false, got {self.unique!r}")
        # Given mixes are normalized; None stays None (= equal shares over what is feasible).
        if self.p_class is not None:
            object.__setattr__(self, "p_class", _mix(self.p_class, "p_class", TASK_CLASSES[self.task]))
        if self.reject_mix is not None:
            if self.task == "ternary" and self.reject_mix.get("premature", 0):
                raise ConfigError(
                    "reject_mix: 'premature' strings are class I in the ternary task; set premature=0 or use task='binary'"
                )
            object.__setattr__(self, "reject_mix", _mix(self.reject_mix, "reject_mix", REJECT_SUBTYPES))

    def split_bounds(self) -> dict[str, tuple[int, int]]:
        """With ``split='length'``: the length band of each split, ``{"train": (lo, hi), ...}``.

        ``split_lengths=(train_max, val_max)``; by default the lengths ``L_min..L_max`` are cut
        80/10/10 (at least one length each): train holds the shortest strings, test the longest.
        """
        if self.split_lengths is not None:
            if len(self.split_lengths) != 2 or not all(isinstance(x, int) for x in self.split_lengths):
                raise ConfigError(f"split_lengths: must be two integers (train_max, val_max), got {self.split_lengths!r}")
            a, b = self.split_lengths
        else:
            m = self.L_max - self.L_min + 1
            n_test = max(1, round(0.1 * m))
            n_val = max(1, round(0.1 * m))
            a = self.L_max - n_test - n_val
            b = self.L_max - n_test
        return {"train": (self.L_min, a), "val": (a + 1, b), "test": (b + 1, self.L_max)}

    def class_weights(self) -> dict[str, float]:
        """Normalized class shares (equal when ``p_class`` is None)."""
        classes = TASK_CLASSES[self.task]
        return dict(self.p_class) if self.p_class is not None else {c: 1.0 / len(classes) for c in classes}

    def priority(self) -> str:
        """The effective ``mix_priority``."""
        if self.mix_priority is not None:
            return self.mix_priority
        return "exact" if self.reject_mix is not None else "length"

    def valid_subtypes(self) -> tuple[str, ...]:
        """Reject subtypes that exist in this task."""
        return REJECT_SUBTYPES if self.task == "binary" else tuple(s for s in REJECT_SUBTYPES if s != "premature")

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the task."""
        return TASK_CLASSES[self.task]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (normalized mixes); the split fields only when not the default hash
        split (so configs made before they existed keep their identity)."""
        d = attrs.asdict(self)
        if self.split == "hash":
            del d["split"], d["split_lengths"]
        elif d["split_lengths"] is not None:
            d["split_lengths"] = list(d["split_lengths"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown GenConfig field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**d)
