"""An LLM user simulator for the multi-turn dialogues (through ``datacore.llm``).

:class:`~gatling_sid.dialogue.DialogueMaker` makes a dialogue whose user turns come from the
procedural user simulator.  :class:`LLMUserSimulator` rewrites those user turns with a model that
plays the user, as tau-bench's user simulator does: its system prompt holds the user's **goal**, the
**hidden facts** (ids, date of birth, last four, values; revealed only when needed) and how the user
behaves in this dialogue (give identity details only when asked, agree or decline, pick a record when
asked); the conversation is shown from the user's side (the agent's words as the other party, tool
calls invisible), and each request names what that user turn must get across.  The agent's turns and
the tool calls stay the gold ones, so the trace is executed and graded as before.

Every rewritten dialogue is checked before it is kept:

* the validator (grounding reads every user turn: an argument value the user no longer states, or states
  differently, is a violation);
* the user's words hold no identifier-like detail (an id, a date, an e-mail, a number of 4+ digits, an
  amount) that is neither in what the procedural user had said by then nor in the agent's words:
  ``invented_detail`` (not among the hidden facts) or ``revealed_early`` (a hidden fact given before
  the agent asked, which would change the behaviour, e.g. ``ask_missing``).

A dialogue that fails keeps its procedural turns, and its lineage says so
(``meta.user_simulator = {"kind": "procedural-fallback", "reason": ..., "model": ...}``); every outcome is
counted (``user_sim.requests`` / ``accepted`` / ``rejected`` and ``user_sim.rejected_reason``), so nothing
is dropped silently.  An accepted one has ``meta.user_simulator = {"kind": "anthropic"|"openai", "model",
"turns"}``.  The client is the one the Anthropic oracle uses (``AnthropicClient``: response cache,
admission control, budget, cost in telemetry) or an ``OpenAIClient`` for OpenAI-compatible servers, so
with a cache a re-run asks nothing and writes the same bytes.  An unreachable server stops the run with
one line unless ``fallback="procedural"``; a spent budget raises ``BudgetExceeded``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import attrs

from .errors import GatlingError
from .models import GoldTrace, UserRequest
from .registry import DomainRegistry
from .text import humanize
from .validator import TraceValidator

__all__ = ["USER_SIMULATORS", "USER_SYSTEM_PROMPT", "LLMUserSimulator"]

USER_SIMULATORS = ("procedural", "anthropic", "openai")

USER_SYSTEM_PROMPT = """You play a customer writing to the support assistant of a {domain} service. Stay in role:
you are the user, not the assistant. Write only the customer's next message: first person, plain text, one to
three sentences, in your own words (vary tone and phrasing; do not copy the note word for word).

Your goal: {goal}
How you behave in this conversation: {behaviour}
Hidden facts (yours; reveal one only when your next message must get it across): {facts}

Rules:
- every id, date, amount, number and e-mail address you mention must be copied exactly as written above or in
  the note (same characters and format: never reformat a date, round an amount or change an id);
