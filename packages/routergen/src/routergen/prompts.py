"""Jinja2 prompt templates a recipe may give for the model requests routergen sends.

``prompts.naive`` replaces the user message of each NAIVE sample request, ``prompts.fill``
that of each templater-llm slot-filling request.  Templates render in Jinja2's sandbox with
``StrictUndefined``, so a misspelt variable is an error, and each is rendered once at load
with example values: a syntax error or an unknown variable is reported at the recipe's line.

Variables: ``naive``: task, schema (JSON text), examples (list of JSON texts), iteration,
index, arm, temperature; ``fill``: task, template, slots (list of {name, examples}),
iteration, index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROMPT_KINDS: dict[str, tuple[str, ...]] = {
    "naive": ("task", "schema", "examples", "iteration", "index", "arm", "temperature"),
    "fill": ("task", "template", "slots", "iteration", "index"),
}

_EXAMPLE: dict[str, dict[str, Any]] = {
    "naive": {"task": "t", "schema": "{}", "examples": ["{}"], "iteration": 0, "index": 0, "arm": "naive", "temperature": 1.0},
    "fill": {"task": "t", "template": "{x}", "slots": [{"name": "x", "examples": ["a"]}], "iteration": 0, "index": 0},
}


class PromptTemplateError(ValueError):
    """A template that does not compile or render; ``kind`` names it."""

    def __init__(self, kind: str, msg: str) -> None:
        self.kind = kind
        super().__init__(msg)


class PromptTemplates:
    """Compiled templates by kind (only those the recipe gives)."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self.sources = dict(sources)
        self._t: dict[str, Any] = {}
        for kind, src in sources.items():
            if kind not in PROMPT_KINDS:
                raise PromptTemplateError(kind, f"unknown prompt (allowed: {', '.join(PROMPT_KINDS)})")
            if not isinstance(src, str) or not src.strip():
                raise PromptTemplateError(kind, "must be a non-empty Jinja2 template string")
            try:
                self._t[kind] = env.from_string(src)
                self._t[kind].render(**_EXAMPLE[kind])
            except jinja2.TemplateSyntaxError as e:
                raise PromptTemplateError(kind, f"Jinja2 syntax error on template line {e.lineno}: {e.message}") from None
            except jinja2.UndefinedError as e:
                raise PromptTemplateError(kind, f"{e.message} (variables: {', '.join(PROMPT_KINDS[kind])})") from None
            except jinja2.TemplateError as e:  # sandbox refusals and the like
                raise PromptTemplateError(kind, f"template error: {e}") from None

    def has(self, kind: str) -> bool:
        """Whether the recipe gives a template for ``kind``."""
        return kind in self._t

    def render(self, kind: str, **values: Any) -> str:
        """The rendered prompt."""
        return str(self._t[kind].render(**values))
