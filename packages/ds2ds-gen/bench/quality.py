"""ds2ds-gen quality benchmark: do linked documents matter, and are generated documents on topic?

Trains the small model on the synthetic corpus (or takes ``--checkpoint``), then measures:

1. **Teacher-forced, on a fresh corpus** (``SynthConfig(seed=1)``, entities the model never
   saw, so nothing can be memorized): every article is packed after the documents it links to
   (as training packs them) and scored twice, with the cross-doc-link mask and with the
   doc-causal mask. With doc-causal the article's tokens see exactly what they would see with no
   linked document in the pack at all (positions restart per document), so the pair is "with vs
   without the linked documents in context".

   * NLL per token of the articles, and of the restated-fact tokens alone;
   * fact accuracy: at each place where an article restates a fact of a linked article
     (``synth.fact_slots``: a city's river after a person's link to the city, ...), greedy
     decoding must reproduce the fact exactly.

   The same figures on a sample of the training corpus show what memorization gives.
2. **Free generation** of roots of every article type (novel titles of a fresh world), half of
   them with a prompt that links to a novel entity so that an auxiliary document is generated,
   the other half a bare ``# Title``; temperature 0.8, top-k 40, corpus lookups, fallback
   generation on. Counted over generated documents: the share whose first sentence names their
   own title, link precision (a link's target is a corpus title), slot-type accuracy (a link in
   a typed slot, "born in [..]", "works for the [..]", ... points to a corpus title of that
   type), and fact consistency: a fact restated after a link agrees with the linked document
   (corpus or generated), with and without cross-document attention (same seeds).

Every check here is written with Python ``re`` on the decoded text and the world's own tables,
sharing no code with the generator's link detector. Confidence intervals: paired bootstrap
(2,000 resamples) over items, 95%.

    python packages/ds2ds-gen/bench/quality.py --work /tmp/ds2q --steps 600 --json quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ds2ds_gen.corpus import DocumentCorpus, pretokenize
from ds2ds_gen.linked_doc_generator import generate_linked
from ds2ds_gen.masks import DocSpan
from ds2ds_gen.model import DS2DSModel, load_checkpoint
from ds2ds_gen.synth import SynthConfig, entity_kinds, fact_slots, make_entities, root_prompts, write_synthetic_corpus
from ds2ds_gen.tokenizer import EOS_TOKEN_ID, get_encoding, heading_encoder
from ds2ds_gen.train import TrainConfig, train

enc = get_encoding()
_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\[\]]*)\)")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _ci(diffs: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    if len(diffs) == 0:
        return (float("nan"), float("nan"))
    idx = rng.integers(0, len(diffs), size=(n, len(diffs)))
    means = diffs[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# ---- 1. teacher-forced -------------------------------------------------------------------------
def _pack(
    articles: dict[str, str], title: str, prefix: str, encode: Any, max_links: int = 2
) -> tuple[list[int], list[DocSpan], int]:
    """Tokens and spans of ``[linked docs..., prefix of title]``; the last span is the article
    (``encode``: the model's tokenization, headings included)."""
    tok = encode(prefix)
    closes: dict[str, int] = {}
    pos = 0
    text = ""
    # the token index of each link's closing ")": decode prefix tokens until the link is complete
    ends = [m.end() for m in _LINK.finditer(prefix)]
    targets = [m.group(2) for m in _LINK.finditer(prefix)]
    for i, t in enumerate(tok):
        text += enc.decode([t])
        while pos < len(ends) and len(text) >= ends[pos]:
            closes.setdefault(targets[pos], i)
            pos += 1
    group = [t for t in closes if t in articles and t != title][:max_links]
    tokens: list[int] = []
    spans = []
    for i, t in enumerate(group):
        d = encode(articles[t]) + [EOS_TOKEN_ID]
        spans.append(DocSpan(i, len(tokens), len(d)))
        tokens += d
    spans.append(DocSpan(len(group), len(tokens), len(tok), tuple((i, closes[t]) for i, t in enumerate(group))))
    return tokens + tok, spans, len(group)


def _greedy(model: DS2DSModel, tokens: list[int], spans: list[DocSpan], mask: str, n: int) -> str:
    out: list[int] = []
    for _ in range(n):
        last = spans[-1]
        sp = spans[:-1] + [DocSpan(last.doc_id, last.start, last.length + len(out), last.links)]
        lg = model.forward_inference(torch.tensor(tokens + out), sp, mask_type=mask)[0, -1]  # type: ignore[arg-type]
        out.append(int(lg.argmax()))
    return enc.decode(out)


def teacher_forced(model: DS2DSModel, cfg: SynthConfig, max_articles: int, rng: random.Random) -> dict[str, Any]:
    articles = make_entities(cfg)
    slots = fact_slots(cfg)
    encode = heading_encoder(enc.encode_ordinary, model.cfg.headings)
    # A fresh corpus may hold BPE tokens the training corpus never had: the model gives them
    # probability 0 (logit bias -1e4), so they are left out of the NLL and a fact that needs one
    # is counted apart (it cannot be produced with or without links).
    ids = model.active_ids
    active = set(ids.tolist()) if ids is not None else None
    skipped = {"nll_tokens": 0, "facts": 0}
    titles = sorted({s.article for s in slots})
    rng.shuffle(titles)
    titles = set(titles[:max_articles])
    nll: dict[str, list[float]] = {"cross_doc_link": [], "doc_causal": []}
    fact_nll: dict[str, list[float]] = {"cross_doc_link": [], "doc_causal": []}
    hits: dict[str, list[int]] = {"cross_doc_link": [], "doc_causal": []}
    per_fact: dict[str, dict[str, list[int]]] = {}
    for title in sorted(titles):
        text = articles[title]
        tokens, spans, _ = _pack(articles, title, text, encode)
        a = spans[-1]
        tgt = torch.tensor(tokens[a.start + 1 : a.start + a.length])
        # which of the article's tokens belong to restated facts (by character span)
        starts = np.cumsum([0] + [len(enc.decode([t])) for t in tokens[a.start : a.start + a.length]])
        fact_tok = np.zeros(a.length, dtype=bool)
        for s in (s for s in slots if s.article == title):
            fact_tok |= (starts[:-1] < s.offset + len(s.value)) & (starts[1:] > s.offset)
        known = np.array([active is None or int(t) in active for t in tgt.tolist()])
        skipped["nll_tokens"] += int((~known).sum())
        for mask in nll:
            lg = model.forward_inference(torch.tensor(tokens), spans, mask_type=mask)[0]  # type: ignore[arg-type]
            lp = F.log_softmax(lg[a.start : a.start + a.length - 1].float(), -1)
            tok_nll = -lp.gather(1, tgt[:, None])[:, 0].numpy()
            nll[mask].append(float(tok_nll[known].mean()))
            sel = fact_tok[1:] & known
            fact_nll[mask].append(float(tok_nll[sel].mean()) if sel.any() else float("nan"))
        for s in (s for s in slots if s.article == title):
            if active is not None and not set(enc.encode_ordinary(s.value)) <= active:
                skipped["facts"] += 1
                continue
            p_tokens, p_spans, n_linked = _pack(articles, title, text[: s.offset], encode)
            n_val = len(enc.encode_ordinary(s.value)) + 1
            for mask in hits:
                ok = int(_greedy(model, p_tokens, p_spans, mask, n_val).startswith(s.value))
                hits[mask].append(ok)
                per_fact.setdefault(s.fact, {"cross_doc_link": [], "doc_causal": []})[mask].append(ok)
    nrng = np.random.default_rng(0)
    acc = {m: float(np.mean(v)) for m, v in hits.items()}
    diff = np.array(hits["cross_doc_link"]) - np.array(hits["doc_causal"])
    ndiff = np.array(nll["doc_causal"]) - np.array(nll["cross_doc_link"])
    fn = {m: np.array(v) for m, v in fact_nll.items()}
    ok = ~np.isnan(fn["doc_causal"])
    fdiff = fn["doc_causal"][ok] - fn["cross_doc_link"][ok]
    return {
        "corpus_seed": cfg.seed,
        "articles": len(titles),
        "fact_slots": len(diff),
        "skipped_unknown_tokens": skipped,
        "nll_per_token": {m: float(np.mean(v)) for m, v in nll.items()},
        "nll_gain": float(ndiff.mean()),
        "nll_gain_ci95": _ci(ndiff, nrng),
        "fact_token_nll": {m: float(v[ok].mean()) for m, v in fn.items()},
        "fact_token_nll_gain": float(fdiff.mean()),
        "fact_token_nll_gain_ci95": _ci(fdiff, nrng),
        "fact_accuracy": acc,
        "fact_accuracy_gain": float(diff.mean()),
        "fact_accuracy_gain_ci95": _ci(diff.astype(float), nrng),
        "fact_accuracy_by_fact": {
            f: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(d["doc_causal"])} for f, d in sorted(per_fact.items())
        },
    }