- never invent a detail (an id, a date, a number, an address) that is not given to you;
- do not reveal a hidden fact before the note of that message asks for it; do not add new requests."""

_BEHAVIOUR = {
    "ask_missing": "At first you leave out your identity details; give them when the assistant asks for them.",
    "confirm_in_words": "When the assistant asks you to confirm the irreversible action, you agree clearly.",
    "decline_in_words": "When the assistant asks you to confirm the irreversible action, you decline clearly.",
    "refuse_forbidden": "You ask for a bulk export of records; you are not told whether it is allowed.",
    "clarify": "You do not say which record you mean at first; when the assistant lists them, you pick one.",
    "no_call": "You make small talk or ask something the service's tools cannot answer.",
    "parallel": "You ask for two things in one message.",
    "operation": "You state every value the request needs in your message.",
}
_DETAIL = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail
    r"|\b[0-9]{4}-[0-9]{2}-[0-9]{2}\b"  # ISO date
    r"|\b[A-Za-z]{2,6}-[0-9A-Za-z]{3,}\b"  # an id like CUS-123456
    r"|\b[0-9][0-9,]*\.[0-9]+\b"  # an amount
    r"|\b[0-9]{4,}\b"  # a number of 4+ digits (last four, ids)
)
_YES = re.compile(r"\b(yes|yeah|yep|sure|go ahead|confirm(ed)?|proceed|please do|do it|ok(ay)?)\b", re.I)
_NO = re.compile(r"\b(no|nope|don'?t|do not|leave it|keep it|stop|cancel that|changed my mind|not now)\b", re.I)
_WORD = re.compile(r"[A-Za-z]{5,}")
_COMMON = frozenset(
    "about after again along also please thanks thank could would should there their which while where these those "
    "hello today right quick really since first other still hope great maybe think".split()
)
_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _openai_client(config: Any) -> Any:
    from datacore.llm import OpenAIClient

    key = (os.getpid(), config.base_url, config.cache_dir, config.budget_usd)
    c = _CLIENTS.get(key)
    if c is None:
        n = config.concurrency or config.batch_size
        c = _CLIENTS[key] = OpenAIClient(
            base_url=config.base_url, cache_dir=config.cache_dir, budget_usd=config.budget_usd, max_in_flight=n
        )
    return c


def _details(text: str) -> list[str]:
    return [m.group(0).rstrip(".,") for m in _DETAIL.finditer(text)]


class LLMUserSimulator:
    """Rewrites a procedural dialogue's user turns with a model playing the user (see the module docstring)."""

    def __init__(self, registry: DomainRegistry, config: Any, client: Any = None, kind: str | None = None) -> None:
        self.registry = registry
        self.config = config
        self.kind = kind or getattr(config, "user_simulator", "anthropic")
        if self.kind not in USER_SIMULATORS[1:]:
            raise GatlingError(f"user_simulator: got {self.kind!r}; an LLM simulator is one of anthropic, openai")
        self.validator = TraceValidator(registry)
        self._client = client
        self._own = client is None

    @property
    def client(self) -> Any:
        """The LLM client (the worker process's shared one unless one was given)."""
        if self._client is None:
            if self.kind == "anthropic":
                from .anthropic_oracle import _shared_client

                self._client = _shared_client(self.config)
            else:
                self._client = _openai_client(self.config)
        return self._client

    # -- prompts -----------------------------------------------------------------------
    def system_prompt(self, trace: GoldTrace) -> str:
        """The user's instructions: goal, hidden facts and behaviour (the same for every turn of a dialogue)."""
        dia = trace.meta["dialogue"]
        d = self.registry.domain(trace.domain)
        facts = self.hidden_facts(trace)
        turns = dia["turns"]
        first = turns[0]["text"]
        goal = f"{humanize(trace.intent)} ({humanize(d.name)}); in your first message you would say something like: {first}"
        return USER_SYSTEM_PROMPT.format(
            domain=humanize(d.name),
            goal=goal,
            behaviour=_BEHAVIOUR.get(dia["behaviour"], "Act as the note says."),
            facts=json.dumps(facts, sort_keys=True),
        )

    def hidden_facts(self, trace: GoldTrace) -> dict[str, Any]:
        """The request's slots plus the identity details the identity check is called with."""
        from .models import is_ref

        d = self.registry.domain(trace.domain)
        facts = {k: v for k, v in trace.request.slots.items() if v not in (None, "")}
        ident = d.roles.get("identity")
        for c in trace.graph.calls:
            if c.tool == ident:
                facts.update({k: v for k, v in c.arguments.items() if not is_ref(v)})
        return facts

    def _messages(self, turns: list[dict[str, Any]], upto: int, said: list[str]) -> list[dict[str, Any]]:
        """The conversation from the user's side, ending with a note on what user turn ``upto`` must get across."""
        msgs: list[dict[str, Any]] = []
        pending: list[str] = []
        k = 0
        for i, t in enumerate(turns[: upto + 1]):
            if t["role"] == "assistant":
                if "text" in t:
                    pending.append(t["text"])
                continue
            note = f"(Note for your next message: it must get across: {t['text']})"
            if i == upto:
                head = "Assistant: " + "\n".join(pending) if pending else "(You start the conversation.)"
                msgs.append({"role": "user", "content": f"{head}\n{note}"})
                break
            head = "Assistant: " + "\n".join(pending) if pending else "(You start the conversation.)"
            msgs.append({"role": "user", "content": f"{head}\n{note}"})
            msgs.append({"role": "assistant", "content": said[k]})
            k += 1
            pending = []
        return msgs

    def _request(self, trace: GoldTrace, upto: int, said: list[str]) -> Any:
        from datacore.llm import LLMRequest

        return LLMRequest(
            model=self.config.model,
            messages=self._messages(trace.meta["dialogue"]["turns"], upto, said),
            system=self.system_prompt(trace),
            max_tokens=300,
            temperature=1.0,
            metadata={"trace_id": trace.trace_id, "turn": upto},
        )

    # -- rewriting ---------------------------------------------------------------------
    def rewrite_many(self, traces: list[GoldTrace], telemetry: Any = None) -> list[GoldTrace]:
        """Each dialogue with its user turns written by the model, or kept procedural (counted) where that fails.

        Turns are asked for in rounds: round r sends the r-th user turn of every dialogue still going,
        all at once (``complete_many``), since each turn depends on the ones before it.
        """
        from datacore import Telemetry

        tel = telemetry if telemetry is not None else Telemetry()
        user_idx = [[i for i, t in enumerate(tr.meta["dialogue"]["turns"]) if t["role"] == "user"] for tr in traces]
        said: list[list[str]] = [[] for _ in traces]
        failed: list[str | None] = [None] * len(traces)
        r = 0
        while True:
            live = [j for j, idx in enumerate(user_idx) if failed[j] is None and r < len(idx)]
            if not live:
                break
            reqs = [self._request(traces[j], user_idx[j][r], said[j]) for j in live]
            replies = self.client.complete_many(reqs)
            self._stop_on(replies)
            for j, resp in zip(live, replies):
                text = (getattr(resp, "text", "") or "").strip() if getattr(resp, "ok", False) else ""
                if not text:
                    failed[j] = f"llm_error:{getattr(resp, 'error_kind', None) or 'empty'}"
                else:
                    said[j].append(text)
            r += 1
        out = []
        for j, tr in enumerate(traces):
            tel.count("user_sim.requests")
            reason = failed[j] or self._check(tr, user_idx[j], said[j])
            new = None
            if reason is None:
                new = self._with_turns(tr, user_idx[j], said[j])
                rep = self.validator.validate(new)
                if not rep.ok:
                    reason = "validator:" + ",".join(sorted(rep.rules))
                    for v in rep.violations:
                        tel.observe("user_sim.rejected_rule", v.rule)
                    new = None
            if new is None:
                tel.count("user_sim.rejected")
                tel.observe("user_sim.rejected_reason", (reason or "?").split(":", 1)[0])
                meta = {
                    **tr.meta,
                    "user_simulator": {"kind": "procedural-fallback", "model": self.config.model, "reason": reason},
                }
                out.append(attrs.evolve(tr, meta=meta))
            else:
                tel.count("user_sim.accepted")
                out.append(new)
        return out

    def _stop_on(self, replies: list[Any]) -> None:
        if any(getattr(r, "error_kind", None) == "budget" for r in replies):
            from datacore.llm import BudgetExceeded

            c = self.client
            raise BudgetExceeded(float(getattr(c, "spent_usd", 0.0)), float(getattr(c, "budget_usd", None) or 0.0))
        if self.config.fallback != "procedural":
            down = [r for r in replies if getattr(r, "error_kind", None) in ("connection", "timeout")]
            if down:
                raise GatlingError(
                    f"user simulator unreachable ({getattr(down[0], 'error', '') or 'connection error'}); pass "
                    "--fallback procedural to keep procedural user turns instead"
                )

    def _check(self, trace: GoldTrace, idx: list[int], said: list[str]) -> str | None:
        """Why the model's turns cannot stand in for the procedural ones, or None.

        ``invented_detail`` / ``revealed_early``: an identifier-like detail the user should not have said;
        ``wrong_answer``: the answer to a confirmation question is not the yes (or no) the dialogue needs, or
        the answer to a clarifying question does not name the record the dialogue goes on with;
        ``off_topic``: a turn shares no content word (5+ letters) with what it had to get across.
        """
        turns = trace.meta["dialogue"]["turns"]
        behaviour = trace.meta["dialogue"]["behaviour"]
        for k, (i, text) in enumerate(zip(idx, said)):
            if behaviour in ("confirm_in_words", "decline_in_words") and k == 1:
                yes, no = bool(_YES.search(text)), bool(_NO.search(text))
                if (yes, no) != ((True, False) if behaviour == "confirm_in_words" else (False, True)):
                    return f"wrong_answer:turn {i}"
                continue
            if behaviour == "clarify" and i > 0 and turns[i - 1].get("asks"):  # the record the user picks must be named
                if any(x not in text for x in _details(turns[i]["text"])):
                    return f"wrong_answer:turn {i}"
            keys = {w.lower() for w in _WORD.findall(turns[i]["text"])} - _COMMON
            if keys and not keys & {w.lower() for w in _WORD.findall(text)}:
                return f"off_topic:turn {i}"
        facts = self.hidden_facts(trace)
        hidden = json.dumps(facts, sort_keys=True)
        for k, (i, text) in enumerate(zip(idx, said)):
            known = "\n".join(
                t.get("text", "") for n, t in enumerate(turns[: i + 1]) if t["role"] == "assistant" or n in idx[: k + 1]
            )
            for x in _details(text):
                if x in known:
                    continue
                if x in hidden or any(x in turns[n].get("text", "") for n in idx):
                    return f"revealed_early:turn {i}: {x}"
                return f"invented_detail:turn {i}: {x}"
        return None

    def _with_turns(self, trace: GoldTrace, idx: list[int], said: list[str]) -> GoldTrace:
        dia = trace.meta["dialogue"]
        turns = [dict(t) for t in dia["turns"]]
        for i, text in zip(idx, said):
            turns[i]["text"] = text
        meta = {
            **trace.meta,
            "dialogue": {**dia, "turns": turns},
            "user_simulator": {"kind": self.kind, "model": self.config.model, "turns": len(said)},
        }
        req = trace.request
        return attrs.evolve(trace, request=UserRequest(said[0], req.intent, req.domain, req.slots), meta=meta)

    def close(self, telemetry: Any) -> None:
        """Add the client's counters since the last shard; a client handed in is closed."""
        if self._client is not None:
            telemetry.merge(self._client.telemetry(reset=True))
            if not self._own:
                self._client.close()
            self._client = None
