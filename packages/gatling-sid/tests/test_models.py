import json
import random

import pytest
from gatling_sid import GoldTrace, GraphError, ToolCall, ToolCallGraph, TraceFormatError
from gatling_sid.models import parse_ref
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32))
def test_json_round_trip(oracle, seed):
    t = oracle.make_trace(random.Random(seed), f"t{seed}")
    back = GoldTrace.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t
    assert back.to_dict() == t.to_dict()


def test_from_dict_names_the_bad_field(traces):
    d = traces[0].to_dict()
    del d["graph"]["calls"][1]["tool"]
    with pytest.raises(TraceFormatError, match=r"graph\.calls\[1\]: missing field 'tool'"):
        GoldTrace.from_dict(d)
    d = traces[0].to_dict()
    d["request"]["text"] = 7
    with pytest.raises(TraceFormatError, match=r"request\.text: expected str"):
        GoldTrace.from_dict(d)
    for bad in (7, ["a"], "xy"):  # dict() of these raised TypeError/ValueError (a traceback in validate)
        d = traces[0].to_dict()
        d["request"]["slots"] = bad
        with pytest.raises(TraceFormatError, match=r"request\.slots: expected an object"):
            GoldTrace.from_dict(d)


def test_topological_order_and_cycles():
    a = ToolCall("a", "t", {}, ())
    b = ToolCall("b", "t", {}, ("a",))
    c = ToolCall("c", "t", {}, ("a",))
    d = ToolCall("d", "t", {}, ("b", "c"))
    g = ToolCallGraph((d, c, b, a))
    order = g.topological_order()
    assert order.index("a") < order.index("b") < order.index("d") and order.index("c") < order.index("d")
    assert [[x.id for x in w] for w in ToolCallGraph((a, b, c, d)).levels()] == [["a"], ["b", "c"], ["d"]]
    with pytest.raises(GraphError, match="cycle"):
        ToolCallGraph((ToolCall("x", "t", {}, ("y",)), ToolCall("y", "t", {}, ("x",)))).topological_order()
    with pytest.raises(GraphError, match="'zz'"):
        ToolCallGraph((ToolCall("x", "t", {}, ("zz",)),)).topological_order()


def test_refs():
    assert parse_ref("call_2.output.results.0.order_id") == ("call_2", ["results", 0, "order_id"])
    with pytest.raises(TraceFormatError):
        parse_ref("call_2.input.x")
    g = ToolCallGraph(())
    c = ToolCall("c2", "t", {"x": {"$ref": "c1.output.results.1.id"}, "y": 3}, ("c1",))
    assert g.resolve_arguments(c, {"c1": {"results": [{"id": "A"}, {"id": "B"}]}}) == {"x": "B", "y": 3}


def test_training_format_is_anthropic_shaped(traces, registry):
    for t in traces[:100]:
        tf = t.to_training_format(registry.tools)
        msgs = tf["messages"]
        assert msgs[0]["role"] == "user" and msgs[-1]["role"] == "assistant"
        assert all(a["role"] != b["role"] for a, b in zip(msgs, msgs[1:]))  # strictly alternating
        uses = [b for m in msgs if m["role"] == "assistant" for b in m["content"] if b["type"] == "tool_use"]
        results = [b for m in msgs if m["role"] == "user" for b in m["content"] if b["type"] == "tool_result"]
        assert [u["id"] for u in uses] == [r["tool_use_id"] for r in results]
        assert len(uses) == len(t.graph.calls)
        assert "$ref" not in json.dumps([u["input"] for u in uses])  # concrete values, as a model writes them
        for u in uses:  # every resolved input is valid for its tool (independent check with jsonschema)
            import jsonschema

            jsonschema.validate(u["input"], registry.tools[u["name"]].input_schema)
        assert {x["name"] for x in tf["tools"]} == {c.tool for c in t.graph.calls}
        assert t.policy.id in tf["system"]
