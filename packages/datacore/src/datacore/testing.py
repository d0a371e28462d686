"""The conformance suite: every promise of the generator contract, checked against a generator.

``check_generator(make, n=..., shard_size=...)`` builds small datasets with the generator
that ``make()`` returns and checks, each by a named check:

* ``determinism``: byte-identical files for inline, a pool of 2 (fork and spawn start
  methods) and, when Ray is installed, local Ray;
* ``count``: exactly ``n`` records are written, as the manifest says, line by line;
* ``ids``: every record has a unique string ``id`` and a ``meta`` object;
* ``splits``: every record is in the split its key (or the generator's ``split_of``) names,
  and one split key never lands in two splits;
* ``encoding``: every line is the bytes datacore's one record encoder makes of the record it
  decodes to (so a generator's own pre-encoded writer cannot drift from the normal path);
* ``shard_size``: the delivered share of every declared stratum stays within its tolerance
  when only the shard size changes (and the run itself meets its targets);
* ``growth`` (generators that declare ``growable``): a finished dataset of fewer records, run
  again with ``n``, keeps its unchanged shards, makes only the rest, and ends byte-identical
  to a fresh run of ``n``;
* ``kill``: SIGKILL of the whole process group, and of the parent alone, at random moments,
  then resume, ends byte-identical to an uninterrupted run, with no worker left alive;
* ``failure``: a run that fails leaves no ``.tmp`` files and no ``.datacore/`` state;
* ``bad_config``: every factory in ``bad_configs`` fails with one line (a DatacoreError),
  and writes nothing.

A check that fails raises :class:`ConformanceError` naming the check and what differed.
The suite is itself tested against deliberately broken toy generators, one per check.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import DatacoreError
from .jsonl import read_jsonl
from .manifest import MANIFEST
from .runner import build_dataset
from .sequential import build_sequential, is_sequential
from .split import SPLITS, encode_key
from .strata import targets_of

__all__ = ["CHECKS", "ConformanceError", "check_generator", "dataset_digest"]

CHECKS = ("determinism", "count", "ids", "splits", "encoding", "shard_size", "growth", "kill", "failure", "bad_config")


class ConformanceError(AssertionError):
    """A generator broke a promise of the contract; the message names the check."""


def dataset_digest(out: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file a dataset's identity rests on: shards, manifest, telemetry."""
    root = Path(out)
    files = [root / MANIFEST, root / "telemetry.json"] + sorted(p for s in SPLITS for p in (root / s).glob("part-*.jsonl*"))
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


