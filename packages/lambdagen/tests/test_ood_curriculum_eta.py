"""Out-of-distribution splits, curriculum order and eta reduction (issue 15, New 3 and 5)."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from datacore import DatacoreError, build_dataset
from lambdagen import LambdaConfig, LambdaGenerator, ScheduleError, generate, sample_terms, trace_many
from lambdagen.cli import main

SMALL = {"schedule": "16x6,24x8,30x9:2", "max_steps": 30, "max_size": 120, "chunk_traces": 8}


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    """These tests read the data files; datacore's report.html (matplotlib, most of a small
    run's time) is tested in datacore."""
    monkeypatch.setattr("datacore.report.render_report", lambda *a, **k: "<html></html>")


# ---- an oracle written here: terms as tuples, de Bruijn, no code shared with the core ----
# ("v", i) | ("l", body) | ("a", f, x)


def _parse(s: str) -> Any:
    pos = 0

    def term() -> Any:
        nonlocal pos
        c = s[pos]
        if c == "\\":
            pos += 1
            return ("l", term())
        if c == "(":
            pos += 1
            f = term()
            assert s[pos] == " "
            pos += 1
            x = term()
            assert s[pos] == ")"
            pos += 1
            return ("a", f, x)
        j = pos
        while pos < len(s) and s[pos].isdigit():
            pos += 1
        return ("v", int(s[j:pos]))

    t = term()
    assert pos == len(s)
    return t


def _show(t: Any) -> str:
    if t[0] == "v":
        return str(t[1])
    if t[0] == "l":
        return "\\" + _show(t[1])
    return f"({_show(t[1])} {_show(t[2])})"


def _size(t: Any) -> int:
    return 1 if t[0] == "v" else 1 + _size(t[1]) if t[0] == "l" else 1 + _size(t[1]) + _size(t[2])


def _depth(t: Any) -> int:
    return 0 if t[0] == "v" else 1 + _depth(t[1]) if t[0] == "l" else 1 + max(_depth(t[1]), _depth(t[2]))


def _shift(t: Any, d: int, c: int = 0) -> Any:
    if t[0] == "v":
        return ("v", t[1] + d) if t[1] >= c else t
    if t[0] == "l":
        return ("l", _shift(t[1], d, c + 1))
    return ("a", _shift(t[1], d, c), _shift(t[2], d, c))


def _subst(t: Any, j: int, s: Any) -> Any:
    if t[0] == "v":
        return s if t[1] == j else t
    if t[0] == "l":
        return ("l", _subst(t[1], j + 1, _shift(s, 1)))
    return ("a", _subst(t[1], j, s), _subst(t[2], j, s))


def _free(t: Any, j: int) -> bool:
    if t[0] == "v":
        return t[1] == j
    if t[0] == "l":
        return _free(t[1], j + 1)
    return _free(t[1], j) or _free(t[2], j)


ETA_STEPS = [0]  # eta (not beta) steps the oracle took, to show the test covers them


def _eta_step(t: Any) -> Any | None:
    """One leftmost-outermost beta-or-eta step (None at a beta-eta normal form)."""
    if t[0] == "a" and t[1][0] == "l":
        return _shift(_subst(t[1][1], 0, _shift(t[2], 1)), -1)
    if t[0] == "l" and t[1][0] == "a" and t[1][2] == ("v", 0) and not _free(t[1][1], 0):
        ETA_STEPS[0] += 1
        return _shift(t[1][1], -1)
    if t[0] == "l":
        b = _eta_step(t[1])
        return None if b is None else ("l", b)
    if t[0] == "a":
        f = _eta_step(t[1])
        if f is not None:
            return ("a", f, t[2])
        x = _eta_step(t[2])
        return None if x is None else ("a", t[1], x)
    return None


def _eta_trace(text: str, max_steps: int, max_size: int) -> tuple[list[str], str]:
    t = _parse(text)
    terms, seen = [text], {text}
    while True:
        n = _eta_step(t)
        if n is None:
            return terms, "normal_form"
        if len(terms) - 1 >= max_steps:
            return terms, "step_cap"
        if _size(n) > max_size:
            return terms, "size_cap"
        t = n
        terms.append(_show(t))
        if terms[-1] in seen:
            return terms, "cycle"
        seen.add(terms[-1])


