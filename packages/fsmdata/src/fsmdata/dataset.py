"""``FsmDataset``: a PyTorch dataset with on-the-fly next-token, state and class labels.

Needs the ``fsmdata[torch]`` extra; torch is imported only when a dataset is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import FsmError
from .fsm import FSM

__all__ = ["FsmDataset", "collate"]

IGNORE = -100


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("FsmDataset needs PyTorch: pip install 'fsmdata[torch]'") from e
    return torch


class FsmDataset:
    """Token sequences of an FSM with per-position labels, computed when an item is read.

    ``samples``: token id lists, or records with a ``tokens`` field.  With ``split`` only
    the samples whose token sequence hashes into that split (``datacore.split_of``) are
    kept.  Item ``i`` is a dict of tensors, positions ``0..L-1``:

    * ``tokens``: the input symbols;
    * ``next_tokens``: ``tokens[1:] + [eos_id]`` (``eos_id`` defaults to ``n_symbols``);
    * ``states``: the state after reading ``tokens[:j+1]``;
    * ``classes``: class id (0 A, 1 I, 2 R; see ``task``) of that state, i.e. of the prefix so far;
    * ``valid_next``: ``(L, n_symbols + 1)`` bool, symbols after which acceptance is still
      reachable, plus EOS (last column) where the prefix is accepted;
    * ``label``: the class id of the whole sequence; ``length``.

    ``task``: ``ternary`` (labels 0 A, 1 I, 2 R) or ``binary`` (0 A, 2 R: a prefix that is
    not accepted is a reject, so ``premature`` records are labelled 2).  Default: the
    ``meta.task`` of the records when they all carry the same one, else ``ternary``.
    """

    def __init__(
        self,
        fsm: FSM,
        samples: Iterable[Sequence[int] | dict[str, Any]],
        split: str | None = None,
        eos_id: int | None = None,
        *,
        split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
        salt: str = "",
        task: str | None = None,
    ) -> None:
        from datacore import split_of

        samples = list(samples)
        if task is None:
            tasks = {s.get("meta", {}).get("task") for s in samples if isinstance(s, dict)}
            task = tasks.pop() if len(tasks) == 1 and None not in tasks else "ternary"
        if task not in ("ternary", "binary"):
            raise FsmError(f"task: must be ternary or binary, got {task!r}")
        self.task = task
        self.torch = _torch()
        self.fsm = fsm
        self.eos_id = fsm.n_symbols if eos_id is None else int(eos_id)
        # binary: I (live, not accepted) folds into R, per position and for the label
        cls = fsm.state_class.astype(np.int64)
        self._state_class = np.where(cls == 1, 2, cls) if task == "binary" else cls
        seqs = [list(s["tokens"]) if isinstance(s, dict) else list(s) for s in samples]
        if split is not None:
            seqs = [s for s in seqs if split_of(s, split_ratios, salt) == split]
        self.samples = seqs
        self.split = split

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        torch, fsm = self.torch, self.fsm
        toks = np.asarray(self.samples[i], dtype=np.int64)
        L = len(toks)
        states = np.array(fsm.trace(toks.tolist())[1:], dtype=np.int64)
        nxt = np.append(toks[1:], self.eos_id) if L else toks
        valid = np.zeros((L, fsm.n_symbols + 1), dtype=bool)
        if L:
            valid[:, :-1] = fsm.live[fsm.table[states]]
            valid[:, -1] = fsm.accepting[states]
        end = states[-1] if L else fsm.start
        return {
            "tokens": torch.from_numpy(toks),
            "next_tokens": torch.from_numpy(nxt.astype(np.int64)),
            "states": torch.from_numpy(states),
            "classes": torch.from_numpy(self._state_class[states]),
            "valid_next": torch.from_numpy(valid),
            "label": torch.tensor(int(self._state_class[end])),
            "length": torch.tensor(L),
        }


def collate(batch: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    """Pad a list of items to the longest (batch first).

    ``tokens`` pad with ``pad_id``; ``next_tokens`` and ``classes`` with -100 (ignored by
    cross-entropy); ``states`` with -1; ``valid_next`` with False; adds ``attention_mask``.
    """
    torch = _torch()
    B = len(batch)
    T = max((int(b["length"]) for b in batch), default=0)
    V = batch[0]["valid_next"].shape[1] if B else 0
    out = {
        "tokens": torch.full((B, T), pad_id, dtype=torch.long),
        "next_tokens": torch.full((B, T), IGNORE, dtype=torch.long),
        "states": torch.full((B, T), -1, dtype=torch.long),
        "classes": torch.full((B, T), IGNORE, dtype=torch.long),
        "valid_next": torch.zeros((B, T, V), dtype=torch.bool),
        "attention_mask": torch.zeros((B, T), dtype=torch.bool),
    }
    for i, b in enumerate(batch):
        n = int(b["length"])
        for k in ("tokens", "next_tokens", "states", "classes", "valid_next"):
            out[k][i, :n] = b[k]
        out["attention_mask"][i, :n] = True
    out["label"] = torch.stack([b["label"] for b in batch]) if B else torch.zeros(0, dtype=torch.long)
    out["length"] = torch.stack([b["length"] for b in batch]) if B else torch.zeros(0, dtype=torch.long)
    return out