# ---- 2. free generation ------------------------------------------------------------------------
_SLOT_KIND = [  # the text right before a link -> the kind its target must have
    (re.compile(r"(?:city|river) in $"), "region"),
    (re.compile(r"born in $"), "city"),
    (re.compile(r"based in $"), "city"),
    (re.compile(r"capital is $"), "city"),
    (re.compile(r"flows past $|flows past \[[^\]]*\]\([^)]*\) and $"), "city"),
    (re.compile(r"lies on the $"), "river"),
    (re.compile(r"works for the $"), "organization"),
    (re.compile(r"founded by $"), "person"),
]
# a fact restated right after a link: (pattern on the text after the link, fact names)
_RESTATED = [
    (re.compile(r"^, an? (\w+) city on the (River \w+)"), ("trait", "river")),
    (re.compile(r"^, based in (\w+)"), ("org_city",)),
    (re.compile(r"^, a city in (\w+)"), ("region",)),
    (re.compile(r"^, an? (\w+),"), ("job",)),
    (re.compile(r"^, a region known for (\w+)"), ("trade",)),
    (re.compile(r"^, which rises in the (\w+) Hills"), ("source",)),
]
# the same facts as the linked document states them about itself
_OWN = {
    "trait": re.compile(r"^# .+\n\n.+? is an? (\w+) city in"),
    "river": re.compile(r"It lies on the \[(River \w+)\]"),
    "org_city": re.compile(r"is a company based in \[([^\]]+)\]"),
    "region": re.compile(r"is an? \w+ city in \[([^\]]+)\]"),
    "job": re.compile(r"is an? (\w+) born in"),
    "trade": re.compile(r"is a region known for (\w+)\."),
    "source": re.compile(r"rises in the (\w+) Hills"),
}


