"""``TokenFsmGenerator``: datasets of token-id sequences of a real tokenizer (datacore generator).

The plan, walks, classes, reject subtypes and coverage are those of :class:`FsmGenerator` on
the token-class DFA (:attr:`fsmdata.tokenfsm.TokenFSM.fsm`); each record's class symbols are
then replaced by concrete token ids, drawn uniformly within the class from a stream derived
from the shard's seed.  Records:

``{"class", "length" (tokens), "meta": {..., "token_classes": [...]}, "reject_subtype",
"text" (decoded, UTF-8 with U+FFFD for bytes that are not valid UTF-8), "tokens": [ids]}``;
``meta.text_hex`` carries the exact bytes when the text is not valid UTF-8.  The split key is
the decoded bytes, so one text never lands in two splits, whichever tokens spell it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from datacore import ReportSection, ShardTask, Telemetry

from ._contract import Target
from .config import GenConfig
from .datagen import FsmGenerator
from .errors import FsmError
from .tokenfsm import TokenFSM

__all__ = ["TokenFsmGenerator"]


class TokenFsmGenerator:
    """Shards of labelled token-id sequences whose decoded text ``tfsm`` accepts, is a prefix
    of, or rejects (see the module doc).  ``cfg`` lengths count tokens."""

    name = "fsmdata"

    def __init__(self, tfsm: TokenFSM, cfg: GenConfig) -> None:
        if cfg.mode == "uniform":
            # class sequences are uniform there, token sequences would not be (classes differ in size)
            raise FsmError(
                "mode 'uniform' is not offered with a tokenizer (it would be uniform over token classes, "
                "not over token sequences); use mode 'coverage'"
            )
        self.tfsm = tfsm
        self.cfg = cfg
        self._inner = FsmGenerator(tfsm.fsm, cfg)
        self.version = self._inner.version

    def __getstate__(self) -> dict[str, Any]:
        return {"tfsm": self.tfsm.to_dict(), "cfg": self.cfg.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(TokenFSM.from_dict(state["tfsm"]), GenConfig.from_dict(state["cfg"]))  # type: ignore[misc]

    @property
    def inner(self) -> FsmGenerator:
        """The generator over token classes."""
        return self._inner

    def setup(self) -> None:
        """Build the engine (once per worker)."""
        self._inner.setup()

    def targets(self, n: int) -> list[Target]:
        """The class-level plan's strata (lengths in tokens)."""
        return self._inner.targets(n)

    def config_dict(self) -> dict[str, Any]:
        """The class FSM, the generation settings and the vocabulary's identity (its digest)."""
        v = self.tfsm.vocab
        h = hashlib.sha256()
        for t in v.tokens:
            h.update(b"\x00" if t is None else b"\x01" + len(t).to_bytes(4, "little") + t)
        d = self._inner.config_dict()
        d["tokenizer"] = {
            "name": v.name,
            "tokens": len(v),
            "eos_id": v.eos_id,
            "sha256": h.hexdigest(),
            "class_of_sha256": hashlib.sha256(self.tfsm.class_of.astype("<i4").tobytes()).hexdigest(),
        }
        d["char_fsm"] = self.tfsm.char_fsm.to_dict()
        return d

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterable[dict[str, Any]]:
        """The class-level records of the shard with concrete token ids and decoded text."""
        rng = np.random.default_rng([task.seed % (1 << 63), 0x70C])
        tf = self.tfsm
        for rec in self._inner.generate_shard(task, telemetry):
            classes = rec["tokens"]
            ids = tf.concretize(classes, rng).tolist()
            raw = tf.decode(ids)
            meta = dict(rec["meta"])
            meta["token_classes"] = classes
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                meta["text_hex"] = raw.hex()
            yield {**rec, "meta": meta, "text": text, "tokens": ids}

    def split_key(self, record: dict[str, Any]) -> bytes | list[int]:
        """The decoded bytes: one text never lands in two splits.  With ``split='length'``
        the token ids (a split is then a function of the token count; the same text spelled
        with a different number of tokens may sit in another split)."""
        if self.cfg.split == "length":
            return list(record["tokens"])
        return self.tfsm.decode(record["tokens"])

    def split_of(self, record: dict[str, Any]) -> str | None:
        """The length band's split with ``split='length'`` (token count), else None."""
        return self._inner.split_of(record)

    def dataset_files(self, telemetry: Telemetry) -> dict[str, bytes]:
        """``fsm.json`` (the character automaton) and ``token_fsm.json`` (class FSM, char FSM,
        token classes, vocabulary), listed and hashed in the manifest."""
        return {
            "fsm.json": (self.tfsm.char_fsm.to_json() + "\n").encode("utf-8"),
            "token_fsm.json": (json.dumps(self.tfsm.to_dict()) + "\n").encode("utf-8"),
        }

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """The class-level report (edges are state x token class)."""
        return self._inner.report_sections(telemetry)
