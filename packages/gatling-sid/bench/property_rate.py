"""Detection rate of the random (hypothesis-test) mutations, 4,000 draws (PYTHONPATH=<old src> for another version)."""

import collections
import random
import sys
from pathlib import Path

from gatling_sid import DomainRegistry, ProceduralOracle, TraceValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_property_mutations import EDITS, _apply  # noqa: E402

reg = DomainRegistry.load()
oracle = ProceduralOracle(reg)
validator = TraceValidator(reg)
rng = random.Random(2024)
traces = [oracle.make_trace(rng, f"t{i}") for i in range(700)]
st: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
for k in range(4000):
    tr = rng.choice(traces)
    edit = rng.choice(EDITS)
    m = _apply(reg, tr, edit, random.Random(k))
    if m is None:
        continue
    st[edit][0] += 1
    st[edit][1] += bool(validator.validate(m).violations)
n = sum(a for a, _ in st.values())
d = sum(b for _, b in st.values())
print({e: f"{b}/{a}" for e, (a, b) in sorted(st.items())}, f"total {d}/{n} = {d / n:.1%}")
