"""A run-wide LLM budget: one file-locked ledger shared by every worker process of a run.

``AnthropicClient(budget_usd=...)`` alone holds the budget per process, so W workers may spend
W times it.  A :class:`BudgetLedger` is a small JSON file (``{"budget_usd", "spent_usd",
"charges"}``) with a lock file beside it; every client attached to it checks the run's spending
before each call and adds each call's cost after it, under an exclusive ``flock``.  A run
therefore overshoots its budget by at most the calls already in flight when the budget ran out
(at most ``max_in_flight`` per worker), never by a factor of the worker count.

Wiring: the process that starts the run creates the ledger (``BudgetLedger.create(path,
budget_usd)``, e.g. under ``OUT/.datacore/``) and exports its path in ``DATACORE_LLM_LEDGER``
before starting the workers; every ``AnthropicClient`` made in those workers (forked or
spawned: the environment is inherited) attaches to it by itself.  The ledger survives a
restart, so a resumed run goes on counting what the killed one spent.  It needs a file system
every worker shares (one machine, or a shared mount for a Ray cluster).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .types import BudgetExceeded, LLMConfigError

__all__ = ["LEDGER_ENV", "BudgetLedger"]

LEDGER_ENV = "DATACORE_LLM_LEDGER"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class BudgetLedger:
    """A file-locked budget ledger at ``path`` (see the module docstring).

    ``BudgetLedger(path)`` attaches to an existing ledger; :meth:`create` makes (or re-opens)
    one with a budget.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if fcntl is None:  # pragma: no cover
            raise LLMConfigError("BudgetLedger needs fcntl (POSIX); hold the budget per process on this platform")
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        if not self.path.exists():
            raise LLMConfigError(f"{self.path}: no LLM budget ledger here (make one with BudgetLedger.create)")

    @classmethod
    def create(cls, path: str | os.PathLike[str], budget_usd: float) -> BudgetLedger:
        """Make the ledger at ``path`` with ``budget_usd``, or set the budget of an existing one (spending kept)."""
        if (
            isinstance(budget_usd, bool)
            or not isinstance(budget_usd, (int, float))
            or not math.isfinite(budget_usd)
            or budget_usd < 0
        ):
            raise LLMConfigError(f"BudgetLedger.budget_usd: expected a number >= 0, got {budget_usd!r}")
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        led = cls.__new__(cls)
        led.path = p
        led.lock_path = p.with_name(p.name + ".lock")
        with led._locked():
            state = led._read() if p.exists() else {"spent_usd": 0.0, "charges": 0}
            state["budget_usd"] = float(budget_usd)
            led._write(state)
        return led

    @classmethod
    def from_env(cls) -> BudgetLedger | None:
        """The ledger named by ``DATACORE_LLM_LEDGER``, or None when it is not set."""
        p = os.environ.get(LEDGER_ENV)
        return cls(p) if p else None

    # ------------------------------------------------------------------ file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            float(state["budget_usd"]), float(state["spent_usd"])
            return state
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LLMConfigError(f"{self.path}: not an LLM budget ledger: {e}") from None

    def _write(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".ledger.", suffix=".tmp", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, sort_keys=True)
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------ the budget

    def state(self) -> dict[str, Any]:
        """``{"budget_usd", "spent_usd", "charges"}`` as of now."""
        with self._locked():
            return self._read()

    @property
    def budget_usd(self) -> float:
        return float(self.state()["budget_usd"])

    @property
    def spent_usd(self) -> float:
        return float(self.state()["spent_usd"])

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` when the run has spent its budget."""
        st = self.state()
        if float(st["spent_usd"]) >= float(st["budget_usd"]):
            raise BudgetExceeded(float(st["spent_usd"]), float(st["budget_usd"]))

    def charge(self, usd: float) -> float:
        """Add one call's cost; return the run's spending after it."""
        with self._locked():
            st = self._read()
            st["spent_usd"] = math.fsum([float(st["spent_usd"]), float(usd)])
            st["charges"] = int(st.get("charges", 0)) + 1
            self._write(st)
            return float(st["spent_usd"])

    def __repr__(self) -> str:
        return f"BudgetLedger({str(self.path)!r})"
