"""Command line of fsmdata: ``compile``, ``trace`` and ``generate``.

Every command is a thin layer over the Python API; user errors print one clear line
(plus, for regex errors, the pattern with a caret) and exit 1.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click
from datacore import CliGroup, GenerateOptions, generate_options, run_generate

from ._version import __version__
from .algebra import complement, difference, intersection, union
from .compile import build_fsm, compile_regex, compile_token_regex, regex_alphabet
from .config import GenConfig, parse_mix
from .errors import FsmError
from .fsm import FSM
from .regex_parser import parse_regex, parse_token_regex


def _vocab(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        return [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
    return [w for w in value.split(",") if w]


def _source_options(f: Any) -> Any:
    f = _algebra_options(f)
    f = click.option("--vocab", default=None, help="Token regex vocabulary: w1,w2,... or @FILE (one word a line).")(f)
    f = click.option("--tokens", "token_mode", is_flag=True, help="REGEX is a token-level regex over words.")(f)
    f = click.option(
        "--alphabet",
        default=None,
        help="Characters of the alphabet (default: the regex's own; printable ASCII for . and [^...]).",
    )(f)
    return f


_ALGEBRA = "fsmdata.algebra"


def _algebra_options(f: Any) -> Any:
    """--and / --or / --minus (repeatable regexes) and --not; kept in the click context for _fsm."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ops = {k: kwargs.pop(k) for k in ("and_", "or_", "minus", "not_")}
        click.get_current_context().meta[_ALGEBRA] = ops
        return f(*args, **kwargs)

    wrapper = click.option(
        "--not", "not_", is_flag=True, help="Complement the result (within the alphabet), after --and/--or/--minus."
    )(wrapper)
    wrapper = click.option("--minus", multiple=True, metavar="REGEX", help="Remove strings this regex accepts (repeatable).")(
        wrapper
    )
    wrapper = click.option("--or", "or_", multiple=True, metavar="REGEX", help="Add strings this regex accepts (repeatable).")(
        wrapper
    )
    wrapper = click.option(
        "--and", "and_", multiple=True, metavar="REGEX", help="Keep strings this regex also accepts (repeatable)."
    )(wrapper)
    return wrapper


def _fsm(regex: str | None, fsm_file: str | None, alphabet: str | None, token_mode: bool, vocab: str | None) -> FSM:
    """The FSM of the command: REGEX (or --fsm FILE), then ``((R & and...) | or...) - minus...``,
    then ``--not``; without --alphabet the operands share the union of their own alphabets."""
    ops = click.get_current_context().meta.get(_ALGEBRA) or {}
    operands = [*ops.get("and_", ()), *ops.get("or_", ()), *ops.get("minus", ())]
    if fsm_file is not None:
        if regex is not None:
            raise FsmError("give either a REGEX or --fsm FILE, not both")
        base = build_fsm(fsm_path=fsm_file)
    elif regex is None:
        raise FsmError("give a REGEX (or --fsm FILE)")
    if not operands and not ops.get("not_"):
        if fsm_file is not None:
            return base
        if token_mode:
            return build_fsm(token_regex=regex, vocab=_vocab(vocab))
        return build_fsm(regex, alphabet=alphabet)
    words = _vocab(vocab)
    if token_mode:

        def comp(p: str, al: Any) -> FSM:
            return compile_token_regex(p, al)

        own = (lambda p: regex_alphabet(parse_token_regex(p))) if words is None else None
    else:

        def comp(p: str, al: Any) -> FSM:
            return compile_regex(p, al)

        own = (lambda p: regex_alphabet(parse_regex(p))) if alphabet is None else None
    if own is not None:
        syms: set[str] = set(base.alphabet) if fsm_file is not None else set()
        for p in ([regex] if regex is not None else []) + operands:
            syms |= set(own(p))
        shared: Any = sorted(syms)
    else:
        shared = words if token_mode else alphabet
    result = base if fsm_file is not None else comp(regex, shared)  # type: ignore[arg-type]
    for p in ops.get("and_", ()):
        result = intersection(result, comp(p, shared))
    for p in ops.get("or_", ()):
        result = union(result, comp(p, shared))
    for p in ops.get("minus", ()):
        result = difference(result, comp(p, shared))
    if ops.get("not_"):
        result = complement(result)
    return result


