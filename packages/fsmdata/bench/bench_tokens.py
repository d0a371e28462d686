"""Token-level FSMs: fsmdata against outlines-core, same patterns, same GPT-2 vocabulary, same run.

    python packages/fsmdata/bench/bench_tokens.py [--repeat 5] [--json PATH]

For each pattern: compile time of both (median of ``--repeat`` runs, wall and CPU; the
vocabulary is prepared once for each library outside the timing, as outlines-core's
``Vocabulary`` object is), and whether the valid-next-token masks agree.  Masks are compared on
every state outlines-core's index reaches: both automata are walked together from their start
states over outlines-core's allowed tokens; a state pair is checked over the whole vocabulary
(EOS included) and every next-state pair must stay consistent.  Where the masks differ, each
differing cell is judged by an oracle that shares no code with either (decode the bytes, Python
``regex`` partial matching: can the text still be completed into a match?).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import regex
from fsmdata.tokenfsm import compile_token_fsm
from fsmdata.vocab import Vocabulary, gpt2_vocabulary

# ASCII patterns without '.' or negated classes: the alphabet is the same for both libraries.
PATTERNS = [
    r"[0-9]{3}-[0-9]{4}",
    r"x(a|b)*y(c|d)z",
    r"(GET|POST|PUT) /[a-z]+(/[a-z]+)*",
    r"[a-z]+@[a-z]+\.(com|org|net)",
    r"\{\"name\": \"[a-z]{1,12}\", \"age\": [0-9]{1,3}\}",
    r"(true|false|null|-?[0-9]+(\.[0-9]+)?)",
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}",
    r"é+ü?",
]


def _timed(fn, repeat: int):
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return out, statistics.median(walls), statistics.median(cpus)


def _viable(pattern: str, data: bytes, alphabet: set[str]) -> bool:
    """Oracle: can ``data`` be extended into bytes whose text fully matches?  An incomplete
    UTF-8 tail is completed by every alphabet character that starts with it."""
    for cut in range(0, 4):
        head, tail = (data, b"") if cut == 0 else (data[:-cut], data[-cut:])
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not tail:
            return regex.fullmatch(pattern, text, partial=True) is not None
        for ch in alphabet:
            enc = ch.encode("utf-8")
            if len(enc) > len(tail) and enc.startswith(tail) and regex.fullmatch(pattern, text + ch, partial=True):
                return True
        return False
    return False


def compare(pattern: str, vocab: Vocabulary, ov, repeat: int) -> dict:
    import outlines_core as oc

    idx, oc_wall, oc_cpu = _timed(lambda: oc.Index(pattern, ov), repeat)
    tf, fs_wall, fs_cpu = _timed(lambda: compile_token_fsm(pattern, vocab), repeat)
    T = tf.token_table()
    live, acc = tf.fsm.live, tf.fsm.accepting
    eos = vocab.eos_id
    s0 = idx.get_initial_state()
    pair = {s0: tf.fsm.start}
    prefix: dict[int, list[int]] = {s0: []}
    todo = [s0]
    cells = diff_cells = inconsistent = 0
    judged = {"fsmdata_right": 0, "outlines_right": 0}
    alphabet = set(tf.char_fsm.alphabet)
    while todo:
        s = todo.pop()
        q = pair[s]
        theirs = np.zeros(len(vocab), dtype=bool)
        allowed = idx.get_allowed_tokens(s) or []
        theirs[allowed] = True
        mine = live[T[q]].copy()
        mine[eos] = acc[q]
        cells += len(vocab)
        for t in np.flatnonzero(mine != theirs).tolist():
            diff_cells += 1
            data = vocab.decode(prefix[s] + [t]) if t != eos else None
            truth = bool(acc[q]) if t == eos else _viable(pattern, data, alphabet)
            judged["fsmdata_right" if truth == bool(mine[t]) else "outlines_right"] += 1
        for t in allowed:
            if t == eos:
                continue
            s2, q2 = idx.get_next_state(s, t), int(T[q, t])
            if s2 in pair:
                inconsistent += pair[s2] != q2
            else:
                pair[s2], prefix[s2] = q2, prefix[s] + [t]
                todo.append(s2)
    return {
        "pattern": pattern,
        "fsmdata_states": tf.fsm.n_states - 1,
        "token_classes": tf.fsm.n_symbols,
        "outlines_states": len(pair),
        "mask_cells": cells,
        "masks_equal": diff_cells == 0 and inconsistent == 0,
        "differing_cells": diff_cells,
        "inconsistent_steps": inconsistent,
        **judged,
        "outlines_compile_s": oc_wall,
        "outlines_compile_cpu_s": oc_cpu,
        "fsmdata_compile_s": fs_wall,
        "fsmdata_compile_cpu_s": fs_cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import outlines_core as oc

    vocab = gpt2_vocabulary()
    t = time.perf_counter()
    vocab.padded  # noqa: B018 - fsmdata's one-off vocabulary preparation (byte matrix)
    prep_fs = time.perf_counter() - t
    t = time.perf_counter()
    by_bytes: dict[bytes, list[int]] = {}
    for i, tok in enumerate(vocab.tokens):
        if tok is not None:
            by_bytes.setdefault(tok, []).append(i)
    ov = oc.Vocabulary(vocab.eos_id, by_bytes)
    prep_oc = time.perf_counter() - t
    rows = [compare(p, vocab, ov, args.repeat) for p in PATTERNS]
    print(
        f"GPT-2 vocabulary, {len(vocab):,} tokens; vocabulary preparation: fsmdata {prep_fs:.3f} s, outlines-core {prep_oc:.3f} s"
    )
    hdr = f"{'pattern':44} {'states':>6} {'cls':>4} {'oc st':>5} {'masks equal':>11} {'diff':>5} {'fs ok':>5} {'oc ok':>5} {'oc s':>7} {'fs s':>7} {'oc cpu':>7} {'fs cpu':>7}"
    print(hdr)
    for r in rows:
        print(
            f"{r['pattern'][:44]:44} {r['fsmdata_states']:>6} {r['token_classes']:>4} {r['outlines_states']:>5} "
            f"{str(r['masks_equal']):>11} {r['differing_cells']:>5} {r['fsmdata_right']:>5} {r['outlines_right']:>5} "
            f"{r['outlines_compile_s']:7.3f} {r['fsmdata_compile_s']:7.3f} {r['outlines_compile_cpu_s']:7.3f} {r['fsmdata_compile_cpu_s']:7.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"prep_fsmdata_s": prep_fs, "prep_outlines_s": prep_oc, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