def _random_eta_terms(n: int, rng: random.Random) -> list[str]:
    """Random closed terms, biased to hold eta redexes (\\(M 0) with 0 not free in M)."""

    def gen(k: int, budget: int) -> Any:
        r = rng.random()
        if budget <= 1 or (k > 0 and r < 0.25):
            return ("v", rng.randrange(k)) if k else ("l", ("v", 0))
        if r < 0.45:
            return ("l", gen(k + 1, budget - 1))
        if r < 0.6:
            return ("l", ("a", _shift(gen(k, budget - 3), 1), ("v", 0)))
        a = rng.randrange(1, budget)
        return ("a", gen(k, a), gen(k, budget - a))

    return [_show(gen(0, rng.randrange(3, 40))) for _ in range(n)]


# ---- eta ----


def test_normal_eta_agrees_with_an_independent_reducer():
    rng = random.Random(5)
    terms = _random_eta_terms(1500, rng)
    for size, depth in ((8, 5), (14, 7), (22, 9), (30, 10)):
        terms += sample_terms(size, depth, 150, seed=size)
    got = trace_many(terms, 25, 150, strategy="normal_eta")
    ETA_STEPS[0] = 0
    for text, (last, n, status, _redexes) in zip(terms, got):
        want, want_status = _eta_trace(text, 25, 150)
        assert (last, n, status) == (want[-1], len(want) - 1, want_status), text
    assert ETA_STEPS[0] > 300  # many eta steps were checked, not only beta ones


def test_eta_dataset_records_are_beta_eta_steps(tmp_path):
    cfg = LambdaConfig(strategy="normal_eta", **SMALL)
    generate(tmp_path / "e", 600, seed=3, config=cfg, workers=1, executor="inline", shard_size=600, compress=None)
    recs = [
        orjson.loads(x)
        for s in ("train", "val", "test")
        for p in (tmp_path / "e" / s).glob("part-*")
        for x in p.read_bytes().splitlines()
    ]
    assert len(recs) == 600
    for r in recs:
        assert r["meta"]["strategy"] == "normal_eta"
        assert _show(_eta_step(_parse(r["input"]))) == r["target"]


# ---- out-of-distribution splits ----


class _PythonPath:
    """LambdaGenerator without its Rust file writer: datacore splits generate_shard's records."""

    def __init__(self, gen: LambdaGenerator) -> None:
        self._gen = gen
        self.name, self.version = gen.name, gen.version

    def __getattr__(self, name: str) -> Any:
        if name in ("write_shard_files", "_gen"):
            raise AttributeError(name)
        return getattr(self._gen, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"_gen": self._gen}

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.__init__(st["_gen"])  # type: ignore[misc]

    def generate_shard(self, task: Any, telemetry: Any) -> Any:
        for rec in self._gen.generate_shard(task, telemetry):
            del rec["meta"]["start"]
            yield rec


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/part-*"))}


