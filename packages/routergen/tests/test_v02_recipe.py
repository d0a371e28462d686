"""0.2 defects in recipe and grammar loading (each test failed on 078fba8)."""

import random
import textwrap
import time

import jsonschema
import pytest
from click.testing import CliRunner
from routergen.cli import main
from routergen.errors import GrammarError, RecipeError
from routergen.spec import recipe_from_text


def err(text: str, exc=RecipeError) -> str:
    with pytest.raises(exc) as e:
        recipe_from_text(textwrap.dedent(text), "bad.yaml")
    return str(e.value)


def test_non_bool_cost_aware_names_its_own_line_without_repr():
    m = err("name: a\ntask: b\nrouter:\n  policy: ucb1\n  cost_aware: 'yes please'\n")
    assert m == "bad.yaml:5: router.cost_aware: cost_aware='yes please': must be true or false"
    assert "<class" not in m and "Attribute" not in m


def test_yaml_alias_bomb_is_refused_quickly_with_a_line():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(lines) + "\nname: a\ntask: b\nexamples: *a8\n"
    assert len(text) < 1500
    t0 = time.process_time()  # CPU time: the shared machine's load does not enter
    with pytest.raises(RecipeError) as e:
        recipe_from_text(text, "bomb.yaml")
    assert time.process_time() - t0 < 3.0
    assert str(e.value).startswith("bomb.yaml:") and "alias" in str(e.value)


def test_ordinary_aliases_still_work():
    r = recipe_from_text("name: a\ntask: b\nx: &ex ['one', 'two']\n".replace("x: &ex", "examples: &ex"), "ok.yaml")
    assert r.examples == ("one", "two")


@pytest.mark.parametrize(
    "prod, needle",
    [
        ("hello {my-slot}", "{my-slot}"),
        ("<  greet> there {thing}", "<  greet>"),
        ("a {thing} and a stray } brace", "}"),
        ("a {thing} and {Thing", "{"),
    ],
)
def test_placeholder_typos_are_refused_at_load_with_the_line(prod, needle):
    text = (
        f"name: a\ntask: b\ngrammar:\n  rules:\n    s:\n      - {{text: {prod!r}}}\n      - 'plain {{thing}}'\n"
        "    greet: [hi]\n  slots:\n    thing: [lamp]\n"
    )
    text = text.replace("'plain {{thing}}'", "'plain {thing} <greet>'")
    m = err(text, GrammarError)
    assert m.startswith("bad.yaml:6: grammar.rules.s[0]:"), m
    assert needle in m


def test_escaped_braces_and_angles_are_still_literal():
    r = recipe_from_text("name: a\ntask: b\ngrammar:\n  rules:\n    s: ['{{x}} <<y>> {thing}']\n  slots:\n    thing: [lamp]\n")
    d = r.grammar.derive(random.Random(0))
    assert d.render(r.grammar.fill(d, random.Random(0))) == "{x} <y> lamp"


def test_grammar_that_can_only_produce_empty_text_is_refused():
    m = err(
        "name: a\ntask: b\ngrammar:\n  rules:\n    s: ['<e> {x}', '  ']\n    e: ['', ' ']\n  slots:\n    x: ['', ' ']\n",
        GrammarError,
    )
    assert m.startswith("bad.yaml:5: grammar.rules") and "empty" in m


def test_grammar_with_some_empty_derivations_still_loads():
    recipe_from_text("name: a\ntask: b\ngrammar:\n  rules:\n    s: ['<e>', '']\n    e: ['', 'word']\n")


def test_derived_schema_types_mixed_slots_so_the_grammars_own_records_pass():
    r = recipe_from_text(
        textwrap.dedent("""\
        name: a
        task: b
        grammar:
          rules:
            s:
              - {text: "answer {ok} qty {qty} size {size} id {code}", set: {flag: yes}}
              - {text: "other {ok} {qty}", set: {flag: maybe}}
          slots:
            ok: [yes, no, maybe]
            qty: [1, 2.5, three]
            size: [1, 2, 3]
            code: ["007", 7, true]
        """)
    )
    v = jsonschema.Draft202012Validator(r.schema)
    rng = random.Random(1)
    bad = []
    for _ in range(300):
        d = r.grammar.derive(rng)
        vals = r.grammar.fill(d, rng)
        rec = {"text": d.render(vals), **vals, **d.sets}
        if not v.is_valid(rec):
            bad.append(rec)
    assert bad == []
    assert r.schema["properties"]["size"]["type"] == "integer"
    # Still strict: a value of a type the grammar never produces is rejected.
    assert not v.is_valid({"text": "x", "ok": 3, "qty": 1, "flag": True})
    assert not v.is_valid({"text": "x", "ok": True, "qty": [1], "flag": True})


PRICED = "name: a\ntask: b\nllm: {model: my-local-model}\narms: [naive]\nbudget: {max_usd: 1.0}\n"


def test_unpriced_model_with_a_budget_is_refused_by_validate():
    m = err(PRICED)
    assert m.startswith("bad.yaml:3: llm.model:") and "my-local-model" in m and "price" in m


def test_unpriced_model_with_cost_aware_routing_is_refused():
    m = err("name: a\ntask: b\nllm: {model: my-local-model}\narms: [naive]\nrouter: {cost_aware: true}\n")
    assert "my-local-model" in m and "router.cost_aware" in m


