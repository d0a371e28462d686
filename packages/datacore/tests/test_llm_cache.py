"""The content-addressed disk cache: layout, zero-call re-runs, dedup, corruption, key hygiene."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("jsonschema")

from datacore.llm import AnthropicClient, LLMRequest  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-cache-test-SECRET-777"
MODEL = "claude-haiku-4-5"


def make_client(srv, **kw):
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, backoff_base_s=0.01, backoff_max_s=0.05, cooldown_s=0.05, **kw)


def reqs(n, prefix="q"):
    return [LLMRequest(MODEL, [{"role": "user", "content": f"{prefix} {i}"}], max_tokens=8) for i in range(n)]


def test_identical_rerun_makes_zero_calls(tmp_path):
    cache = tmp_path / "cache"
    with FakeMessagesServer(latency=0.002) as srv, make_client(srv, cache_dir=cache) as c:
        first = c.complete_many(reqs(40))
        assert srv.calls == 40 and not any(r.cached for r in first)
    # A new process would see the same: a fresh client and a fresh server.
    with FakeMessagesServer() as srv2, make_client(srv2, cache_dir=cache) as c2:
        second = c2.complete_many(reqs(40))
        assert srv2.calls == 0
        assert all(r.cached for r in second)
        assert [r.text for r in second] == [r.text for r in first]
        assert [r.usage for r in second] == [r.usage for r in first]
        t = c2.telemetry().counters
        assert t["llm.cache_hits"] == 40 and "llm.calls" not in t and "llm.cost_usd" not in t
        # Half old, half new: only the new ones are sent.
        mixed = c2.complete_many(reqs(40)[:20] + reqs(20, prefix="new"))
        assert srv2.calls == 20 and sum(r.cached for r in mixed) == 20


def test_cache_layout_and_atomic_files(tmp_path):
    cache = tmp_path / "cache"
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=cache) as c:
        r = reqs(1)[0]
        c.complete(r)
    key = r.cache_key()
    path = cache / key[:2] / f"{key}.json"
    assert path.is_file()
    entry = json.loads(path.read_text())
    assert entry["key"] == key and entry["request"]["messages"] == r.messages
    assert entry["response"]["text"].startswith("echo: q 0")
    leftovers = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert leftovers == []  # no temp files left behind


def test_cache_off_sends_every_time():
    with FakeMessagesServer() as srv, make_client(srv) as c:
        c.complete_many(reqs(5))
        c.complete_many(reqs(5))
        assert srv.calls == 10 and c.cache is None


def test_failures_are_not_cached(tmp_path):
    cache = tmp_path / "cache"
    with FakeMessagesServer(fault_rate=1.0, faults=("500",)) as srv, make_client(srv, cache_dir=cache, max_retries=0) as c:
        assert not c.complete(reqs(1)[0]).ok
    assert not list(cache.rglob("*.json"))
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=cache) as c:
        assert c.complete(reqs(1)[0]).ok and srv.calls == 1


def test_corrupt_entry_is_a_counted_miss(tmp_path):
    cache = tmp_path / "cache"
    r = reqs(1)[0]
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=cache) as c:
        c.complete(r)
    p = cache / r.cache_key()[:2] / f"{r.cache_key()}.json"
    p.write_bytes(p.read_bytes()[:20])  # torn write from some other tool
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=cache) as c:
        assert c.complete(r).ok and srv.calls == 1
        assert c.telemetry().counters["llm.cache_corrupt"] == 1
    json.loads(p.read_text())  # rewritten whole


def test_identical_requests_in_one_batch_share_one_call(tmp_path):
    with FakeMessagesServer(latency=0.05) as srv, make_client(srv, cache_dir=tmp_path / "c") as c:
        same = reqs(1)[0]
        rs = c.complete_many([same] * 6)
        assert srv.calls == 1 and len({r.text for r in rs}) == 1
        assert sum(not r.cached for r in rs) == 1
        assert c.telemetry().counters["llm.dedup_hits"] == 5


def test_api_key_is_never_written(tmp_path, monkeypatch, capsys, caplog):
    """Scan everything the layer writes or reports for the key (issue 5: no key in cache/logs/outputs)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    out.mkdir()
    caplog.set_level("DEBUG")
    with FakeMessagesServer(fault_rate=0.3, faults=("429", "500", "malformed"), seed=1) as srv:
        with AnthropicClient(base_url=srv.base_url, cache_dir=cache, backoff_base_s=0.01, max_retries=1) as c:
            rs = c.complete_many(reqs(30))
            _, jr = c.complete_json(reqs(1, prefix="json")[0], {"type": "object"})
            tel = c.telemetry()
            text = repr(c) + tel.to_json().decode() + tel.pretty()
            text += "".join(repr(r) + str(r.error) for r in [*rs, jr])
        # The fake server logs request bodies, never the credential header.
        text += json.dumps(srv.requests)
        assert any(r.error for r in rs)  # error messages were produced and scanned
    (out / "telemetry.json").write_bytes(tel.to_json())
    captured = capsys.readouterr()
    text += captured.out + captured.err + caplog.text
    assert KEY not in text
    for root, _dirs, files in os.walk(tmp_path):
        for f in files:
            assert KEY.encode() not in open(os.path.join(root, f), "rb").read(), f
    assert len(list(cache.rglob("*.json"))) >= 1


def test_client_refuses_pickling():
    import pickle

    with FakeMessagesServer() as srv, make_client(srv) as c:
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(c)


def test_key_echoed_by_a_server_is_scrubbed_from_errors():
    def handler(body):
        raise ValueError(f"bad key {KEY}")  # the fake turns this into an HTTP 500 carrying the text

    with FakeMessagesServer(handler=handler) as srv, make_client(srv, max_retries=0) as c:
        r = c.complete(reqs(1)[0])
        assert r.error_kind == "server" and "[redacted]" in r.error and KEY not in r.error


def test_unwritable_cache_still_returns_answers(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # cache_dir/ab/... cannot be created under a file
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=blocker) as c:
        rs = c.complete_many(reqs(3))
        assert all(r.ok for r in rs) and srv.calls == 3
        t = c.telemetry().counters
        assert t["llm.cache_write_errors"] == 3 and t["llm.cache_read_errors"] == 3