@pytest.mark.parametrize(
    ("split_by", "split_at", "field"),
    [("steps", (4, 9), "total_steps"), ("size", (20, 30), "start_size"), ("depth", (6, 9), "start_depth")],
)
def test_ood_split_rust_writer_equals_the_python_path(tmp_path, split_by, split_at, field):
    cfg = LambdaConfig(split_by=split_by, split_at=split_at, **SMALL)
    gen = LambdaGenerator(cfg, run_seed=9)
    kw: dict[str, Any] = {"executor": "inline", "shard_size": 500, "compress": None, "progress": False}
    build_dataset(gen, tmp_path / "rust", 1500, 9, **kw)
    build_dataset(_PythonPath(gen), tmp_path / "py", 1500, 9, **kw)
    rust, py = _files(tmp_path / "rust"), _files(tmp_path / "py")
    assert rust == py  # byte for byte, per split and shard
    lo, hi = split_at
    split_of_trace: dict[str, str] = {}
    per_split: dict[str, int] = defaultdict(int)
    for name, data in rust.items():
        split = name.split("/")[0]
        for line in data.splitlines():
            r = orjson.loads(line)
            m = r["meta"]
            v = m[field]
            assert split == ("train" if v < lo else "val" if v < hi else "test")
            # a trace (the split key) never in two splits
            assert split_of_trace.setdefault(m["trace_id"], split) == split
            if m["step"] == 0 and field != "total_steps":
                t = _parse(r["input"])
                assert v == (_size(t) if field == "start_size" else _depth(t))
            per_split[split] += 1
    assert all(per_split[s] > 0 for s in ("train", "val", "test")), dict(per_split)
    man = orjson.loads((tmp_path / "rust" / "dataset.json").read_bytes())
    blob = orjson.dumps(man).decode()
    assert "split_rule" in blob and f"< {lo}: train" in blob


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"split_by": "steps"}, "split_at must be (val_from, test_from)"),
        ({"split_by": "steps", "split_at": (9, 4)}, "0 < val_from <= test_from"),
        ({"split_by": "width", "split_at": (1, 2)}, "split_by must be one of steps, size, depth"),
        ({"split_at": (1, 2)}, "needs split_by"),
    ],
)
def test_bad_split_is_refused(kwargs, msg):
    with pytest.raises(ScheduleError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        LambdaConfig(**kwargs)


def test_cli_split_and_curriculum(tmp_path):
    from click.testing import CliRunner

    args = ["generate", "--out", str(tmp_path / "c"), "-n", "400", "--shard-size", "200", "--schedule", "16x6,24x8"]
    args += ["--max-steps", "30", "--max-size", "120", "--compress", "none", "--quiet", "--workers", "1"]
    res = CliRunner().invoke(main, [*args, "--split", "steps:5,10", "--curriculum"])
    assert res.exit_code == 0, res.output
    bad = CliRunner().invoke(main, [*args[:2], str(tmp_path / "d"), *args[3:], "--split", "steps:5"])
    assert bad.exit_code != 0 and "--split 'steps:5'" in bad.output and "Traceback" not in bad.output
    both = CliRunner().invoke(
        main, [*args[:2], str(tmp_path / "e"), *args[3:], "--split", "steps:5,9", "--split-ratios", "0.5,0.25,0.25"]
    )
    assert both.exit_code != 0 and "cannot be combined with --split-ratios" in both.output
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


# ---- curriculum ----


def test_curriculum_orders_records_across_and_within_shards(tmp_path, dataset_bytes):
    cfg = LambdaConfig(curriculum=True, **SMALL)
    kw: dict[str, Any] = {"seed": 4, "config": cfg, "shard_size": 400, "compress": None}
    generate(tmp_path / "a", 2000, workers=1, executor="inline", **kw)
    generate(tmp_path / "b", 2000, workers=2, executor="process", **kw)
    assert dataset_bytes(tmp_path / "a") == dataset_bytes(tmp_path / "b")
    rank = {"16x6": 0, "24x8": 1, "30x9": 2}
    cells: dict[str, int] = defaultdict(int)
    for split in ("train", "val", "test"):
        prev_rank = -1
        for part in sorted((tmp_path / "a" / split).glob("part-*")):
            prev = (-1, -1)
            traces_done: set[str] = set()
            cur = None
            for line in part.read_bytes().splitlines():
                m = orjson.loads(line)["meta"]
                key = (rank[m["cell"]], m["total_steps"])
                assert key >= prev, (part.name, key, prev)  # within a shard: (cell, length)
                assert key[0] >= prev_rank  # across shards: by cell
                prev = key
                if m["trace_id"] != cur:  # a trace's records are contiguous
                    assert m["trace_id"] not in traces_done
                    traces_done.add(m["trace_id"])
                    cur = m["trace_id"]
                cells[m["cell"]] += 1
            prev_rank = max(prev_rank, prev[0])
    assert sum(cells.values()) == 2000
    for cell, share in (("16x6", 0.25), ("24x8", 0.25), ("30x9", 0.5)):
        assert abs(cells[cell] / 2000 - share) <= 0.02


def test_curriculum_through_the_plain_datacore_runner(tmp_path, dataset_bytes):
    # datacore's ShardTask carries the run's n (total): no records= needed, and the dataset is the
    # one lambdagen.generate makes (which no longer passes records= either)
    cfg = LambdaConfig(curriculum=True, **SMALL)
    gen = LambdaGenerator(cfg)
    build_dataset(gen, tmp_path / "x", 900, 4, executor="inline", shard_size=300, compress=None, progress=False)
    generate(tmp_path / "g", 900, seed=4, config=cfg, shard_size=300, compress=None, workers=1, executor="inline")
    assert dataset_bytes(tmp_path / "x") == dataset_bytes(tmp_path / "g")
    ranks = []
    for part in sorted((tmp_path / "x" / "train").glob("part-*")):
        cells = {"16x6": 0, "24x8": 1, "30x9": 2}
        ranks.append([cells[orjson.loads(line)["meta"]["cell"]] for line in part.read_bytes().splitlines()])
    assert ranks[0][0] == 0 and ranks[-1][-1] == 2
    assert all(a[-1] <= b[0] for a, b in zip(ranks, ranks[1:]))
    # records= still accepted when it is the run's n; a different one is refused in one line
    build_dataset(
        attrs.evolve(gen, records=900), tmp_path / "r", 900, 4, executor="inline", shard_size=300, compress=None, progress=False
    )
    assert dataset_bytes(tmp_path / "r") == dataset_bytes(tmp_path / "x")
    with pytest.raises(DatacoreError, match=r"records=500\) does not match the run's record count 900"):
        build_dataset(attrs.evolve(gen, records=500), tmp_path / "y", 900, 4, executor="inline", shard_size=300, progress=False)
    assert not any((tmp_path / "y").glob("*/part-*"))


def test_curriculum_needs_the_run_size_on_a_hand_made_task():
    from datacore import ShardTask, Telemetry

    gen = LambdaGenerator(LambdaConfig(curriculum=True, **SMALL))
    with pytest.raises(DatacoreError, match="curriculum needs the run's record count"):
        list(gen.generate_shard(ShardTask(index=0, seed=1, count=100, start=0), Telemetry()))


def test_small_cell_permutation_is_keyed_by_the_run_seed(tmp_path, read_dataset):
    # without run_seed=, the run's seed (ShardTask.run_seed) keys the small cells' permutations,
    # so two seeds do not draw the same start terms
    cfg = LambdaConfig(schedule="12x6", max_steps=20, redex_only=False, whole_trace=True)
    starts = []
    for seed in (1, 2):
        build_dataset(
            LambdaGenerator(cfg),
            tmp_path / str(seed),
            200,
            seed,
            executor="inline",
            shard_size=100,
            compress=None,
            progress=False,
        )
        starts.append({r["input"] for recs in read_dataset(tmp_path / str(seed)).values() for r in recs})
    assert len(starts[0]) == len(starts[1]) == 200
    assert len(starts[0] & starts[1]) < 50


def test_num_shards_is_no_longer_part_of_the_config():
    d = LambdaGenerator(LambdaConfig(**SMALL), run_seed=3).config_dict()
    assert "num_shards" not in d and d["split_rule"] is None and "records" not in d


# ---- telemetry (counted as integers in the core, flushed once per shard) ----


def _steps_bucket(n: int) -> str:
    if n < 2:
        return str(n)
    lo = 1 << (n.bit_length() - 1)
    return "128+" if lo >= 128 else f"{lo}-{2 * lo - 1}"


@pytest.mark.parametrize(
    "extra",
    [{"tokens": True, "quotas": "1-2:0.25,3-6:0.25,7-15:0.25,16-:0.25"}, {"size_quotas": "2-14:0.5,15-:0.5"}, {}],
)
def test_histograms_equal_a_count_over_the_records(extra):
    from datacore import ShardTask, Telemetry

    cfg = LambdaConfig(**{**SMALL, "max_steps": 40, **extra})
    tel = Telemetry()
    recs = list(LambdaGenerator(cfg).generate_shard(ShardTask(index=1, seed=7, count=3000, start=3000, shards=3), tel))
    want: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in recs:
        m = r["meta"]
        lo = m["size"] // 20 * 20
        want["input_size"][f"{lo:04}-{lo + 19:04}"] += 1
        want["input_depth"][f"{m['depth']:02}"] += 1
        want["redex_depth"][f"{m['redex_depth']:02}"] += 1
        want["redex_lambdas"][f"{m['redex_lambdas']:02}"] += 1
        want["examples_by_trace_steps"][_steps_bucket(m["total_steps"])] += 1
        want["strata"][f"cell={m['cell']}"] += 1
        if "input_ids" in r:
            want["input_tokens"][f"{len(r['input_ids']):05}"] += 1
            want["target_tokens"][f"{len(r['target_ids']):05}"] += 1
    for hist, counts in want.items():
        got = {k: v for k, v in tel.histograms[hist].items() if not (hist == "strata" and not k.startswith("cell="))}
        assert got == dict(counts), hist
    assert ("input_tokens" in tel.histograms) == bool(extra.get("tokens"))
