"""``FsmGenerator``: fsmdata as a datacore generator (``datacore.build_dataset`` makes the dataset)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xxhash
from datacore import ZSTD_LEVEL, ReportSection, ShardTask, Splitter, Telemetry

from ._contract import Target
from .config import GenConfig
from .engine import Engine
from .fsm import CLASS_NAMES, FSM
from .generator import batch_records, generate_corpus
from .split import length_split_rule, split_of_length

__all__ = ["FsmGenerator"]

_TOLERANCE = 0.02  # allowed absolute deviation of a delivered stratum share


@contextmanager
def _open_shard_file(path: Path, compress: str | None) -> Iterator[Any]:
    """A binary stream into ``path``, compressed as datacore's JsonlWriter does (gzip mtime=0, level 6; zstd)."""
    raw = open(path, "wb")  # noqa: SIM115 - closed below, after the compressor
    try:
        if compress == "gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                yield gz
        elif compress == "zst":
            import zstandard

            # as datacore.jsonl.zstd_compressor: frames carry a content checksum
            with zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).stream_writer(raw, closefd=False) as zw:
                yield zw
        elif compress is None:
            yield raw
        else:
            raise ValueError(f"unknown compression {compress!r}")
    finally:
        raw.close()


def _token_lists(n_symbols: int, tokens: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Per row of ``tokens``, its first ``lengths[i]`` ids joined by commas (``"3,0,12"``).

    Up to 10 symbols every id is one digit: a ``(rows, 2 * width)`` array of code points
    (digit, comma, ..., NUL padding) viewed as numpy unicode gives each row's string at once
    (as :func:`~fsmdata.generator.batch_texts` does).  Otherwise one gather over the batch's
    valid tokens builds all the ``"id,"`` pieces as one ASCII string, cut at the row ends."""
    B, width = tokens.shape
    if not width:
        return [""] * B
    if n_symbols <= 10:
        codes = np.empty((B, width, 2), dtype=np.uint32)
        codes[:, :, 0] = tokens
        codes[:, :, 0] += ord("0")
        codes[:, :, 1] = ord(",")
        flat2 = codes.reshape(B, 2 * width)
        flat2[np.arange(2 * width)[None, :] >= (2 * lengths - 1)[:, None]] = 0
        return flat2.view(f"<U{2 * width}").ravel().tolist()
    reps = [f"{i},".encode() for i in range(n_symbols)]
    size = np.array([len(r) for r in reps], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    table = np.frombuffer(b"".join(reps), dtype=np.uint8)
    flat = tokens[np.arange(width)[None, :] < lengths[:, None]]
    sz = size[flat]
    ends = np.cumsum(sz)
    idx = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - sz - first[flat], sz)
    text = table[idx].tobytes().decode("ascii")
    cut = np.concatenate([[0], ends])[np.cumsum(lengths)].tolist()
    out, s0 = [], 0
    for e in cut:
        out.append(text[s0 : max(e - 1, s0)])  # an empty row stays empty
        s0 = e
    return out


class FsmGenerator:
    """Makes shards of labelled strings of ``fsm`` by ``cfg``; the split key is the token sequence.

    The target plan is checked when the generator is made, so an impossible config fails
    before any shard runs.  Every shard is generated from its own seed with fresh coverage
    quotas, so the dataset does not depend on the worker count.  The engine (reach tables,
    pair tables, plan) is heavy state: it is not pickled; datacore's :meth:`setup` builds it
    once per worker, and :attr:`engine` builds it on first use if setup was not called.
    """

    name = "fsmdata"

    def __init__(self, fsm: FSM, cfg: GenConfig) -> None:
        from ._version import __version__

        self.version = __version__
        self.fsm = fsm
        self.cfg = cfg
        self._engine: Engine | None = Engine(fsm, cfg)

    def __getstate__(self) -> dict[str, Any]:
        # Ship the FSM as JSON (not its numpy internals) and no engine: setup() rebuilds it.
        return {"fsm": self.fsm.to_dict(), "cfg": self.cfg.to_dict(), "version": self.version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.version = state["version"]
        self.fsm = FSM.from_table(state["fsm"])
        self.cfg = GenConfig.from_dict(state["cfg"])
        self._engine = None

    def setup(self) -> None:
        """Build the engine (datacore calls this once per worker before the first shard)."""
        if self._engine is None:
            self._engine = Engine(self.fsm, self.cfg)

    @property
    def engine(self) -> Engine:
        """The vectorized engine (built on first use when :meth:`setup` was not called)."""
        self.setup()
        assert self._engine is not None
        return self._engine

    def targets(self, n: int) -> list[Target]:
        """The strata this generator promises for a run of ``n`` records: every planned
        (class, length) cell and every reject subtype, at the plan's shares
        (:attr:`~fsmdata.targets.TargetPlan.planned`; where ``mix_priority`` let one
        marginal bend, the residual against the request is in telemetry and the report).
        With ``unique`` a cell asked for more distinct strings than exist is refused here."""
        plan = self.engine.plan
        if self.cfg.unique:
            from .unique import check_capacity

            check_capacity(self.engine, n)
        return [Target(k, v, _TOLERANCE) for k, v in sorted(plan.planned.items())]

    def config_dict(self) -> dict[str, Any]:
        """Full config: the FSM (JSON table), the generation settings and, with a length split,
        the split rule and each split's planned class x length shares."""
        d: dict[str, Any] = {"fsm": self.fsm.to_dict(), "gen": self.cfg.to_dict()}
        if self.cfg.split == "length":
            d["split"] = length_split_rule(self.cfg, self.engine.plan.planned)
        return d

    def split_of(self, record: dict[str, Any]) -> str | None:
        """With ``split='length'`` the split of the record's length band; else None (datacore's
        hash split of :meth:`split_key`).  The length is that of the split key (the tokens),
        so one key never lands in two splits."""
        if self.cfg.split != "length":
            return None
        return split_of_length(len(record["tokens"]), self.cfg)

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterable[dict[str, Any]]:
        """Yield ``task.count`` records made from ``task.seed``; add the shard's report to ``telemetry``."""
        corpus = generate_corpus(
            self.fsm, self.cfg, task.count, seed=task.seed % (1 << 63), start=task.start, _engine=self.engine
        )
        corpus.report.to_telemetry(telemetry)
        telemetry.count("lp_shards", int(corpus.lp_used))
        yield from corpus.records()

    def write_shard_files(
        self, task: ShardTask, paths: dict[str, Path], splitter: Splitter, compress: str | None, telemetry: Telemetry
    ) -> dict[str, int]:
        """Write the shard's records (the same as :meth:`generate_shard`'s) into ``paths`` itself.

        The files are byte-identical to what datacore writes from :meth:`generate_shard`
        (``{"id": content_id(record), **record}`` per line, split by :meth:`split_key`), but
        each record is serialized once: its keys are already in sorted order, so its JSON is
        the canonical JSON that :func:`datacore.runner.content_id` hashes; the split keys are
        one little-endian buffer of the batch's tokens, split by ``Splitter.split_many``.
        """
        corpus = generate_corpus(
            self.fsm, self.cfg, task.count, seed=task.seed % (1 << 63), start=task.start, _engine=self.engine
        )
        corpus.report.to_telemetry(telemetry)
        telemetry.count("lp_shards", int(corpus.lp_used))
        counts = dict.fromkeys(paths, 0)
        band = (
            [split_of_length(L, self.cfg) if L >= self.cfg.L_min else "" for L in range(self.cfg.L_max + 1)]
            if self.cfg.split == "length"
            else None
        )
        with ExitStack() as stack:
            files = {s: stack.enter_context(_open_shard_file(p, compress)) for s, p in paths.items()}
            bufs: dict[str, list[bytes]] = {s: [] for s in paths}
            dumps, h128 = orjson.dumps, xxhash.xxh3_128_hexdigest
            offset = task.start
            for b in corpus.batches:
                valid = np.arange(b.tokens.shape[1])[None, :] < b.lengths[:, None]
                keys = b.tokens[valid].astype("<u4").tobytes()
                ends = (4 * np.cumsum(b.lengths)).tolist()
                bodies = (
                    self._bodies(b, offset)
                    if self._tok_table is not None
                    else [dumps(r) for r in batch_records(self.fsm, self.cfg, b, offset)]
                )
                offset += len(b)
                splits = [band[L] for L in b.lengths.tolist()] if band is not None else splitter.split_many(keys, ends)
                for body, split in zip(bodies, splits):
                    bufs[split].append(b'{"id":"' + h128(body).encode() + b'",' + body[1:] + b"\n")
                for s, buf in bufs.items():
                    if buf:
                        files[s].write(b"".join(buf))
                        counts[s] += len(buf)
                        buf.clear()
        return counts

    @property
    def _tok_table(self) -> dict[int, str] | None:
        """``str.translate`` table symbol -> ``"id,"`` when records can be formatted directly.

        Only for character FSMs whose symbols are printable ASCII other than ``"`` and ``\\``
        (their JSON is the character itself); None otherwise (records go through orjson)."""
        fsm = self.fsm
        if fsm.kind != "char" or not all(" " <= c <= "~" and c not in '"\\' for c in fsm.alphabet):
            return None
        return {ord(c): f"{i}," for i, c in enumerate(fsm.alphabet)}

    def _bodies(self, b: Any, offset: int = 0) -> list[bytes]:
        """Canonical JSON of each record of batch ``b``, formatted directly (see :attr:`_tok_table`).

        Byte-identical to ``orjson.dumps`` of :func:`~fsmdata.generator.batch_records`' dicts
        (tested); it skips building the dicts.  The ``tokens`` lists of the whole batch are
        made as one string by numpy (each symbol's ``"id,"`` gathered) and cut per record."""
        from .engine import PATHS
        from .generator import _SUBTYPE_LABELS, batch_row_fields, batch_texts

        assert self._tok_table is not None  # only called when the table exists (see write_shard_files)
        task = self.cfg.task
        subj = ["null" if x is None else f'"{x}"' for x in _SUBTYPE_LABELS]
        toks = _token_lists(self.fsm.n_symbols, b.tokens, b.lengths)
        out: list[bytes] = []
        append = out.append
        rows = zip(batch_texts(self.fsm, b.tokens, b.lengths), toks, batch_row_fields(b))
        for j, (text, tk, (L, c, sub, p, a, k)) in enumerate(rows, offset):
            cn = CLASS_NAMES[c]
            bp = f',"branch_pos":{k}' if k >= 0 else ""
            append(
                (
                    f'{{"class":"{cn}","length":{L},"meta":{{"attempts":{a}{bp},"index":{j},"path":"{PATHS[p]}",'
                    f'"target":{{"class":"{cn}","length":{L}}},"task":"{task}"}},"reject_subtype":{subj[sub]},'
                    f'"text":"{text}","tokens":[{tk}]}}'
                ).encode()
            )
        return out

    def split_key(self, record: dict[str, Any]) -> list[int]:
        """The token ids: one string never lands in two splits."""
        return record["tokens"]

    def dataset_files(self, telemetry: Telemetry) -> dict[str, bytes]:
        """``fsm.json``: the automaton every label comes from, and ``coverage.json``: the delivered
        least / median and, where it misses the bar, the LP bound and attainable share beside
        the delivered least share (:meth:`coverage_figures`); both listed and hashed in the manifest."""
        out = {"fsm.json": (self.fsm.to_json() + "\n").encode("utf-8")}
        cov = self.coverage_figures(telemetry)
        if cov:
            out["coverage.json"] = orjson.dumps(cov, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        return out

    def _edge_matrix(self, telemetry: Telemetry) -> np.ndarray | None:
        edges = telemetry.histograms.get("edge_coverage")
        if edges is None:
            return None
        m = np.zeros((self.fsm.n_states, self.fsm.n_symbols))
        for k, v in edges.items():
            q, a = (int(x) for x in k.split(","))
            m[q, a] = v
        return m

    def coverage_figures(self, telemetry: Telemetry) -> dict[str, Any]:
        """Coverage of the whole dataset (edge counts = records containing the edge):
        ``live_edges``, ``delivered_least_share``, ``delivered_min_over_median``, ``bar`` (0.5) and
        ``bar_met``, ``lp_shards`` (shards that missed the bar, made again steered to the LP flow:
        the rule is per shard); where some shard did, the LP figures of
        :func:`fsmdata.coverage.coverage_summary`: ``lp_bound`` (upper bound on the least
        walk-made edge share), ``lp_achievable`` (what the LP flow attains, the sampler's target),
        ``lp_delivered_least`` and ``lp_delivered_min_over_median`` (over the LP-coverable
        edges) and ``lp_tolerance`` (4.5 sigma of the attainable count)."""
        from .generator import LP_BAR

        m = self._edge_matrix(telemetry)
        samples = int(telemetry.counters.get("samples", 0))
        live = self.fsm.live_edges()
        if m is None or not samples or not live.any():
            return {}
        h = m[live]
        med = float(np.median(h))
        ratio = float(h.min() / med) if med > 0 else 0.0
        out: dict[str, Any] = {
            "live_edges": int(live.sum()),
            "delivered_least_share": float(h.min() / samples),
            "delivered_min_over_median": ratio,
            "bar": LP_BAR,
            "bar_met": ratio >= LP_BAR,
            "lp_shards": int(telemetry.counters.get("lp_shards", 0)),
        }
        cfg = self.cfg
        if out["lp_shards"] and cfg.mode == "coverage" and cfg.balance > 0 and not cfg.unique:
            from .coverage import coverage_summary

            lp = self.engine.lp
            if lp is not None:
                cs = coverage_summary(self.engine.plan, m, samples, lp)
                out.update({k: v for k, v in cs.items() if k.startswith("lp_")})
                out["lp_tolerance"] = float(4.5 * np.sqrt(lp.achievable / samples))
        return out

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Coverage heatmap (state x symbol), coverage summary and the class-by-length table."""
        from datacore import heatmap_svg, table_html

        fsm = self.fsm
        sections = []
        edges = telemetry.histograms.get("edge_coverage")
        if edges is not None:
            m = np.zeros((fsm.n_states, fsm.n_symbols))
            for k, v in edges.items():
                q, a = (int(x) for x in k.split(","))
                m[q, a] = v
            rows = [q for q in range(fsm.n_states) if q != fsm.sink][:48]
            cols = list(range(min(fsm.n_symbols, 64)))
            labels = [repr(fsm.alphabet[a])[1:-1] or " " for a in cols]
            note = "" if len(rows) == fsm.n_states - 1 and len(cols) == fsm.n_symbols else " (first 48 states / 64 symbols)"
            sections.append(
                ReportSection(
                    "Edge coverage (state x symbol)" + note,
                    heatmap_svg(np.log10(1 + m[np.ix_(rows, cols)]), rows, labels, "log10(1 + edge hits)", "log10(1 + hits)"),
                )
            )
            live = fsm.live_edges()
            h = m[live]
            samples_seen = int(telemetry.counters.get("samples", 0))
            if h.size and samples_seen:
                from .coverage import coverage_summary

                cs = coverage_summary(self.engine.plan, m, samples_seen)
                lpf = self.coverage_figures(telemetry)
                if "lp_bound" in lpf:
                    sections.append(
                        ReportSection(
                            "Coverage vs the LP bound (least / median below the bar)",
                            table_html(
                                [
                                    "LP bound: least edge share (upper bound)",
                                    "LP flow attains",
                                    "delivered least share",
                                    "tolerance",
                                    "LP flow least / median",
                                    "delivered least / median",
                                ],
                                [
                                    [
                                        f"{lpf['lp_bound']:.4f}",
                                        f"{lpf['lp_achievable']:.4f}",
                                        f"{lpf['lp_delivered_least']:.4f}",
                                        f"{lpf['lp_tolerance']:.4f}",
                                        f"{lpf['lp_achievable_min_over_median']:.3f}",
                                        f"{lpf['lp_delivered_min_over_median']:.3f}",
                                    ]
                                ],
                            ),
                        )
                    )
                if "least_edge_bound" in cs:
                    sections.append(
                        ReportSection(
                            "Coverage vs what the FSM allows",
                            table_html(
                                [
                                    "least edge: share of samples",
                                    "bound (most any sampler can reach)",
                                    "least edge share / its bound",
                                    "edges in no planned cell",
                                ],
                                [
                                    [
                                        f"{cs['least_edge_share']:.3f}",
                                        f"{cs['least_edge_bound']:.3f}",
                                        f"{cs['least_edge_vs_bound']:.3f}",
                                        cs["uncoverable_edges"],
                                    ]
                                ],
                            ),
                        )
                    )
            if h.size:
                med = float(np.median(h))
                sections.append(
                    ReportSection(
                        "Live-edge coverage",
                        table_html(
                            ["live edges", "hit", "least used", "median", "most used", "least / median"],
                            [
                                [
                                    int(h.size),
                                    int((h > 0).sum()),
                                    int(h.min()),
                                    med,
                                    int(h.max()),
                                    f"{h.min() / med:.3f}" if med else "-",
                                ]
                            ],
                        ),
                    )
                )
        cl = telemetry.histograms.get("class_length", {})
        if cl:
            lengths = sorted({int(k.split(":")[1]) for k in cl})
            classes = [c for c in CLASS_NAMES if any(k.startswith(c + ":") for k in cl)]
            rows_t = [
                [L] + [cl.get(f"{c}:{L}", 0) for c in classes] + [sum(cl.get(f"{c}:{L}", 0) for c in classes)] for L in lengths
            ]
            sections.append(ReportSection("Samples by class and length", table_html(["length", *classes, "total"], rows_t)))
        samples = telemetry.counters.get("samples", 0)
        if samples:
            sections.append(
                ReportSection(
                    "Retries",
                    table_html(
                        ["samples", "attempts", "retry rate", "wrong_alt fallbacks"],
                        [
                            [
                                int(samples),
                                int(telemetry.counters.get("attempts", 0)),
                                f"{telemetry.counters.get('retries', 0) / samples:.4f}",
                                int(telemetry.counters.get("wrong_alt_fallbacks", 0)),
                            ]
                        ],
                    ),
                )
            )
        return sections
