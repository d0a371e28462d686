"""Reject subtypes: their definitions, as checks on a finished string.

With ``states = fsm.trace(tokens)``, ``L = len(tokens)`` and R the task's reject class
(ternary: the string ends in the sink; binary: it is not accepted):

* ``illegal_step``: every state before the last step is live and the last step enters the
  sink (one undefined step, then stop);
* ``overrun``: an ``illegal_step`` of length >= 2 whose prefix ``tokens[:-1]`` is accepted
  and whose last symbol repeats the one before it (``tokens[-1] == tokens[-2]``): the string
  ran past a complete match by one more repetition of its last symbol;
* ``premature`` (binary task only): no step is undefined and the string stops where an
  accepting state is still reachable but not reached (ternary calls this class ``I``);
* ``wrong_alt``: a near miss: for some position ``k >= L // 2`` (a late branch) every step
  up to and including ``k`` is defined, and replacing ``tokens[k]`` by another symbol gives
  an accepted string of the same length; the string itself is rejected (``R`` of the
  task).  In the binary task every step of the string is defined (it ends live, not
  accepted); in ternary it necessarily runs into the sink after ``k``;
* ``dead_suffix``: the sink is entered before the last symbol (``states[L - 1]`` is dead).
"""

from __future__ import annotations

from collections.abc import Sequence

from .fsm import FSM

__all__ = ["SUBTYPE_NAMES", "describe_reject", "reject_subtype_holds"]

SUBTYPE_NAMES = ("illegal_step", "overrun", "premature", "wrong_alt", "dead_suffix")


def _is_reject(fsm: FSM, end: int, task: str) -> bool:
    return not fsm.accepting[end] if task == "binary" else not fsm.live[end]


def reject_subtype_holds(
    fsm: FSM, tokens: Sequence[int], subtype: str, task: str = "ternary", branch_pos: int | None = None
) -> bool:
    """True if ``tokens`` is a reject of ``task`` and meets the definition of ``subtype``."""
    ids = fsm.encode(list(tokens), strict=False)
    states = fsm.trace(ids)
    L = len(ids)
    if not _is_reject(fsm, states[-1], task):
        return False
    if subtype in ("illegal_step", "overrun"):
        if L == 0 or not all(fsm.live[q] for q in states[:L]) or fsm.live[states[L]]:
            return False
        if subtype == "illegal_step":
            return True
        return L >= 2 and bool(fsm.accepting[states[L - 1]]) and ids[L - 1] == ids[L - 2]
    if subtype == "premature":
        return task == "binary" and bool(fsm.live[states[L]]) and not fsm.accepting[states[L]]
    if subtype == "dead_suffix":
        return L >= 1 and not fsm.live[states[L - 1]]
    if subtype == "wrong_alt":
        if task == "binary" and not fsm.live[states[L]]:
            return False
        positions = [branch_pos] if branch_pos is not None else range(L // 2, L)
        for k in positions:
            if k is None or not L // 2 <= k < L or not all(fsm.live[q] for q in states[: k + 2]):
                continue
            for b in range(fsm.n_symbols):
                if b != ids[k] and fsm.accepts(ids[:k] + [b] + ids[k + 1 :]):
                    return True
        return False
    raise ValueError(f"unknown reject subtype {subtype!r}; known: {', '.join(SUBTYPE_NAMES)}")


def describe_reject(fsm: FSM, tokens: Sequence[int], task: str = "ternary") -> str | None:
    """The subtype a reject string shows by its shape (None if it is not a reject).

    Used for strings not crafted as a subtype (uniform mode): ``premature`` (binary, live
    end), ``overrun`` / ``illegal_step`` (the sink is entered at the last step) or
    ``dead_suffix``.
    """
    tokens = fsm.encode(list(tokens), strict=False)
    states = fsm.trace(tokens)
    if not _is_reject(fsm, states[-1], task):
        return None
    if fsm.live[states[-1]]:
        return "premature"
    first_dead = next(i for i, q in enumerate(states) if not fsm.live[q])
    if first_dead == len(states) - 1 and first_dead > 0:
        rep = len(tokens) >= 2 and tokens[-1] == tokens[-2]
        return "overrun" if fsm.accepting[states[-2]] and rep else "illegal_step"
    return "dead_suffix"
