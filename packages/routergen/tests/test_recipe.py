import textwrap

import pytest
from routergen.errors import RecipeError
from routergen.spec import GenerationContext, builtin_recipes, load_recipe, recipe_from_text


def err(text: str) -> str:
    with pytest.raises(RecipeError) as e:
        recipe_from_text(textwrap.dedent(text), "bad.yaml")
    return str(e.value)


def test_unknown_top_level_key_names_line():
    assert err("name: a\ntask: b\nsampels: 3\n").startswith("bad.yaml:3: sampels: unknown key (allowed: name, task")


def test_missing_required_key():
    assert "missing required key 'task'" in err("name: a\n")


def test_bad_router_value_names_line_field_value_and_allowed():
    m = err("name: a\ntask: b\nrouter:\n  policy: epsilon_greedy\n  epsilon: 1.5\n")
    assert m == "bad.yaml:5: router.epsilon: epsilon=1.5: must be a number >= 0.0 and <= 1.0"


def test_bad_policy():
    assert "bad.yaml:4: router.policy: policy='softmax': must be one of epsilon_greedy, ucb1, thompson" in err(
        "name: a\ntask: b\nrouter:\n  policy: softmax\n"
    )


def test_duplicate_key_is_an_error():
    assert err("name: a\ntask: b\nname: c\n") == "bad.yaml:3: name: duplicate key (first defined on line 1)"


def test_yaml_syntax_error_names_line():
    m = err("name: a\ntask: b\nrouter: {policy: ucb1\nbudget: {}\n")
    assert m.startswith("bad.yaml:") and "invalid YAML" in m


def test_bad_validator_parameter():
    m = err("name: a\ntask: b\nvalidators:\n  near_dup: {threshold: 2}\n")
    assert m.startswith("bad.yaml:4: validators.near_dup.threshold: threshold=2: must be a number")
    assert "unknown validator" in err("name: a\ntask: b\nvalidators:\n  toxicity: {}\n")


def test_unknown_arm_and_bad_arm_mapping():
    assert "bad.yaml:4: arms[0]: unknown arm 'greedy'" in err("name: a\ntask: b\narms:\n  - greedy\n")
    m = err("name: a\ntask: b\narms:\n  - {name: x, generator: naive, temperature: 3}\n")
    assert "arms[0].temperature: temperature=3" in m


def test_arm_mapping_missing_a_key_names_it():
    m = err("name: a\ntask: b\narms:\n  - {name: x}\n")
    assert m == "bad.yaml:4: arms[0]: missing required key 'generator'"


def test_templater_arm_without_grammar_is_refused():
    m = err("name: a\ntask: b\nllm: {model: m}\narms:\n  - naive\n  - {name: t, generator: templater}\n")
    assert m.startswith("bad.yaml:6: arms[1]: arm 't' uses the templater generator, which needs a grammar")
    # Without an explicit arms list the context simply leaves the templater arms out.
    assert recipe_from_text("name: a\ntask: b\nllm: {model: m}\n").grammar is None


def test_invalid_json_schema_names_line():
    m = err("name: a\ntask: b\noutput:\n  schema:\n    type: objekt\n")
    assert m.startswith("bad.yaml:5: output.schema.type: not a valid JSON Schema")


def test_text_field_must_exist():
    m = err("name: a\ntask: b\noutput:\n  text_field: body\n  schema: {type: object, properties: {text: {type: string}}}\n")
    assert "text_field 'body' is not a property" in m


def test_min_epsilon_above_epsilon():
    assert "min_epsilon=0.5 must be <= epsilon=0.2" in err("name: a\ntask: b\nrouter: {epsilon: 0.2, min_epsilon: 0.5}\n")


def test_missing_file_lists_builtins(tmp_path):
    with pytest.raises(RecipeError, match="no such file \\(built-in recipes: "):
        load_recipe(tmp_path / "missing.yaml")


def test_builtin_recipes_load_and_hash_is_stable():
    names = builtin_recipes()
    assert {"support_tickets", "product_reviews", "math_word_problems"} <= set(names)
    for n in names:
        r = load_recipe(n)
        assert r.hash == load_recipe(names[n]).hash


def test_context_and_arms(monkeypatch, small_recipe_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = load_recipe("product_reviews")
    ctx = GenerationContext.from_recipe(r)
    allowed = {a.name: ctx.arm_allowed(a) for a in r.arms}
    assert allowed["templater"][0] and not allowed["naive"][0] and "ANTHROPIC_API_KEY" in allowed["naive"][1]
    ctx2 = GenerationContext.from_recipe(r, client=object())
    assert all(ctx2.arm_allowed(a)[0] for a in r.arms)
    ctx3 = GenerationContext.from_recipe(r, offline=True, client=object())
    assert not ctx3.arm_allowed(r.arms[2])[0]
    # A recipe without a grammar has no TEMPLATER arms.
    m = load_recipe("math_word_problems")
    c = GenerationContext.from_recipe(m, client=object())
    from routergen.spec import BUILTIN_ARMS

    ok, why = c.arm_allowed(BUILTIN_ARMS["templater"])
    assert not ok and "needs a grammar" in why


def test_uniform_arm_refused_when_uniform_weights_do_not_terminate():
    r = recipe_from_text(
        textwrap.dedent("""\
        name: a
        task: b
        grammar:
          rules:
            e: [{text: "(<e> <e>)", weight: 1}, {text: "x", weight: 4}, {text: "(<e> <e> <e>)", weight: 0.1}]
        """)
    )
    ctx = GenerationContext.from_recipe(r, offline=True)
    from routergen.spec import BUILTIN_ARMS

    ok, why = ctx.arm_allowed(BUILTIN_ARMS["templater-uniform"])
    assert not ok and "non-terminating" in why
    assert ctx.arm_allowed(BUILTIN_ARMS["templater"])[0]
