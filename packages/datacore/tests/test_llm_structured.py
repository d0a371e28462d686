"""complete_json: schema-valid JSON, one bounded repair round, counted failures."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("jsonschema")

from datacore.llm import AnthropicClient, LLMConfigError, LLMRequest  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-structured-test"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def make_client(srv, **kw):
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, backoff_base_s=0.01, **kw)


def ask(i=0):
    return LLMRequest("claude-haiku-4-5", [{"role": "user", "content": f"person {i}"}], max_tokens=64, system="You answer.")


def test_valid_first_time():
    seen = []

    def handler(body):
        seen.append(body)
        return 'Sure: {"name": "Ada", "age": 36}'

    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        obj, resp = c.complete_json(ask(), SCHEMA)
        assert obj == {"name": "Ada", "age": 36} and resp.ok and srv.calls == 1
        # The schema is in the system prompt, after the caller's own system text.
        assert seen[0]["system"].startswith("You answer.") and '"required":["name","age"]' in seen[0]["system"]
        assert c.telemetry().counters["llm.json.ok"] == 1


def test_one_repair_round_fixes_invalid_output():
    def handler(body):
        if len(body["messages"]) == 1:
            return '{"name": "Ada", "age": -3}'
        # The repair turn shows the model its answer and the validator's complaint.
        assert body["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": '{"name": "Ada", "age": -3}'}]}
        assert "age" in body["messages"][2]["content"] and "minimum" in body["messages"][2]["content"]
        return '{"name": "Ada", "age": 3}'

    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        obj, resp = c.complete_json(ask(), SCHEMA)
        assert obj == {"name": "Ada", "age": 3} and resp.ok and srv.calls == 2
        t = c.telemetry().counters
        assert t["llm.json.repairs"] == 1 and t["llm.json.repaired"] == 1 and "llm.json.failed" not in t


def test_still_invalid_after_repair_is_a_counted_failure():
    with FakeMessagesServer(handler=lambda b: "I cannot answer in JSON.") as srv, make_client(srv) as c:
        obj, resp = c.complete_json(ask(), SCHEMA)
        assert obj is None and resp.error_kind == "schema" and "not JSON" in resp.error
        assert srv.calls == 2  # exactly one repair round, bounded
        assert c.telemetry().counters["llm.json.failed"] == 1


def test_tool_method_validates_tool_input():
    def handler(body):
        assert body["tool_choice"] == {"type": "tool", "name": "emit_json"}
        assert body["tools"][0]["input_schema"] == SCHEMA
        if len(body["messages"]) == 1:
            return {"content": [{"type": "tool_use", "id": "toolu_a", "name": "emit_json", "input": {"name": "Bo"}}]}
        result = body["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_a" and result["is_error"]
        return {"content": [{"type": "tool_use", "id": "toolu_b", "name": "emit_json", "input": {"name": "Bo", "age": 5}}]}

    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        obj, resp = c.complete_json(ask(), SCHEMA, method="tool")
        assert obj == {"name": "Bo", "age": 5} and srv.calls == 2


def test_many_and_cache_replay(tmp_path):
    def handler(body):
        i = int(body["messages"][0]["content"].split()[-1])
        return json.dumps({"name": f"p{i}", "age": i}) if i % 3 else "oops"

    with FakeMessagesServer(handler=handler) as srv, make_client(srv, cache_dir=tmp_path) as c:
        out = c.complete_json_many([ask(i) for i in range(9)], SCHEMA)
        assert [o for o, _ in out] == [None if i % 3 == 0 else {"name": f"p{i}", "age": i} for i in range(9)]
        calls = srv.calls
        assert calls == 9 + 3
        again = c.complete_json_many([ask(i) for i in range(9)], SCHEMA)
        assert [o for o, _ in again] == [o for o, _ in out] and srv.calls == calls


def test_bad_schema_and_method_are_config_errors():
    with FakeMessagesServer() as srv, make_client(srv) as c:
        with pytest.raises(LLMConfigError, match="not a valid JSON Schema"):
            c.complete_json(ask(), {"type": "nonsense"})
        with pytest.raises(LLMConfigError, match="method"):
            c.complete_json(ask(), SCHEMA, method="xml")
        with pytest.raises(LLMConfigError, match='"type": "object"'):
            c.complete_json(ask(), {"type": "array"}, method="tool")
        assert srv.calls == 0
