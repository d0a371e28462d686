"""Message Batches are never paid twice; the fake server keeps keep-alive connections sane.

Oracles: the fake server's own record of the batches it created; raw http.client on one
keep-alive connection.
"""

from __future__ import annotations

import http.client
import json

import pytest

anthropic = pytest.importorskip("anthropic")

from datacore.llm import AnthropicClient, BatchRunner, LLMError, LLMRequest  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-intent-test-SECRET"
MODEL = "claude-haiku-4-5"


def reqs(n: int) -> list[LLMRequest]:
    return [LLMRequest(MODEL, [{"role": "user", "content": f"q{i}"}], max_tokens=8) for i in range(n)]


def client(srv: FakeMessagesServer) -> AnthropicClient:
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, backoff_base_s=0.01, max_retries=2)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no except Exception, no finally that saves)."""


def _patch_create(c: AnthropicClient, *, reach_server: bool, then: BaseException) -> None:
    res = c._sdk.messages.batches
    real = res.create

    async def create(**kw):
        if reach_server:
            await real(**kw)  # the API made the batch ...
        raise then  # ... but its id never reached the state file

    res.create = create


@pytest.mark.parametrize("reach_server", [True, False])
def test_killed_during_create_never_submits_twice(tmp_path, reach_server) -> None:
    rs = reqs(7)
    state = tmp_path / "state.json"
    with FakeMessagesServer(batch_ready_after_polls=1) as srv:
        with client(srv) as c:
            _patch_create(c, reach_server=reach_server, then=Killed())
            with pytest.raises(Killed):
                BatchRunner(c, state, poll_interval_s=0.0).run(rs)
        saved = json.loads(state.read_text())
        assert saved["batches"] == [] and len(saved["intents"]) == 1  # the intent was on disk first
        assert len(srv._batches) == (1 if reach_server else 0)
        with client(srv) as c2:
            out = BatchRunner(c2, state, poll_interval_s=0.0).run(rs)
            assert [r.text.split(" #")[0] for r in out] == [f"echo: q{i}" for i in range(7)]
            tel = c2.telemetry().counters
            assert tel.get("llm.batch.adopted", 0) == (1 if reach_server else 0)
        assert len(srv._batches) == 1, "the batch was created twice"
        assert json.loads(state.read_text())["intents"] == []


def test_lost_create_response_is_not_retried_into_a_second_batch(tmp_path) -> None:
    rs = reqs(4)
    with FakeMessagesServer() as srv, client(srv) as c:
        res = c._sdk.messages.batches
        real = res.create
        calls = []

        async def create(**kw):
            calls.append(1)
            b = await real(**kw)
            if len(calls) == 1:  # the response of the first attempt is lost on the way back
                raise anthropic.APIConnectionError(request=None)  # type: ignore[arg-type]
            return b

        res.create = create
        out = BatchRunner(c, tmp_path / "s.json", poll_interval_s=0.0).run(rs)
        assert all(r.ok for r in out)
        assert len(srv._batches) == 1 and len(calls) == 1  # the retry found the batch in the listing


def test_ambiguous_listing_refuses_rather_than_paying_twice(tmp_path) -> None:
    rs = reqs(3)
    state = tmp_path / "state.json"
    with FakeMessagesServer() as srv:
        with client(srv) as c:
            _patch_create(c, reach_server=True, then=Killed())
            with pytest.raises(Killed):
                BatchRunner(c, state).submit(rs)
        with client(srv) as c1:  # someone else made another batch of 3 in the meantime
            BatchRunner(c1, tmp_path / "other.json").submit(reqs(6)[3:])
        with client(srv) as c2:
            with pytest.raises(LLMError, match="cannot tell which"):
                BatchRunner(c2, state).submit(rs)
        assert len(srv._batches) == 2


def _post(conn: http.client.HTTPConnection, body: bytes, key: bool = True) -> tuple[int, bytes, str]:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if key:
        headers["x-api-key"] = "k"
    conn.request("POST", "/v1/messages", body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.read(), r.getheader("content-type") or ""


def test_fake_server_reads_the_body_before_any_early_answer() -> None:
    body = json.dumps({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "x" * 3000}]}).encode()
    with FakeMessagesServer(max_requests=1) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.base_url.rsplit(":", 1)[1]), timeout=10)
        assert _post(conn, body, key=False)[0] == 401  # an early answer ...
        status, data, ctype = _post(conn, body)  # ... leaves the connection usable
        assert status == 200 and ctype.startswith("application/json"), data[:200]
        for _ in range(2):  # the request bound: a JSON 503 each time, never an HTML 501
            status, data, ctype = _post(conn, body)
            assert status == 503 and ctype.startswith("application/json"), (status, data[:200])
            assert json.loads(data)["error"]["type"] == "api_error"
        conn.close()