def test_unpriced_judge_model_is_refused_too():
    m = err(
        "name: a\ntask: b\nllm: {model: claude-3-5-haiku-latest, judge_model: judge-x}\narms: [naive]\nbudget: {max_usd: 1}\n"
    )
    assert m.startswith("bad.yaml:3: llm.judge_model:") and "judge-x" in m


def test_prices_from_the_recipe():
    r = recipe_from_text(PRICED.replace("{model: my-local-model}", "{model: my-local-model, prices: {my-local: [0.5, 1.5]}}"))
    assert r.llm.prices == {"my-local": (0.5, 1.5)}
    m = err(PRICED.replace("{model: my-local-model}", "{model: my-local-model, prices: {my-local: [0.5]}}"))
    assert m.startswith("bad.yaml:3: llm.prices.my-local:") and "two numbers" in m


def test_prices_from_the_cli(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(PRICED)
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 1 and "has no price" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["validate", str(p), "--price", "my-local-model=0.5,1.5"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["validate", str(p), "--price", "my-local-model=abc"])
    assert r.exit_code != 0 and "--price" in r.output and "Traceback" not in r.output


JINJA = """\
name: j
task: Short product reviews.
llm: {model: claude-3-5-haiku-latest}
arms: [naive]
prompts:
  naive: |-
    {{ task }} Sample {{ iteration }}-{{ index }} ({{ arm }}, t={{ temperature }}).
    {% for e in examples %}Example: {{ e }}
    {% endfor %}Schema: {{ schema }}
examples: ["good kettle"]
"""


def test_jinja2_prompt_templates_render_into_naive_requests():
    from datacore.llm import LLMResponse
    from routergen.generators import GenerationPlan, NaiveGenerator
    from routergen.spec import BUILTIN_ARMS, LLMConfig

    class StubLLM:
        config = LLMConfig(model="m", temperature=0.4, structured="text")  # prompts in text mode

        def __init__(self):
            self.reqs = []

        def request(self, system, user, temperature=None, max_tokens=None, model=None):
            return {"system": system, "user": user}

        def complete_many(self, reqs):
            self.reqs.extend(reqs)
            return [LLMResponse(text='{"text": "x"}') for _ in reqs]

    r = recipe_from_text(JINJA)
    llm = StubLLM()
    NaiveGenerator(r, llm).generate(GenerationPlan(3, BUILTIN_ARMS["naive-hot"], 0.5, 2, 1))
    users = [q["user"] for q in llm.reqs if "design prompts" not in q["system"]]
    assert users[1].startswith("Short product reviews. Sample 3-1 (naive-hot, t=1.0).\nExample: good kettle\nSchema: {")


@pytest.mark.parametrize(
    "tpl, needle",
    [
        ("'{{ taks }}'", "'taks' is undefined (variables: task, schema"),
        ("'{% for x in examples %}'", "Jinja2 syntax error on template line 1"),
        ("''", "must be a non-empty Jinja2 template string"),
    ],
)
def test_bad_prompt_templates_are_refused_at_their_line(tpl, needle):
    text = JINJA.replace(JINJA[JINJA.index("  naive: |-") : JINJA.index("examples:")], f"  naive: {tpl}\n")
    m = err(text)
    assert m.startswith("bad.yaml:6: prompts.naive:") and needle in m, m
    assert err(JINJA.replace("  naive: |-", "  nave: |-")).startswith("bad.yaml:6: prompts.nave: unknown prompt")


def test_slot_values_from_seed_files(tmp_path):
    (tmp_path / "people.csv").write_text("name,city\nAnn,Oslo\nBo,Rome\nAnn,Lima\n,Kyiv\n")
    (tmp_path / "items.jsonl").write_text('{"item": "lamp"}\n\n{"item": "desk"}\n{"other": 1}\n')
    p = tmp_path / "r.yaml"
    p.write_text(
        "name: s\ntask: t\ngrammar:\n  rules:\n    s: ['{who} from {city} bought a {item}']\n  slots:\n"
        "    who: {from: people.csv, column: name}\n    city: {from: people.csv, column: city}\n"
        "    item: {from: items.jsonl, field: item}\n"
    )
    from routergen.spec import load_recipe

    g = load_recipe(p).grammar
    assert g.slots["who"].values == ("Ann", "Bo") and g.slots["item"].values == ("lamp", "desk")
    assert len(g.slots["city"].values) == 4
    # A run uses them; a changed seed file is part of the run's identity (not resumed into).
    from datacore import ConfigMismatchError
    from routergen.pipeline import run_recipe

    def crash(i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # one iteration written, then killed
        run_recipe(load_recipe(p), tmp_path / "o", n=3, offline=True, progress=False, on_iteration=crash)
    (tmp_path / "items.jsonl").write_text('{"item": "lamp"}\n{"item": "sofa"}\n')
    with pytest.raises(ConfigMismatchError, match="seed_files"):
        run_recipe(load_recipe(p), tmp_path / "o", n=3, offline=True, progress=False)
    p.write_text(p.read_text().replace("column: city", "column: town"))
    with pytest.raises(GrammarError, match=r"r\.yaml:8: grammar\.slots\.city\.column: people\.csv has no column 'town'"):
        load_recipe(p)
    p.write_text(p.read_text().replace("people.csv, column: town", "nope.csv, column: town"))
    with pytest.raises(GrammarError, match="cannot read seed file"):
        load_recipe(p)
