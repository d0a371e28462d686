"""Message Batches through the SDK and the fake server: submit, poll, collect, resume, half price."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("jsonschema")

from datacore.llm import AnthropicClient, BatchRunner, LLMConfigError, LLMRequest  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-batch-test-SECRET"
MODEL = "claude-haiku-4-5"


def reqs(n):
    return [LLMRequest(MODEL, [{"role": "user", "content": f"b{i}"}], max_tokens=8) for i in range(n)]


def make_client(srv, **kw):
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, backoff_base_s=0.01, **kw)


def test_batch_run_collects_in_order_at_half_price(tmp_path):
    rs = reqs(25)
    with FakeMessagesServer(batch_ready_after_polls=2) as srv, make_client(srv, cache_dir=tmp_path / "cache") as c:
        runner = BatchRunner(c, tmp_path / "state.json", poll_interval_s=0.01, max_batch_size=10)
        out = runner.run(rs)
        assert [r.text.split(" #")[0] for r in out] == [f"echo: b{i}" for i in range(25)]
        assert srv.calls == 0  # nothing went through /v1/messages
        t = c.telemetry().counters
        assert t["llm.batch.submitted"] == 3 and t["llm.batch.succeeded"] == 25
        full = sum(c.prices.cost(MODEL, r.usage) for r in out)
        assert t["llm.cost_usd"] == pytest.approx(full / 2)
        # Results landed in the ordinary cache too: complete() needs no call.
        assert c.complete(rs[3]).cached and srv.calls == 0
    state = json.loads((tmp_path / "state.json").read_text())
    assert len(state["batches"]) == 3 and all(b["collected"] for b in state["batches"])
    assert KEY not in (tmp_path / "state.json").read_text()


def test_resume_after_crash_resubmits_nothing(tmp_path):
    rs = reqs(12)
    state = tmp_path / "state.json"
    with FakeMessagesServer(batch_ready_after_polls=3) as srv:
        with make_client(srv) as c:
            runner = BatchRunner(c, state, poll_interval_s=0.0, max_batch_size=5)
            ids = runner.submit(rs)
            assert len(ids) == 3
            runner.poll()  # one poll: nothing ended yet; then the process "dies"
            assert all(r.error_kind == "pending" for r in runner.collect(rs))
        submits_before = srv.batch_calls
        with make_client(srv) as c2:
            runner2 = BatchRunner(c2, state, poll_interval_s=0.0)
            assert runner2.submit(rs) == []  # the known batch ids were loaded, nothing re-submitted
            out = runner2.run(rs)
            assert all(r.ok for r in out) and [r.text.split(" #")[0] for r in out] == [f"echo: b{i}" for i in range(12)]
            assert c2.telemetry().counters.get("llm.batch.submitted", 0) == 0
        assert srv.batch_calls > submits_before


def test_errored_results_are_reported_then_resubmitted(tmp_path):
    rs = reqs(20)
    state = tmp_path / "state.json"
    with FakeMessagesServer(fault_rate=0.3, faults=("500",), seed=2) as srv, make_client(srv) as c:
        runner = BatchRunner(c, state, poll_interval_s=0.0)
        out = runner.run(rs)
        bad = [i for i, r in enumerate(out) if not r.ok]
        assert bad and all(out[i].error_kind == "batch" and "errored" in out[i].error for i in bad)
        # A second run re-submits exactly the failed ones (the fake's faults are per attempt).
        out2 = BatchRunner(c, state, poll_interval_s=0.0).run(rs)
        state_d = json.loads(state.read_text())
        assert len(state_d["batches"]) == 2 and len(state_d["batches"][1]["keys"]) == len(bad)
        assert sum(r.ok for r in out2) >= sum(r.ok for r in out)


def test_bad_state_file_is_a_clear_error(tmp_path):
    p = tmp_path / "state.json"
    p.write_text("{not json")
    with FakeMessagesServer() as srv, make_client(srv) as c:
        with pytest.raises(LLMConfigError, match="state.json: not a BatchRunner state file"):
            BatchRunner(c, p)