def _split_lengths(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        a, b = (int(x) for x in value.split(","))
    except ValueError:
        raise FsmError(f"--split-lengths: expected TRAIN_MAX,VAL_MAX (two integers), got {value!r}") from None
    return a, b


def _tokenizer_option(f: Any) -> Any:
    return click.option(
        "--tokenizer",
        default=None,
        metavar="gpt2|PATH.json",
        help="Token-level FSM over a real vocabulary: 'gpt2' (offline) or a Hugging Face tokenizer.json; "
        "strings are token-id sequences whose decoded text the regex accepts / could still / cannot.",
    )(f)


def _token_fsm(fsm: FSM, tokenizer: str | None, token_mode: bool) -> Any:
    if tokenizer is None:
        return None
    if token_mode:
        raise FsmError("--tokenizer needs a character regex (drop --tokens)")
    from .tokenfsm import compile_token_fsm
    from .vocab import load_vocabulary

    return compile_token_fsm(fsm, load_vocabulary(tokenizer))


@click.group(
    cls=CliGroup, help="Regex -> minimal DFA -> balanced, coverage-driven datasets of accept / incomplete / reject strings."
)
@click.version_option(__version__, prog_name="fsmdata")
def main() -> None:
    """Entry point of the `fsmdata` command."""


@main.command("compile")
@click.argument("regex", required=False)
@click.option("--fsm", "fsm_file", default=None, help="Read the FSM from a JSON transition table instead.")
@_source_options
@click.option(
    "--format", "fmt", type=click.Choice(["summary", "json", "dot"]), default="summary", show_default=True, help="What to print."
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write the FSM as JSON here.")
@click.option("--dot", "dot_out", type=click.Path(dir_okay=False), default=None, help="Also write a Graphviz DOT picture here.")
@_tokenizer_option
def compile_cmd(
    regex: str | None,
    fsm_file: str | None,
    alphabet: str | None,
    token_mode: bool,
    vocab: str | None,
    fmt: str,
    json_out: str | None,
    dot_out: str | None,
    tokenizer: str | None,
) -> None:
    """Compile REGEX to a minimal DFA; print its states and edges (or JSON / DOT)."""
    fsm = _fsm(regex, fsm_file, alphabet, token_mode, vocab)
    tfsm = _token_fsm(fsm, tokenizer, token_mode)
    if tfsm is not None:  # the token-class DFA stands in for the character DFA
        fsm = tfsm.fsm
    if json_out:
        fsm.save(json_out)
    if dot_out:
        Path(dot_out).write_text(fsm.to_dot(), encoding="utf-8")
    if fmt == "json":
        click.echo(fsm.to_json())
    elif fmt == "dot":
        click.echo(fsm.to_dot(), nl=False)
    else:
        s = fsm.summary()
        click.echo(" ".join(f"{k}={v}" for k, v in s.items()))
        sep = " " if fsm.kind == "token" else ""
        for q in range(fsm.n_states):
            if q == fsm.sink:
                continue
            groups: dict[int, list[str]] = {}
            for a in range(fsm.n_symbols):
                t = int(fsm.table[q, a])
                if t != fsm.sink:
                    groups.setdefault(t, []).append(fsm.alphabet[a])
            mark = "*" if fsm.accepting[q] else " "
            edges = "  ".join(
                f"{(',' if sep else '').join(syms) if len(syms) <= 12 else ''.join(syms[:12]) + '...'}->{t}"
                for t, syms in groups.items()
            )
            click.echo(f"{mark}{q}: {edges}")


@main.command("trace")
@click.argument("regex")
@click.argument("text")
@_source_options
@click.option("--task", type=click.Choice(["ternary", "binary"]), default="ternary", show_default=True)
def trace_cmd(regex: str, text: str, alphabet: str | None, token_mode: bool, vocab: str | None, task: str) -> None:
    """Run TEXT through REGEX's DFA: the states visited and the class (A / I / R)."""
    fsm = _fsm(regex, None, alphabet, token_mode, vocab)
    symbols = text.split() if fsm.kind == "token" else list(text)
    states = fsm.trace(symbols)
    parts = [str(states[0])]
    for sym, q in zip(symbols, states[1:]):
        parts.append(f"-{sym!r}-> {q}{' (sink)' if q == fsm.sink else ''}")
    click.echo(" ".join(parts))
    click.echo(f"class: {fsm.classify(symbols, task)}  accepted: {fsm.accepts(symbols)}")


@main.command("pairs")
@click.argument("regex", required=False)
@click.option("--fsm", "fsm_file", default=None, help="Read the FSM from a JSON transition table instead.")
@_source_options
@click.option("-k", "k", type=click.IntRange(min=1), default=1, show_default=True, help="Exact edit distance.")
@click.option("-n", "n", type=click.IntRange(min=0), default=1000, show_default=True, help="Number of pairs.")
@click.option("--l-min", type=int, default=1, show_default=True, help="Shortest negative.")
@click.option("--l-max", type=int, default=16, show_default=True, help="Longest negative.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="JSONL file to write.")
def pairs_cmd(
    regex: str | None,
    fsm_file: str | None,
    alphabet: str | None,
    token_mode: bool,
    vocab: str | None,
    k: int,
    n: int,
    l_min: int,
    l_max: int,
    seed: int,
    out: str,
) -> None:
    """Minimal pairs: negatives at edit distance exactly K (uniform per length), each with a nearest accepted string."""
    from datacore import write_jsonl

    from .pairs_edit import minimal_pairs

    fsm = _fsm(regex, fsm_file, alphabet, token_mode, vocab)
    GenConfig(L_min=l_min, L_max=l_max)  # validates the range
    write_jsonl(out, minimal_pairs(fsm, k, n, L_min=l_min, L_max=l_max, seed=seed & ((1 << 63) - 1)))


@main.command("generate")
@click.option("--regex", "regex", default=None, help="Character regex (or use --fsm).")
@click.option("--fsm", "fsm_file", default=None, help="FSM JSON transition table.")
@_source_options
@click.option(
    "--task", type=click.Choice(["ternary", "binary"]), default="ternary", show_default=True, help="Classes A/I/R, or A/R."
)
@click.option("--l-min", type=int, default=1, show_default=True, help="Shortest string.")
@click.option("--l-max", type=int, default=16, show_default=True, help="Longest string.")
@click.option(
    "--p-class",
    default=None,
    help="Class shares, e.g. A=0.5,I=0.25,R=0.25 [default: equal over the classes the FSM can produce].",
)
@click.option("--reject-mix", default=None, help="Reject subtype shares, e.g. illegal_step=1,overrun=1,wrong_alt=2.")
@click.option(
    "--mode",
    type=click.Choice(["coverage", "uniform"]),
    default="coverage",
    show_default=True,
    help="Coverage-steered walks, or exactly uniform within each (class, length).",
)
@click.option(
    "--mix-priority",
    type=click.Choice(["exact", "subtype", "length"]),
    default=None,
    help="When the reject mix and an even spread of R over lengths conflict: refuse (exact, default with "
    "--reject-mix), keep subtype shares, or keep the length balance (default without --reject-mix).",
)
@click.option(
    "--unique",
    is_flag=True,
    help="Distinct strings within every (class, length, subtype) cell over the whole dataset; "
    "refused when a cell has fewer strings than asked.",
)
@click.option("--attempts", "attempts_per_sample", type=int, default=8, show_default=True, help="Tries per crafted reject.")
@click.option("--batch-size", type=int, default=8192, show_default=True, help="Samples walked together.")
@_tokenizer_option
@click.option(
    "--split",
    "split_rule",
    type=click.Choice(["hash", "length"]),
    default="hash",
    show_default=True,
    help="hash: datacore's hash split; length: out-of-distribution lengths (train short, val longer, test longest).",
)
@click.option(
    "--split-lengths",
    default=None,
    metavar="TRAIN_MAX,VAL_MAX",
    help="With --split length: train = L_MIN..TRAIN_MAX, val = ..VAL_MAX, test = ..L_MAX [default: 80/10/10 of the lengths].",
)
@generate_options
def generate_cmd(
    regex: str | None,
    fsm_file: str | None,
    alphabet: str | None,
    token_mode: bool,
    vocab: str | None,
    task: str,
    l_min: int,
    l_max: int,
    p_class: str | None,
    reject_mix: str | None,
    mode: str,
    mix_priority: str | None,
    unique: bool,
    attempts_per_sample: int,
    batch_size: int,
    tokenizer: str | None,
    split_rule: str,
    split_lengths: str | None,
    opts: GenerateOptions,
) -> None:
    """Generate a labelled dataset (datacore layout) from an FSM."""
    from .datagen import FsmGenerator
    from .tokengen import TokenFsmGenerator

    fsm = _fsm(regex, fsm_file, alphabet, token_mode, vocab)
    cfg = GenConfig(
        L_min=l_min,
        L_max=l_max,
        task=task,
        p_class=parse_mix(p_class, "p_class") if p_class else None,
        reject_mix=parse_mix(reject_mix, "reject_mix") if reject_mix else None,
        mode=mode,
        mix_priority=mix_priority,
        unique=unique,
        unique_seed=(opts.seed & ((1 << 63) - 1)) if unique else 0,
        attempts_per_sample=attempts_per_sample,
        batch_size=batch_size,
        split=split_rule,
        split_lengths=_split_lengths(split_lengths),
    )
    tfsm = _token_fsm(fsm, tokenizer, token_mode)
    gen: Any = FsmGenerator(fsm, cfg) if tfsm is None else TokenFsmGenerator(tfsm, cfg)
    inner = gen if tfsm is None else gen.inner
    if cfg.unique:
        gen.targets(opts.n)  # refuse an exhausted cell before anything is written
    elif tfsm is None:  # (with a tokenizer a class sequence stands for many token sequences)
        from .unique import repeat_warning

        warn = repeat_warning(inner.engine, opts.n)
        if warn:
            click.echo(warn, err=True)
    run_generate(gen, opts)  # fsm.json (and token_fsm.json) are the generator's dataset files
    sys.stderr.flush()


if __name__ == "__main__":  # pragma: no cover
    main()
