"""`FakeMessagesServer`: a loopback HTTP server speaking enough of the Anthropic and OpenAI APIs for tests.

It is a real server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, random port, in a daemon thread),
so the real ``anthropic`` SDK talks to it unchanged with ``base_url=srv.base_url``, and the real
``openai`` SDK with ``base_url=srv.openai_base_url``.  It serves ``POST /v1/messages``, the Message
Batches routes (create, retrieve, results) and ``POST /v1/chat/completions``.

Replies are deterministic: by default an echo of the last user text plus a hash of the request;
or whatever ``handler(request_json)`` returns: a string -> one text block (Messages) or the
message content (chat completions); a dict -> a partial reply whose missing fields are filled in:
for Messages a message (``content`` blocks, ``usage``, ...), for chat completions an assistant
message (``content``, ``tool_calls`` as ``[{"name", "arguments", "id"?}]`` with ``arguments`` a
dict or a JSON string, and optionally ``finish_reason`` and ``usage`` with ``prompt_tokens`` /
``completion_tokens``).  The handler sees the request body of the route it was called on.  Faults are injected deterministically from
``(seed, request hash, how many times that request was seen)``, so a retried request can succeed
on a later attempt whatever order concurrent requests arrive in:

- ``"429"``: rate limit, with a ``retry-after`` header of ``retry_after`` seconds;
- ``"503"``: service unavailable (what vLLM / llama.cpp answer while busy), also with ``retry-after``;
- ``"529"``: overloaded;  ``"500"``: internal server error;
- ``"slow"``: the reply waits ``slow_s`` seconds (past a client's timeout);
- ``"malformed"``: HTTP 200 with a truncated JSON body.

Bounded and self-stopping: after ``max_requests`` requests or ``max_lifetime_s`` seconds the
server shuts itself down.  ``calls`` counts model requests received on either route (faulted ones
included);
``requests`` logs each one (path, JSON body, fault) without any credential header.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CHAT_PATH", "FAULTS", "MESSAGES_PATH", "FakeMessagesServer"]

FAULTS = ("429", "503", "529", "500", "slow", "malformed")

MESSAGES_PATH = "/v1/messages"
CHAT_PATH = "/v1/chat/completions"

Handler = Callable[[dict[str, Any]], "str | dict[str, Any]"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            return c
        if isinstance(c, list):
            return " ".join(b.get("text", "") for b in c if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class FakeMessagesServer:
    """Loopback fake of the Anthropic Messages (and Batches) API; use as a context manager."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        fault_rate: float = 0.0,
        faults: Sequence[str] = ("429", "529"),
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        seed: int = 0,
        retry_after: float | None = 0.0,
        slow_s: float = 5.0,
        fault_fn: Callable[[dict[str, Any], int], str | None] | None = None,
        max_requests: int = 1_000_000,
        max_lifetime_s: float = 600.0,
        batch_ready_after_polls: int = 1,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate: expected a number in [0, 1], got {fault_rate!r}")
        bad = [f for f in faults if f not in FAULTS]
        if bad or (fault_rate > 0 and not faults):
            raise ValueError(f"faults: expected a non-empty subset of {FAULTS}, got {tuple(faults)!r}")
        if latency < 0 or latency_jitter < 0 or slow_s < 0:
            raise ValueError("latency, latency_jitter and slow_s must be >= 0")
        if max_requests < 1 or max_lifetime_s <= 0:
            raise ValueError("max_requests must be >= 1 and max_lifetime_s > 0")
        self.handler = handler
        self.fault_rate = float(fault_rate)
        self.faults = tuple(faults)
        self.latency = float(latency)
        self.latency_jitter = float(latency_jitter)
        self.seed = int(seed)
        self.retry_after = retry_after
        self.slow_s = float(slow_s)
        self.fault_fn = fault_fn
        self.max_requests = int(max_requests)
        self.max_lifetime_s = float(max_lifetime_s)
        self.batch_ready_after_polls = int(batch_ready_after_polls)

        self.calls = 0  # POST /v1/messages received
        self.replied = 0  # of those, answered with a message
        self.batch_calls = 0  # requests to the batches routes
        self.requests: list[dict[str, Any]] = []
        self.faults_injected: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (pass as the SDK's / client's ``base_url``)."""
        if self._httpd is None:
            raise RuntimeError("FakeMessagesServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` the openai SDK (and :class:`~datacore.llm.OpenAIClient`) wants."""
        return self.base_url + "/v1"

    @property
    def running(self) -> bool:
        """True until the server has stopped (explicitly, or by its bounds)."""
        return self._httpd is not None and not self._stop.is_set()

    def start(self) -> FakeMessagesServer:
        """Bind a random port and serve in a daemon thread."""
        server = self

        class _H(_RequestHandler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); slow replies in progress are cut short."""
        with self._lock:
            if self._stop.is_set() or self._httpd is None:
                self._stop.set()
                return
            self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        httpd = self._httpd
        httpd.shutdown()
        httpd.server_close()

    def __enter__(self) -> FakeMessagesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviour

    def request_hash(self, body: dict[str, Any]) -> str:
        """sha256 of the canonical request body (what replies and faults are keyed by)."""
        return hashlib.sha256(_canon(body)).hexdigest()

    def _choose_fault(self, body: dict[str, Any], h: str) -> str | None:
        with self._lock:
            n = self._seen.get(h, 0)
            self._seen[h] = n + 1
        if self.fault_fn is not None:
            fault = self.fault_fn(body, n)
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"fault_fn returned {fault!r}; expected None or one of {FAULTS}")
            return fault
        if self.fault_rate <= 0:
            return None
        d = hashlib.sha256(f"{self.seed}:{h}:{n}".encode()).digest()
        u = int.from_bytes(d[:8], "little") / 2**64
        if u >= self.fault_rate:
            return None
        return self.faults[int.from_bytes(d[8:16], "little") % len(self.faults)]

    def _delay(self, h: str) -> float:
        if self.latency_jitter <= 0:
            return self.latency
        r = random.Random(f"{self.seed}:{h}:latency")
        return self.latency + r.uniform(0.0, self.latency_jitter)

    def build_message(self, body: dict[str, Any], h: str) -> dict[str, Any]:
        """The reply message for ``body`` (from the handler, or the default echo)."""
        reply: Any = self.handler(body) if self.handler is not None else f"echo: {_last_user_text(body)} #{h[:8]}"
        if isinstance(reply, str):
            msg: dict[str, Any] = {"content": [{"type": "text", "text": reply}]}
        elif isinstance(reply, dict):
            msg = dict(reply)
        else:
            raise TypeError(f"handler must return a str or a dict, got {type(reply).__name__}")
        content = msg.setdefault("content", [])
        msg.setdefault("id", f"msg_fake_{h[:24]}")
        msg.setdefault("type", "message")
        msg.setdefault("role", "assistant")
        msg.setdefault("model", body.get("model", "fake-model"))
        msg.setdefault("stop_reason", "tool_use" if any(b.get("type") == "tool_use" for b in content) else "end_turn")
        msg.setdefault("stop_sequence", None)
        if "usage" not in msg:
            prompt = _canon({"s": body.get("system"), "m": body.get("messages"), "t": body.get("tools")})
            out_chars = sum(
                len(b.get("text", "")) + len(_canon(b.get("input", ""))) * (b.get("type") == "tool_use") for b in content
            )
            msg["usage"] = {"input_tokens": max(1, math.ceil(len(prompt) / 4)), "output_tokens": max(1, math.ceil(out_chars / 4))}
        return msg

    def build_chat_completion(self, body: dict[str, Any], h: str) -> dict[str, Any]:
        """The chat-completions reply for ``body`` (from the handler, or the default echo)."""
        reply: Any = self.handler(body) if self.handler is not None else f"echo: {_last_user_text(body)} #{h[:8]}"
        if isinstance(reply, str):
            reply = {"content": reply}
        elif not isinstance(reply, dict):
            raise TypeError(f"handler must return a str or a dict, got {type(reply).__name__}")
        reply = dict(reply)
        finish = reply.pop("finish_reason", None)
        usage = reply.pop("usage", None)
        msg: dict[str, Any] = {"role": "assistant", "content": reply.pop("content", None)}
        calls: list[dict[str, Any]] = []
        for i, tc in enumerate(reply.pop("tool_calls", None) or []):
            fn = tc.get("function") or tc
            args = fn.get("arguments", {})
            calls.append(
                {
                    "id": tc.get("id") or f"call_fake_{h[:12]}_{i}",
                    "type": "function",
                    "function": {"name": fn.get("name"), "arguments": args if isinstance(args, str) else _canon(args).decode()},
                }
            )
        if calls:
            msg["tool_calls"] = calls
        msg.update(reply)
        if usage is None:
            prompt = _canon({"m": body.get("messages"), "t": body.get("tools")})
            out = len(msg["content"] or "") + sum(len(c["function"]["arguments"]) for c in calls)
            usage = {"prompt_tokens": max(1, math.ceil(len(prompt) / 4)), "completion_tokens": max(1, math.ceil(out / 4))}
        usage = dict(usage)
        usage.setdefault("total_tokens", int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)))
        return {
            "id": f"chatcmpl-fake-{h[:24]}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model", "fake-model"),
            "choices": [
                {"index": 0, "message": msg, "finish_reason": finish or ("tool_calls" if calls else "stop"), "logprobs": None}
            ],
            "usage": usage,
        }

    def _new_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs:
            raise ValueError("requests: expected a non-empty list")
        with self._lock:
            bid = f"msgbatch_fake_{len(self._batches):06d}"
            now = time.time()
            self._batches[bid] = {"id": bid, "requests": reqs, "polls": 0, "created": now, "results": None}
        return self._batch_view(bid)

    def _batch_view(self, bid: str) -> dict[str, Any]:
        b = self._batches[bid]
        ended = b["polls"] >= self.batch_ready_after_polls
        n = len(b["requests"])
        if ended and b["results"] is None:
            results = []
            for r in b["requests"]:
                params = r.get("params") or {}
                h = self.request_hash(params)
                fault = self._choose_fault(params, h)
                if fault is not None:
                    results.append(
                        {
                            "custom_id": r.get("custom_id"),
                            "result": {
                                "type": "errored",
                                "error": {"type": "error", "error": {"type": "api_error", "message": f"injected fault {fault}"}},
                            },
                        }
                    )
                else:
                    results.append(
                        {
                            "custom_id": r.get("custom_id"),
                            "result": {"type": "succeeded", "message": self.build_message(params, h)},
                        }
                    )
            b["results"] = results
        counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            counts["processing"] = 0
            for r in b["results"]:
                counts["succeeded" if r["result"]["type"] == "succeeded" else "errored"] += 1
        return {
            "id": bid,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": _iso(b["created"]),
            "expires_at": _iso(b["created"] + timedelta(days=1).total_seconds()),
            "ended_at": _iso(time.time()) if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{bid}/results" if ended else None,
        }


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) refuses connects when a client opens dozens at once.
    request_queue_size = 256
    daemon_threads = True


_BATCH_RE = re.compile(r"^/v1/messages/batches/([A-Za-z0-9_]+)(/results)?$")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    # Headers and body go out in two writes; with Nagle on, the body waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    fake: FakeMessagesServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: tests read srv.requests instead

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.send_header("request-id", "req_fake")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to tell it

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None, *, openai: bool = False) -> None:
        kind = _ERROR_TYPES.get(status, "api_error")
        if openai:  # the chat-completions error shape
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        else:
            body = {"type": "error", "error": {"type": kind, "message": message}}
        self._send(status, _canon(body), headers=headers)

    def _read_body(self) -> bytes:
        """Read this request's whole body, once.

        Every POST reads it before answering anything (401, 404, the 503 of the request bound):
        a reply that leaves the body unread on a keep-alive connection makes the server parse
        it as the next request line, and that next request gets an HTML 501.
        """
        raw = getattr(self, "_body", None)
        if raw is None:
            try:
                n = int(self.headers.get("content-length") or 0)
            except ValueError:
                n = 0
            raw = self.rfile.read(n) if n > 0 else b""
            self._body = raw
        return raw

    def _read_json(self) -> Any:
        return json.loads(self._read_body() or b"null")

    def _bounded(self) -> bool:
        fake = self.fake
        with fake._lock:
            total = fake.calls + fake.batch_calls
        if total >= fake.max_requests or fake._stop.is_set():
            self._error(503, "fake server request bound reached; stopping")
            threading.Thread(target=fake.stop, daemon=True).start()
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        fake = self.fake
        self._body = None  # type: ignore[assignment]  # one handler object serves every request of a keep-alive connection
        self._read_body()
        if not self.headers.get("x-api-key") and not self.headers.get("authorization"):
            self._error(401, "missing x-api-key header")
            return
        path = self.path.split("?", 1)[0]
        if path in (MESSAGES_PATH, CHAT_PATH):
            self._model_call(fake, path)
        elif path == "/v1/messages/batches":
            if not self._bounded():
                return
            with fake._lock:
                fake.batch_calls += 1
            try:
                view = fake._new_batch(self._read_json())
            except ValueError as e:
                self._error(400, f"invalid batch: {e}")
                return
            self._send(200, _canon(view))
        else:
            self._error(404, f"no route POST {path}")

    def _model_call(self, fake: FakeMessagesServer, path: str) -> None:
        """``POST /v1/messages`` or ``POST /v1/chat/completions``: faults, latency, the reply."""
        oa = path == CHAT_PATH
        if not self._bounded():
            return
        try:
            body = self._read_json()
            if not isinstance(body, dict) or "messages" not in body or "model" not in body:
                raise ValueError("expected an object with model and messages")
        except ValueError as e:
            with fake._lock:
                fake.calls += 1
            self._error(400, f"invalid request body: {e}", openai=oa)
            return
        h = fake.request_hash(body)
        fault = fake._choose_fault(body, h)
        with fake._lock:
            fake.calls += 1
            fake.requests.append({"path": path, "body": body, "hash": h, "fault": fault, "t": time.monotonic()})
            if fault is not None:
                fake.faults_injected[fault] = fake.faults_injected.get(fault, 0) + 1
        if fake._stop.wait(fake._delay(h)):
            return
        if fault in ("429", "503"):
            hdr = {} if fake.retry_after is None else {"retry-after": f"{fake.retry_after:g}"}
            what = "injected rate limit" if fault == "429" else "injected service unavailable"
            self._error(int(fault), what, headers=hdr, openai=oa)
            return
        if fault == "529":
            self._error(529, "injected overload", openai=oa)
            return
        if fault == "500":
            self._error(500, "injected internal error", openai=oa)
            return
        if fault == "slow" and fake._stop.wait(fake.slow_s):
            return
        try:
            msg = fake.build_chat_completion(body, h) if oa else fake.build_message(body, h)
        except Exception as e:  # a broken test handler should show up as a 500, not a hung client
            self._error(500, f"handler raised {type(e).__name__}: {e}", openai=oa)
            return
        data = _canon(msg)
        if fault == "malformed":
            data = data[: max(1, len(data) // 2)]
        else:
            with fake._lock:
                fake.replied += 1
        self._send(200, data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        fake = self.fake
        if self.path.split("?", 1)[0] == "/v1/messages/batches":
            if not self._bounded():
                return
            with fake._lock:
                fake.batch_calls += 1
                ids = sorted(fake._batches, reverse=True)  # newest first, as the API lists them
            data = [fake._batch_view(bid) for bid in ids]
            self._send(
                200,
                _canon(
                    {"data": data, "has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}
                ),
            )
            return
        m = _BATCH_RE.match(self.path.split("?", 1)[0])
        if not m:
            self._error(404, f"no route GET {self.path}")
            return
        if not self._bounded():
            return
        bid, results = m.group(1), m.group(2)
        with fake._lock:
            fake.batch_calls += 1
            b = fake._batches.get(bid)
            if b is not None and not results:
                b["polls"] += 1
        if b is None:
            self._error(404, f"no batch {bid}")
            return
        view = fake._batch_view(bid)
        if not results:
            self._send(200, _canon(view))
            return
        if view["processing_status"] != "ended":
            self._error(400, f"batch {bid} has not ended")
            return
        lines = b"".join(_canon(r) + b"\n" for r in b["results"])
        self._send(200, lines, ctype="application/binary")