def _first_sentence(body: str) -> str:
    m = re.search(r"\.(\s|$)", body)
    return body[: m.start()] if m else body


def free_generation(
    model: DS2DSModel,
    corpus_dir: Path,
    per_kind: int,
    mask: str,
    link_targets: str = "auto",
    lead: str = "title",
    seed: int = 0,
) -> dict[str, Any]:
    kinds = entity_kinds(SynthConfig())
    titled = [0, 0]
    subject = [0]
    links = [0, 0]
    own_links = [0]
    slot = [0, 0]
    facts: list[int] = []
    docs = {"generated_roots": 0, "generated_aux": 0, "corpus_aux": 0}
    roots_by_kind: dict[str, int] = {}
    aux_by_root_kind: dict[str, int] = {}
    with DocumentCorpus(corpus_dir) as corpus:
        for i, (kind, _title, prompt) in enumerate(root_prompts(per_kind)):
            res = generate_linked(
                model,
                prompt=prompt,
                corpus=corpus,
                max_new_tokens=80,
                temperature=0.8,
                top_k=40,
                max_tokens_per_document=160,
                max_context_length=1024,
                max_auxiliary_documents=4,
                max_link_depth=2,
                seed=seed + i,
                mask_type=mask,
                link_targets=link_targets,
                lead=lead,
            )
            roots_by_kind[kind] = roots_by_kind.get(kind, 0) + 1
            texts = {}
            for d in res.get_all_documents():
                texts[d.title] = d.text if d.text is not None else enc.decode([int(x) for x in d.tokens if x != EOS_TOKEN_ID])
            for d in res.get_all_documents():
                text = texts[d.title].replace("<|endoftext|>", "")
                if d.source_kind != "generated":
                    docs["corpus_aux"] += 1
                    continue
                docs["generated_roots" if d.is_root else "generated_aux"] += 1
                if not d.is_root:
                    aux_by_root_kind[kind] = aux_by_root_kind.get(kind, 0) + 1
                head = f"# {d.title}\n\n"
                own = prompt if d.is_root else head
                if not text.startswith(head):
                    continue
                body = text[len(head) :]
                if own == head:  # a bare heading: the first sentence is the model's (after the lead, if any)
                    # the documented lead rule: such a document starts its body with its title
                    own = head + d.title if lead == "title" else head
                    first = _first_sentence(body)
                    titled[1] += 1
                    # the whole title as a word sequence ("Sha" inside "Shasteam" does not count)
                    titled[0] += re.search(rf"(?<!\w){re.escape(d.title)}(?!\w)", first) is not None
                    # stricter: the sentence is about the title: it is its subject with a
                    # predicate ("Title is a ...", "The Title is an ..."); with the lead the
                    # model has to continue the given title into such a sentence
                    subject[0] += re.match(rf"(?:The )?{re.escape(d.title)} (?:is|was) an? \w", first) is not None
                for m in _LINK.finditer(text):
                    if m.end() <= len(own):
                        continue  # written by the prompt (or the lead), not generated
                    target = m.group(2).strip()
                    links[1] += 1
                    links[0] += target in kinds
                    own_links[0] += target in kinds or target in texts  # or a document of this sample
                    before = text[: m.start()]
                    for pat, want in _SLOT_KIND:
                        if pat.search(before[-60:]):
                            slot[1] += 1
                            slot[0] += kinds.get(target) == want
                            break
                    src = texts.get(target)
                    after = text[m.end() :]
                    for pat, names in _RESTATED:
                        r = pat.match(after)
                        if r is None:
                            continue
                        for name, val in zip(names, r.groups()):
                            o = _OWN[name].search(src) if src else None
                            facts.append(int(o is not None and o.group(1) == val))
                        break
    return {
        "mask_type": mask,
        "link_targets": link_targets,
        "roots": sum(roots_by_kind.values()),
        "roots_by_kind": roots_by_kind,
        "documents": docs,
        "generated_aux_by_root_kind": aux_by_root_kind,
        "title_in_first_sentence": titled[0] / max(1, titled[1]),
        "title_docs": titled[1],
        "title_is_subject": subject[0] / max(1, titled[1]),
        "link_precision": links[0] / max(1, links[1]),
        "link_precision_incl_own_docs": own_links[0] / max(1, links[1]),
        "lead": lead,
        "links": links[1],
        "slot_type_accuracy": slot[0] / max(1, slot[1]),
        "slot_links": slot[1],
        "fact_consistency": float(np.mean(facts)) if facts else float("nan"),
        "facts": facts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for the corpus and the checkpoint")
    ap.add_argument("--checkpoint", type=Path, help="use this checkpoint instead of training one")
    ap.add_argument("--steps", type=int, default=TrainConfig().steps)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--articles", type=int, default=160, help="articles per teacher-forced evaluation")
    ap.add_argument("--per-kind", type=int, default=8, help="free-generation roots per article type")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {"load_average_start": os.getloadavg(), "threads": args.threads, "torch": torch.__version__}
    md, corpus_dir = args.work / "md", args.work / "corpus"
    if not (corpus_dir / "index.json").is_file():
        write_synthetic_corpus(md, SynthConfig())
        pretokenize(md, corpus_dir)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = args.work / f"ckpt{args.steps}"
        if not (ckpt / "model.pt").is_file():
            t0, c0 = time.perf_counter(), _cpu_s()
            summary = train(corpus_dir, ckpt, TrainConfig(steps=args.steps, threads=args.threads))
            out["train_wall_s"], out["train_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
            out["train_summary"] = summary
    model, extra = load_checkpoint(ckpt)
    out["checkpoint"], out["training"] = str(ckpt), extra.get("training", {})
    rng = random.Random(0)
    t0, c0 = time.perf_counter(), _cpu_s()
    out["teacher_forced_fresh"] = teacher_forced(model, SynthConfig(seed=1), args.articles, rng)
    out["teacher_forced_train"] = teacher_forced(model, SynthConfig(), args.articles // 2, rng)
    # the default link targets (auto = known: corpus titles + the sample's own documents), then
    # the model's own targets (free) and corpus titles only
    runs = {"cross_doc_link": ("cross_doc_link", "auto", "title"), "doc_causal": ("doc_causal", "auto", "title")}
    runs["cross_doc_link+free_targets"] = ("cross_doc_link", "free", "title")
    runs["cross_doc_link+corpus_targets"] = ("cross_doc_link", "corpus", "title")
    runs["cross_doc_link+no_lead"] = ("cross_doc_link", "auto", "none")  # the model writes the title itself
    out["free_generation"] = {k: free_generation(model, corpus_dir, args.per_kind, m, t, ld) for k, (m, t, ld) in runs.items()}
    nrng = np.random.default_rng(1)
    out["free_fact_consistency_ci95"] = {k: _ci(np.array(v["facts"], float), nrng) for k, v in out["free_generation"].items()}
    out["eval_wall_s"], out["eval_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    out["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))

    print(f"ds2ds-gen quality  checkpoint={ckpt}  load {out['load_average_start'][0]:.1f} -> {out['load_average_end'][0]:.1f}")
    if "train_wall_s" in out:
        s = out["train_summary"]
        print(
            f"training: {s['steps']} steps, {out['train_wall_s']:.0f} s wall, {out['train_cpu_s']:.0f} CPU s, loss {s['first_loss']:.2f} -> {s['final_loss']:.2f}"
        )
    print(f"{'figure':58s} {'cross-doc-link':>15s} {'doc-causal':>11s} {'gain [95% CI]':>22s}")
    for key, label in (("teacher_forced_fresh", "fresh corpus"), ("teacher_forced_train", "training corpus")):
        r = out[key]
        rows = (
            (f"NLL/token, {label} ({r['articles']} articles)", r["nll_per_token"], r["nll_gain"], r["nll_gain_ci95"], ".3f"),
            (
                f"NLL/token of restated facts, {label}",
                r["fact_token_nll"],
                r["fact_token_nll_gain"],
                r["fact_token_nll_gain_ci95"],
                ".3f",
            ),
            (
                f"fact accuracy (greedy), {label} ({r['fact_slots']} facts)",
                r["fact_accuracy"],
                r["fact_accuracy_gain"],
                r["fact_accuracy_gain_ci95"],
                "+.1%",
            ),
        )
        for name, v, gain, (lo, hi), fmt in rows:
            vf, sign = fmt.replace("+", ""), "+" if "+" in fmt else ""
            print(f"{name:58s} {v['cross_doc_link']:15{vf}} {v['doc_causal']:11{vf}} {gain:{sign}8{vf}} [{lo:{fmt}}, {hi:{fmt}}]")
    fg = out["free_generation"]
    g = fg["cross_doc_link"]
    print(f"free generation: {g['roots']} roots {g['roots_by_kind']}")
    names = list(fg)
    print(f"{'(generated documents; links; typed slots; restated facts)':58s} " + " ".join(f"{x:>16s}" for x in names))
    for k, label, n in (
        ("title_in_first_sentence", "first sentence names the title", "title_docs"),
        ("title_is_subject", "first sentence is '[The] Title is a ...'", "title_docs"),
        ("link_precision", "link precision (target is a corpus title)", "links"),
        ("link_precision_incl_own_docs", "... or a document of the sample", "links"),
        ("slot_type_accuracy", "slot-type accuracy", "slot_links"),
        ("fact_consistency", "restated fact agrees with the linked doc", "facts"),
    ):
        cnt = " / ".join(str(len(r[n]) if isinstance(r[n], list) else r[n]) for r in fg.values())
        print(f"{label + ' (' + cnt + ')':58s} " + " ".join(f"{fg[x][k]:16.1%}" for x in names))
    for x, r in fg.items():
        lo, hi = out["free_fact_consistency_ci95"][x]
        print(f"  {x}: documents {r['documents']}, fact consistency 95% CI [{lo:.1%}, {hi:.1%}]")
    print(f"evaluation: {out['eval_wall_s']:.0f} s wall, {out['eval_cpu_s']:.0f} CPU s")


if __name__ == "__main__":
    main()