def _records(out: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    for split in SPLITS:
        for p in sorted((out / split).glob("part-*.jsonl*")):
            for rec in read_jsonl(p):
                yield split, rec


def _check_encoding(out: Path) -> None:
    import orjson

    from .jsonl import dumps, open_binary

    for split in SPLITS:
        for p in sorted((out / split).glob("part-*.jsonl*")):
            with open_binary(p) as f:
                for no, line in enumerate(f, 1):
                    ref = dumps(orjson.loads(line))
                    if ref != line:
                        raise ConformanceError(
                            f"encoding: {p.relative_to(out)}:{no} is not datacore's encoding of its record:"
                            f" {line[:120]!r} != {ref[:120]!r}"
                        )


def _check_growth(make: Callable[[], Any], tmp: Path, ref: dict[str, str], n: int, shard_size: int, seed: int) -> None:
    if not getattr(make(), "growable", False):
        return
    out = tmp / "growth"
    # A smaller dataset whose last shard is partial, so the resize must remake that one too.
    small = max(1, n // 2 + shard_size // 2) if shard_size > 1 else max(1, n // 2)
    _build(make, out, small, shard_size, seed, executor="inline", allow_shortfall=True)
    result = _run(make(), out, n, seed, shard_size=shard_size, executor="inline")
    kept = small // shard_size if small < n else 0
    total = -(-n // shard_size)
    if result.shards_run != total - kept:
        raise ConformanceError(f"growth: growing {small} -> {n} made {result.shards_run} shards; {total - kept} were new")
    got = dataset_digest(out)
    if got != ref:
        diff = sorted(k for k in set(got) | set(ref) if got.get(k) != ref.get(k))
        raise ConformanceError(f"growth: growing {small} -> {n} differs from a fresh run of {n} in {diff[:5]}")


def _leftovers(out: Path) -> list[str]:
    if not out.exists():
        return []
    bad = [p.relative_to(out).as_posix() for p in out.rglob("*.tmp")]
    if (out / ".datacore").exists():
        bad.append(".datacore/")
    return bad


def _run(gen: Any, out: Path, n: int, seed: int, *, shard_size: int, **kw: Any) -> Any:
    """One build of ``gen``: a sharded one, or a sequential loop (shard size, executor and
    workers do not apply to a loop, which runs in one process)."""
    if is_sequential(gen):
        keep = {k: v for k, v in kw.items() if k in ("allow_shortfall", "resume")}
        return build_sequential(gen, out, n, seed, progress=False, **keep)
    return build_dataset(gen, out, n, seed, shard_size=shard_size, progress=False, **kw)


def _build(make: Callable[[], Any], out: Path, n: int, shard_size: int, seed: int, **kw: Any) -> dict[str, str]:
    from .strata import ShortfallError

    try:
        _run(make(), out, n, seed, shard_size=shard_size, **kw)
    except ShortfallError as e:
        raise ConformanceError(f"delivery: n={n}, shard size {shard_size}: {e}") from None
    return dataset_digest(out)


def _first_diff(a: dict[str, str], b: dict[str, str]) -> str:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return k
    return "(none)"


class _Env:
    """Set environment variables for a block (the pool start method)."""

    def __init__(self, **values: str) -> None:
        self.values = values
        self.old: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self.values.items():
            self.old[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: Any) -> None:
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_determinism(
    make: Callable[[], Any], tmp: Path, n: int, shard_size: int, seed: int, ray: bool | None
) -> dict[str, str]:
    ref = _build(make, tmp / "inline", n, shard_size, seed, executor="inline")
    if is_sequential(make()):  # one process by design: a second run, and one in another process
        seq_runs: list[tuple[str, Callable[[], dict[str, str]]]] = [
            ("a second run", lambda: _build(make, tmp / "again", n, shard_size, seed)),
            ("a run in a forked child process", lambda: _child_build(make, tmp / "child", n, shard_size, seed)),
        ]
        for label, run in seq_runs:
            got = run()
            if got != ref:
                raise ConformanceError(f"determinism: {label} wrote other bytes than the first ({_first_diff(ref, got)} differs)")
        return ref
    runs: list[tuple[str, Callable[[], dict[str, str]]]] = [
        ("process pool of 2 (fork)", lambda: _fork_run(make, tmp / "fork", n, shard_size, seed)),
        ("process pool of 2 (spawn)", lambda: _spawn_run(make, tmp / "spawn", n, shard_size, seed)),
    ]
    if ray is None:
        import importlib.util

        ray = importlib.util.find_spec("ray") is not None
    if ray:
        runs.append(("local Ray", lambda: _build(make, tmp / "ray", n, shard_size, seed, executor="ray", workers=2)))
    for label, run in runs:
        got = run()
        if got != ref:
            raise ConformanceError(f"determinism: {label} wrote other bytes than inline ({_first_diff(ref, got)} differs)")
    return ref


_FORK_SECONDS: dict[str, float] = {}  # how long a pool run took: the window in which kills land


def _child_build(make: Callable[[], Any], out: Path, n: int, shard_size: int, seed: int) -> dict[str, str]:
    """A build in a forked child process (a sequential loop's "other process")."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            _run(make(), out, n, seed, shard_size=shard_size)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise ConformanceError(f"determinism: the build in a forked child failed (status {status})")
    _FORK_SECONDS["span"] = time.perf_counter() - t0
    return dataset_digest(out)


def _fork_run(make: Callable[[], Any], out: Path, n: int, shard_size: int, seed: int) -> dict[str, str]:
    t0 = time.perf_counter()
    with _Env(DATACORE_MP_START="fork"):
        digest = _build(make, out, n, shard_size, seed, executor="process", workers=2)
    _FORK_SECONDS["span"] = time.perf_counter() - t0
    return digest


def _spawn_run(make: Callable[[], Any], out: Path, n: int, shard_size: int, seed: int) -> dict[str, str]:
    with _Env(DATACORE_MP_START="spawn"):
        return _build(make, out, n, shard_size, seed, executor="process", workers=2)


def _check_count_ids_splits(make: Callable[[], Any], out: Path, n: int, checks: set[str]) -> None:
    import orjson

    from .split import Splitter

    gen = make()
    manifest = orjson.loads((out / MANIFEST).read_bytes())
    spec = manifest.get("spec", {})
    splitter = Splitter(spec.get("split_ratios", (0.8, 0.1, 0.1)), spec.get("split_salt", ""))
    records = 0
    ids: set[str] = set()
    key_split: dict[bytes, str] = {}
    for split, rec in _records(out):
        records += 1
        if "ids" in checks:
            rid = rec.get("id")
            if not isinstance(rid, str) or not rid:
                raise ConformanceError(f"ids: a record in {split} has no string id: {str(rec)[:200]}")
            if rid in ids:
                raise ConformanceError(f"ids: id {rid!r} appears twice")
            ids.add(rid)
            if not isinstance(rec.get("meta"), dict):
                raise ConformanceError(f"ids: record {rid} has no meta object")
        if "splits" in checks:
            key = encode_key(gen.split_key(rec))
            # A generator's own split_of (out-of-distribution splits) decides where it speaks.
            chosen = gen.split_of(rec) if callable(getattr(gen, "split_of", None)) else None
            expected = chosen if chosen is not None else splitter(key)
            if expected != split:
                raise ConformanceError(f"splits: a record in {split} has split key {key[:60]!r}, which belongs to {expected}")
            first = key_split.setdefault(key, split)
            if first != split:
                raise ConformanceError(f"splits: split key {key[:60]!r} is in both {first} and {split}")
    if "count" in checks:
        if records != n or manifest.get("records") != n:
            raise ConformanceError(f"count: asked {n} records; manifest says {manifest.get('records')}, files hold {records}")


def _shares(out: Path) -> dict[str, float]:
    import orjson

    delivery = orjson.loads((out / MANIFEST).read_bytes()).get("delivery") or {}
    return {r["stratum"]: r["delivered_share"] for r in delivery.get("strata", [])}


def _check_shard_size(make: Callable[[], Any], tmp: Path, ref_out: Path, n: int, shard_size: int, seed: int) -> None:
    targets = {t.stratum: t for t in targets_of(make(), n)}
    if not targets or is_sequential(make()):  # a loop has no shards
        return
    other = max(1, shard_size // 4) if shard_size > 4 else shard_size * 4
    _build(make, tmp / "shard_size", n, other, seed, executor="inline", allow_shortfall=True)
    a, b = _shares(ref_out), _shares(tmp / "shard_size")
    for name, t in targets.items():
        for label, shares in ((f"shard size {shard_size}", a), (f"shard size {other}", b)):
            if abs(shares.get(name, 0.0) - t.share) > t.tolerance + 1e-12:
                raise ConformanceError(
                    f"shard_size: stratum {name} got {shares.get(name, 0.0):.3f} with {label}, asked {t.share:.3f} +- {t.tolerance}"
                )


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[2] the process group id
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(d.name))
    return alive


def _killed_run(make: Callable[[], Any], out: Path, n: int, shard_size: int, seed: int, delay: float, whole_group: bool) -> None:
    """Start a build (pool of 2) in a forked child in its own process group and SIGKILL it after ``delay`` s."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.setpgid(0, 0)
            with _Env(DATACORE_MP_START="fork"):
                _run(make(), out, n, seed, shard_size=shard_size, executor="process", workers=2)
        except BaseException:
            code = 1
        os._exit(code)
    time.sleep(delay)
    try:
        os.killpg(pid, signal.SIGKILL) if whole_group else os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _group_alive(pid)
    if left:
        for p in left:
            os.kill(p, signal.SIGKILL)
        raise ConformanceError(f"kill: worker processes {left} outlived their killed parent")


def _check_kill(
    make: Callable[[], Any], tmp: Path, ref: dict[str, str], n: int, shard_size: int, seed: int, kills: int, rng: random.Random
) -> None:
    if not sys.platform.startswith("linux"):
        return
    span = _FORK_SECONDS.get("span")
    if span is None:
        t0 = time.perf_counter()
        if is_sequential(make()):
            _child_build(make, tmp / "timing", n, shard_size, seed)
        else:
            _fork_run(make, tmp / "timing", n, shard_size, seed)
        span = time.perf_counter() - t0
    span = max(0.05, span)
    for i in range(kills):
        out = tmp / f"kill{i}"
        whole = i % 2 == 0
        _killed_run(make, out, n, shard_size, seed, rng.uniform(0, span), whole)
        _killed_run(make, out, n, shard_size, seed, rng.uniform(0, span), not whole)  # a second kill into the same run
        got = _build(make, out, n, shard_size, seed, executor="inline")
        if got != ref:
            raise ConformanceError(
                f"kill: after SIGKILL ({'group' if whole else 'parent only'}) and resume, "
                f"{_first_diff(ref, got)} differs from an uninterrupted run"
            )


class _FailingGenerator:
    """Wraps a generator so its second shard fails after a few records (the failure check)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "write_shard_files":
            raise AttributeError(name)  # always go through generate_shard, which can fail midway
        return getattr(self._inner, name)

    def generate_shard(self, task: Any, telemetry: Any) -> Iterable[dict[str, Any]]:
        inner = self._inner
        if hasattr(inner, "write_shard_files") and not hasattr(inner, "generate_shard"):
            raise DatacoreError("injected failure before writing")
        for i, rec in enumerate(inner.generate_shard(task, telemetry)):
            if i >= 1:
                raise DatacoreError("injected failure")
            yield rec
        raise DatacoreError("injected failure")


class _FailingLoop:
    """A sequential loop whose first unit fails while it is written (as _FailingGenerator's
    shards do): the run has finished nothing, so it must leave nothing behind."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, loop: Any) -> Any:
        def write(*args: Any, **kw: Any) -> Any:
            raise DatacoreError("injected failure")

        loop.write = write
        self._inner.run(loop)
        raise DatacoreError("injected failure")


def _check_failure(make: Callable[[], Any], tmp: Path, n: int, shard_size: int, seed: int) -> None:
    out = tmp / "failure"
    gen = make()
    wrapped = _FailingLoop(gen) if is_sequential(gen) else _FailingGenerator(gen)
    try:
        _run(wrapped, out, n, seed, shard_size=shard_size, executor="inline")
    except DatacoreError:
        pass
    else:
        raise ConformanceError("failure: the injected failure did not fail the run")
    left = _leftovers(out)
    if left:
        raise ConformanceError(f"failure: a failed run left {left[:5]} behind")


def _check_bad_configs(bad_configs: Sequence[Callable[[], Any]], tmp: Path, n: int, shard_size: int) -> None:
    for i, bad in enumerate(bad_configs):
        out = tmp / f"bad{i}"
        try:
            gen = bad()
            _run(gen, out, n, 0, shard_size=shard_size, executor="inline")
        except DatacoreError as e:
            msg = str(e)
            if "\n" in msg.strip() or not msg.strip():
                raise ConformanceError(f"bad_config: bad config #{i} gave a message that is not one line: {msg!r}") from None
        except Exception as e:
            raise ConformanceError(
                f"bad_config: bad config #{i} raised {type(e).__name__}: {e} (expected a DatacoreError)"
            ) from None
        else:
            raise ConformanceError(f"bad_config: bad config #{i} was accepted and built a dataset")
        if out.exists() and any(out.iterdir()):
            raise ConformanceError(f"bad_config: bad config #{i} wrote {sorted(p.name for p in out.iterdir())[:5]}")


def check_generator(
    make: Callable[[], Any],
    *,
    n: int = 200,
    shard_size: int = 50,
    seed: int = 7,
    checks: Sequence[str] = CHECKS,
    bad_configs: Sequence[Callable[[], Any]] = (),
    ray: bool | None = None,
    kills: int = 2,
    workdir: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """Run the conformance checks on the generator ``make()`` builds; return seconds per check.

    ``make`` is called for every run (so each run starts from a fresh generator); it must be
    callable in a forked child.  ``ray=None`` runs the Ray check when Ray is installed.
    Raises :class:`ConformanceError` on the first broken promise.
    """
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; known: {', '.join(CHECKS)}")
    wanted = set(checks)
    rng = random.Random(seed)
    times: dict[str, float] = {}
    _FORK_SECONDS.clear()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="conformance-") as d:
        tmp = Path(d)

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                times[name] = round(time.perf_counter() - t0, 3)

        if "determinism" in wanted:
            ref = timed("determinism", lambda: _check_determinism(make, tmp, n, shard_size, seed, ray))
        else:
            ref = _build(make, tmp / "inline", n, shard_size, seed, executor="inline")
        if wanted & {"count", "ids", "splits"}:
            timed("count/ids/splits", lambda: _check_count_ids_splits(make, tmp / "inline", n, wanted))
        if "encoding" in wanted:
            timed("encoding", lambda: _check_encoding(tmp / "inline"))
        if "shard_size" in wanted:
            timed("shard_size", lambda: _check_shard_size(make, tmp, tmp / "inline", n, shard_size, seed))
        if "growth" in wanted:
            timed("growth", lambda: _check_growth(make, tmp, ref, n, shard_size, seed))
        if "kill" in wanted:
            timed("kill", lambda: _check_kill(make, tmp, ref, n, shard_size, seed, kills, rng))
        if "failure" in wanted:
            timed("failure", lambda: _check_failure(make, tmp, n, shard_size, seed))
        if "bad_config" in wanted:
            timed("bad_config", lambda: _check_bad_configs(bad_configs, tmp, n, shard_size))
    return times
