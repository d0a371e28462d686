"""A run-wide LLM budget: W worker processes share one ledger and spend ~one budget, not W.

Oracle: the fake server's count of messages it answered, times the price of each (recomputed
here from the usage it reported, not from the client's accounting).
"""

from __future__ import annotations

import multiprocessing as mp

import pytest

pytest.importorskip("anthropic")

from datacore.llm import AnthropicClient, BudgetLedger, LLMConfigError, LLMRequest  # noqa: E402
from datacore.llm.ledger import LEDGER_ENV  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-ledger-test-SECRET"
MODEL = "claude-haiku-4-5"
IN_FLIGHT = 2


def _worker(base_url: str, w: int, n: int, q) -> None:  # runs in a forked process
    c = AnthropicClient(api_key=KEY, base_url=base_url, max_in_flight=IN_FLIGHT, backoff_base_s=0.01)
    try:
        out = c.complete_many(
            [LLMRequest(MODEL, [{"role": "user", "content": f"w{w} q{i} " + "x" * 400}], max_tokens=8) for i in range(n)]
        )
        q.put((sum(r.ok for r in out), sum(r.error_kind == "budget" for r in out), c.ledger is not None))
    finally:
        c.close()


def _run(base_url: str, workers: int, n: int) -> list[tuple[int, int, bool]]:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(base_url, w, n, q)) for w in range(workers)]
    for p in ps:
        p.start()
    res = [q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(timeout=60)
    return res


def test_two_workers_share_one_budget(tmp_path, monkeypatch) -> None:
    with FakeMessagesServer() as srv:
        probe = AnthropicClient(api_key=KEY, base_url=srv.base_url)
        r = probe.complete(LLMRequest(MODEL, [{"role": "user", "content": "w9 q0 " + "x" * 400}], max_tokens=8))
        probe.close()
        per_call = probe.prices.cost(MODEL, r.usage)
        assert per_call and per_call > 0
        budget = 10 * per_call
        ledger = BudgetLedger.create(tmp_path / ".datacore" / "llm-budget.json", budget)
        monkeypatch.setenv(LEDGER_ENV, str(ledger.path))
        before = srv.replied
        res = _run(srv.base_url, workers=2, n=40)
        answered = srv.replied - before
    assert all(attached for _, _, attached in res)
    assert sum(ok for ok, _, _ in res) == answered
    spent = answered * per_call  # every request here is the same size, so the same price
    # at most one round of in-flight calls (IN_FLIGHT per worker) past the budget
    assert spent <= budget + 2 * IN_FLIGHT * per_call * 1.5, (answered, budget / per_call)
    assert answered >= 10 and sum(b for _, b, _ in res) > 0
    assert ledger.spent_usd == pytest.approx(spent, rel=0.2)


def test_ledger_survives_a_restart_and_refuses_garbage(tmp_path) -> None:
    p = tmp_path / "l.json"
    led = BudgetLedger.create(p, 1.0)
    led.charge(0.4)
    led.charge(0.7)
    again = BudgetLedger.create(p, 2.0)  # a resumed run, with a raised budget: spending kept
    assert again.spent_usd == pytest.approx(1.1) and again.budget_usd == 2.0
    again.check()
    again.charge(1.0)
    with pytest.raises(Exception, match="budget exceeded"):
        again.check()
    p.write_text("{")
    with pytest.raises(LLMConfigError, match="not an LLM budget ledger"):
        BudgetLedger(p).check()
    with pytest.raises(LLMConfigError):
        BudgetLedger(tmp_path / "none.json")
    with pytest.raises(LLMConfigError):
        BudgetLedger.create(tmp_path / "x.json", float("nan"))
