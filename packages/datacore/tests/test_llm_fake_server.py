"""The fake server itself, over raw HTTP (stdlib http.client) and through the SDK: wire format, faults, bounds."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

pytest.importorskip("anthropic")

import anthropic  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}]}
HDR = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}


class Reply:
    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.status_code = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.content = resp.read()

    def json(self):
        return json.loads(self.content)


class Conn:
    """One keep-alive connection to the fake server."""

    def __init__(self, srv, timeout=5.0):
        u = urlsplit(srv.base_url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def request(self, method, path, body=None, headers=HDR):
        data = None if body is None else json.dumps(body).encode()
        self.c.request(method, path, body=data, headers=headers)
        return Reply(self.c.getresponse())

    def close(self):
        self.c.close()


def post(srv, body=BODY, headers=HDR, timeout=5.0, path="/v1/messages"):
    c = Conn(srv, timeout)
    try:
        return c.request("POST", path, body, headers)
    finally:
        c.close()


def test_message_wire_format_parses_in_the_sdk():
    with FakeMessagesServer() as srv:
        r = post(srv)
        assert r.status_code == 200
        d = r.json()
        assert d["type"] == "message" and d["role"] == "assistant" and d["model"] == "m"
        assert d["content"] == [{"type": "text", "text": d["content"][0]["text"]}] and d["content"][0]["text"].startswith(
            "echo: hello #"
        )
        assert d["stop_reason"] == "end_turn" and set(d["usage"]) == {"input_tokens", "output_tokens"}
        sdk = anthropic.Anthropic(api_key="k", base_url=srv.base_url, max_retries=0)
        msg = sdk.messages.create(**BODY)
        assert msg.id == d["id"] and msg.content[0].text == d["content"][0]["text"]  # deterministic by request hash
        assert msg.usage.input_tokens == d["usage"]["input_tokens"]
        sdk.close()


def test_auth_required_and_bad_requests():
    with FakeMessagesServer() as srv:
        assert post(srv, headers={"content-type": "application/json"}).status_code == 401
        r = post(srv, body={"model": "m"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert post(srv, body={}, path="/v1/other").status_code == 404


def test_injected_faults_on_the_wire():
    plan = ["429", "529", "500", "malformed", None]
    with FakeMessagesServer(fault_fn=lambda b, n: plan[n], retry_after=2) as srv:
        r = post(srv)
        assert r.status_code == 429 and r.headers["retry-after"] == "2" and r.json()["error"]["type"] == "rate_limit_error"
        r = post(srv)
        assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
        assert post(srv).status_code == 500
        r = post(srv)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        assert post(srv).status_code == 200
        assert srv.calls == 5 and srv.replied == 1
        assert srv.faults_injected == {"429": 1, "529": 1, "500": 1, "malformed": 1}


def test_fault_injection_is_seeded_and_rate_is_respected():
    def run(seed):
        with FakeMessagesServer(fault_rate=0.2, faults=("429", "529"), seed=seed) as srv:
            c = Conn(srv)
            for i in range(150):
                c.request("POST", "/v1/messages", {**BODY, "messages": [{"role": "user", "content": f"m{i}"}]})
            c.close()
            return [r["fault"] for r in srv.requests]

    a, b, c = run(5), run(5), run(6)
    assert a == b and a != c
    rate = sum(f is not None for f in a) / len(a)
    assert 0.1 < rate < 0.3
    assert {f for f in a if f} == {"429", "529"}


def test_slow_reply_and_latency():
    with FakeMessagesServer(fault_rate=1.0, faults=("slow",), slow_s=2.0) as srv:
        with pytest.raises(TimeoutError):
            post(srv, timeout=0.2)
    with FakeMessagesServer(latency=0.2) as srv:
        t0 = time.monotonic()
        assert post(srv).status_code == 200
        assert time.monotonic() - t0 >= 0.2


def test_bounded_and_self_stopping():
    with FakeMessagesServer(max_requests=3) as srv:
        for _ in range(3):
            assert post(srv).status_code == 200
        assert post(srv).status_code == 503
        deadline = time.monotonic() + 5
        while srv.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not srv.running
        with pytest.raises(OSError):
            post(srv, timeout=1.0)
    srv = FakeMessagesServer(max_lifetime_s=0.3).start()
    time.sleep(0.6)
    assert not srv.running
    srv.stop()  # idempotent


def test_option_validation():
    with pytest.raises(ValueError, match="fault_rate"):
        FakeMessagesServer(fault_rate=2)
    with pytest.raises(ValueError, match="faults"):
        FakeMessagesServer(fault_rate=0.1, faults=("418",))
