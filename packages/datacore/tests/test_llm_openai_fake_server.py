"""The fake server's /v1/chat/completions route over raw HTTP and through the openai SDK's own types."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

pytest.importorskip("openai")

from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from openai.types.chat import ChatCompletion  # noqa: E402

PATH = "/v1/chat/completions"
BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}]}
HDR = {"authorization": "Bearer k", "content-type": "application/json"}


def post(srv, body=BODY, headers=HDR):
    u = urlsplit(srv.base_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        c.request("POST", PATH, body=json.dumps(body).encode(), headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_chat_completion_wire_format_is_a_valid_sdk_object():
    with FakeMessagesServer() as srv:
        assert srv.openai_base_url == srv.base_url + "/v1"
        status, _, raw = post(srv)
        assert status == 200
        c = ChatCompletion.model_validate(json.loads(raw))  # the SDK's own schema of the reply
        assert c.object == "chat.completion" and c.model == "m"
        assert c.choices[0].message.content.startswith("echo: hello #") and c.choices[0].finish_reason == "stop"
        assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens > 0
        assert srv.requests[0]["path"] == PATH and srv.calls == 1


def test_chat_tool_calls_and_usage_from_the_handler():
    def handler(body):
        return {
            "content": None,
            "tool_calls": [{"name": "f", "arguments": {"x": 1}}, {"id": "c2", "name": "g", "arguments": '{"y": 2}'}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        }

    with FakeMessagesServer(handler=handler) as srv:
        _, _, raw = post(srv)
        c = ChatCompletion.model_validate(json.loads(raw))
        calls = c.choices[0].message.tool_calls
        assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [("f", {"x": 1}), ("g", {"y": 2})]
        assert calls[1].id == "c2" and calls[0].id.startswith("call_fake_")
        assert c.choices[0].finish_reason == "tool_calls" and (c.usage.prompt_tokens, c.usage.completion_tokens) == (7, 3)


def test_chat_errors_and_faults_in_openai_shape():
    plan = ["429", "503", "529", "500", "malformed", None]
    with FakeMessagesServer(fault_fn=lambda b, n: plan[n], retry_after=2) as srv:
        for want in (429, 503):
            status, headers, raw = post(srv)
            err = json.loads(raw)["error"]
            assert status == want and headers["retry-after"] == "2" and set(err) == {"message", "type", "param", "code"}
        assert post(srv)[0] == 529 and post(srv)[0] == 500
        status, _, raw = post(srv)
        assert status == 200
        with pytest.raises(ValueError):
            json.loads(raw)
        assert post(srv)[0] == 200
        assert srv.faults_injected == {"429": 1, "503": 1, "529": 1, "500": 1, "malformed": 1} and srv.replied == 1
    with FakeMessagesServer() as srv:
        assert post(srv, headers={"content-type": "application/json"})[0] == 401
        status, _, raw = post(srv, body={"model": "m"})
        assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
