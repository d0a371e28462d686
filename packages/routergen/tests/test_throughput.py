"""Throughput and cost (issue 16, New 2): --max-in-flight (requests) never changes the bytes;
Message Batches as an execution mode (half price), against the loopback fake server.  Iterations
in flight (--concurrency, router.round_size) are tested in test_rounds.py."""

import hashlib
import textwrap
import threading
import time

import orjson
import pytest

pytest.importorskip("datacore.llm.testing")

from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from routergen.errors import RoutergenError  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import load_recipe, recipe_from_text  # noqa: E402

RECIPE = textwrap.dedent("""\
    name: throughput
    task: Short gadget reviews with a star rating.
    samples: 24
    batch_size: 12
    llm: {model: claude-3-5-haiku-latest, temperature: 0.5, max_tokens: 100}
    arms: [naive, naive-hot]
    output:
      schema:
        type: object
        properties: {text: {type: string}, stars: {type: integer, minimum: 1, maximum: 5}}
        required: [text, stars]
    validators: {schema: {}, exact_dedup: {}}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.5}
    """)


class Model:
    """Answers forced tool calls; sleeps a little and records the most requests it saw at once."""

    def __init__(self, sleep_s=0.0):
        self.sleep_s = sleep_s
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, body):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.sleep_s)
            if "design prompts" in (body.get("system") or ""):
                return "Write one realistic gadget review."
            h = int(hashlib.sha256(orjson.dumps(body["messages"]) + str(body.get("temperature")).encode()).hexdigest()[:8], 16)
            obj = {"text": f"gadget {h % 1000003} is fine", "stars": 1 + h % 5}
            return {"content": [{"type": "tool_use", "id": f"toolu_{h:08x}", "name": body["tool_choice"]["name"], "input": obj}]}
        finally:
            with self.lock:
                self.now -= 1


def _bytes(out):
    files = {
        p.relative_to(out).as_posix(): p.read_bytes() for s in ("train", "val", "test") for p in sorted((out / s).glob("*.jsonl"))
    }
    files["history"] = (out / "history.jsonl").read_bytes()
    return files


def test_requests_in_flight_change_speed_not_bytes(tmp_path, monkeypatch):
    recipe = recipe_from_text(RECIPE, "t.yaml")
    model = Model(sleep_s=0.03)
    with FakeMessagesServer(handler=model) as srv:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
        most = {}
        for k in (1, 6):
            model.most = 0
            run_recipe(recipe, tmp_path / f"k{k}", progress=False, max_in_flight=k, cache_dir=tmp_path / f"cache{k}")
            most[k] = model.most
    assert most[1] == 1  # one request in flight at a time
    assert 1 < most[6] <= 6  # several, never more than asked
    assert _bytes(tmp_path / "k1") == _bytes(tmp_path / "k6")
    with pytest.raises(RoutergenError, match="max_in_flight must be an integer >= 1"):
        run_recipe(recipe, tmp_path / "x", progress=False, max_in_flight=0)


@pytest.mark.slow  # two runs with batch polling; in the combined session
def test_message_batches_mode_same_samples_at_half_the_price(tmp_path, monkeypatch, small_recipe_path):
    recipe = recipe_from_text(RECIPE, "t.yaml")
    with FakeMessagesServer(handler=Model()) as srv:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
        run_recipe(recipe, tmp_path / "i", progress=False)
        interactive_calls = srv.calls
        res = run_recipe(recipe, tmp_path / "b", progress=False, execution="batch", batch_poll_s=0.01)
        assert srv.calls == interactive_calls  # nothing went to /v1/messages in batch mode
        assert srv.batch_calls > 0
    assert res.llm_counters.get("llm.batch.submitted", 0) > 0
    a, b = _bytes(tmp_path / "i"), _bytes(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "history"} == {k: v for k, v in b.items() if k != "history"}
    ha = [orjson.loads(x) for x in a["history"].splitlines()]
    hb = [orjson.loads(x) for x in b["history"].splitlines()]
    ca, cb = sum(h["cost_usd"] for h in ha), sum(h["cost_usd"] for h in hb)
    assert ca > 0 and abs(cb - ca / 2) < 1e-6  # every response priced at the batch discount
    spec = orjson.loads((tmp_path / "b" / "dataset.json").read_bytes())["spec"]
    assert spec["config"]["execution"] == "batch"
    with pytest.raises(RoutergenError, match="execution batch needs a model"):
        run_recipe(load_recipe(small_recipe_path), tmp_path / "o", progress=False, offline=True, execution="batch")
    assert not (tmp_path / "o").exists()
