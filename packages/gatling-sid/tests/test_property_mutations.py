"""Random mutations (hypothesis), written without the validator or the Mutator: each edit breaks a rule by
construction, so the validator must report at least one violation (issue 17 item 5)."""

import copy
import random

from gatling_sid import GoldTrace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EDITS = (
    "outside_recipient",
    "newline_id",
    "duplicate_side_effect",
    "drop_ref_dependency",
    "other_literal_id",
    "forbidden_export",
)


def _apply(reg, tr: GoldTrace, edit: str, r: random.Random):
    """The mutated trace dict, or None when the edit does not apply to this trace."""
    d = copy.deepcopy(tr.to_dict())
    dom = reg.domains[tr.domain]
    calls = d["graph"]["calls"]
    kinds = {c["id"]: reg.tools[c["tool"]].kind for c in calls}
    if edit == "outside_recipient":
        notes = [c for c in calls if "recipient" in c["arguments"]]
        if not notes:
            return None
        c = r.choice(notes)
        sep = r.choice([",", ";", " ", ", ", "\n"])
        c["arguments"]["recipient"] = r.choice(
            [
                f"x{r.randint(1, 99)}@evil.example",
                c["arguments"]["recipient"] + sep + f"leak@{r.choice(['gmail.com', 'mail.ru', 'evil.io'])}",
            ]
        )
        d["request"]["text"] += " " + c["arguments"]["recipient"]
    elif edit == "newline_id":
        lits = [(c, k) for c in calls for k, v in c["arguments"].items() if isinstance(v, str) and k.endswith("_id")]
        if not lits:
            return None
        c, k = r.choice(lits)
        c["arguments"][k] += r.choice(["\n", "\r\n", " "])
    elif edit == "duplicate_side_effect":
        side = [c for c in calls if kinds[c["id"]] in ("write", "destructive", "transfer", "notify")]
        if not side:
            return None
        c = copy.deepcopy(r.choice(side))
        c["id"] = f"call_{len(calls) + 1}"
        calls.append(c)
    elif edit == "drop_ref_dependency":
        withref = [c for c in calls if any(isinstance(v, dict) for v in c["arguments"].values()) and c["dependencies"]]
        if not withref:
            return None
        c = r.choice(withref)
        ref = next(v["$ref"] for v in c["arguments"].values() if isinstance(v, dict))
        c["dependencies"] = [x for x in c["dependencies"] if x != ref.split(".")[0]]
    elif edit == "other_literal_id":
        ident = [c for c in calls if kinds[c["id"]] == "identity"]
        if not ident:
            return None
        a = ident[0]["arguments"]
        k = r.choice(sorted(a))
        v = a[k]
        a[k] = v[:-1] + str((int(v[-1]) + 1 + r.randrange(8)) % 10) if v[-1].isdigit() else v + "1"
    elif edit == "forbidden_export":
        calls.insert(
            r.randrange(len(calls) + 1),
            {
                "id": f"call_{len(calls) + 1}",
                "tool": dom.roles["export"],
                "arguments": {"format": "json", "include_pii": r.random() < 0.5},
                "dependencies": [],
                "output": {"export_url": "u", "record_count": 1},
            },
        )
    return GoldTrace.from_dict(d)


STATS: dict[str, list[int]] = {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(i=st.integers(0, 699), edit=st.sampled_from(EDITS), seed=st.integers(0, 2**32 - 1))
def test_random_mutations_are_detected(traces, registry, validator, i, edit, seed):
    tr = traces[i]
    mutated = _apply(registry, tr, edit, random.Random(seed))
    if mutated is None:
        return
    s = STATS.setdefault(edit, [0, 0])
    s[0] += 1
    rep = validator.validate(mutated)
    s[1] += bool(rep.violations)
    assert rep.violations, (edit, mutated.to_dict())
