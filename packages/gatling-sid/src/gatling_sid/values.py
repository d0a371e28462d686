"""Schema-driven value generation: a random value that satisfies a (registry-style) JSON Schema.

Supports what the registry uses: objects, arrays, enums, integer/number ranges (inclusive and
exclusive), booleans, ``format: date`` / ``email``, and ``pattern`` in the regex subset the
registry writes (literals, ``[0-9]``, ``[0-9a-f]``, ``[A-Z]``, ``{n}`` counts, ``^``/``$``).
Field names pick realistic text (names, notes, subjects) where the schema allows free text.
"""

from __future__ import annotations

import _random
import functools
import math
import random
import re
from collections.abc import Callable
from typing import Any

from .errors import GatlingError

FIRST = (
    "Maria Liam Aisha Noah Chen Olivia Mateo Priya Lucas Fatima Ethan Yuki Sofia Omar Hannah Diego Amara Jonas Leila "
    "Kai Elena Tariq Grace Ivan Mei Samuel Zara Hugo Nia Felix Ana Ravi Clara Kwame Ingrid Tomas Lina Arjun Rosa "
    "Emeka Freya Pablo Sana Viktor Keiko Andre Nadia Oscar Ayla Bruno"
).split()
LAST = (
    "Lopez Kim Okafor Schmidt Nguyen Rossi Patel Haddad Johansson Silva Tanaka Brown Novak Mensah Dubois Ivanova "
    "Garcia Chen Murphy Kowalski Adeyemi Larsen Moreau Yilmaz Fischer Costa Singh Ali Walsh Petrov Sato Ortiz "
    "Eriksen Mbeki Romano Hughes Park Lindqvist Alvarez Nakamura Reyes Khan Bauer Quinn Varga Osei Holm Duarte"
).split()
WORDS = (
    "amber basil cedar delta ember fable garnet harbor indigo juniper kestrel lagoon meadow nectar orchid pioneer "
    "quarry raven summit tundra umber velvet willow xenon yarrow zephyr atlas beacon cobalt dune falcon glacier "
    "heron island jasper lotus maple nova opal prairie quill ridge sierra timber vista"
).split()
NOTE_BITS = (
    "prefers email contact",
    "called last week about billing",
    "moved to a new address in spring",
    "asked for paper statements",
    "long-time client since 2016",
    "spoke with support twice this month",
    "requested a callback after 5pm",
    "uses the mobile app",
    "has a pending document review",
    "was sent the annual summary",
    "verified phone number on file",
    "no open complaints",
    "travelling until the end of the month",
    "prefers weekend appointments",
    "account flagged for a routine audit",
    # benign look-alikes of instructions: compliant traces carry them and the agent does not act on them
    "asked us to ignore the previous address on file",
    "please disregard the earlier email about billing",
    "said to skip the paper copy this year",
    "wants all statements sent to the address on file",
)
# Free text by what a field means (issue 17: "courier note prairie sierra 87" taught nothing).
_PHRASES = {
    "delivery": (
        "Leave the parcel with the concierge",
        "Ring the bell at the side door",
        "Call on arrival, the buzzer is broken",
        "Use the loading dock entrance",
        "Parcel locker in the lobby is fine",
        "Please do not leave it outside",
        "Deliver after 2pm on weekdays",
        "Gate code is available at reception",
    ),
    "diet": (
        "No nuts, please",
        "Vegetarian",
        "Gluten-free",
        "Lactose intolerant",
        "No shellfish",
        "Low sodium",
        "Vegan, no honey",
        "Mild penicillin allergy",
    ),
    "visit": (
        "Annual check-up",
        "Follow-up visit",
        "Persistent cough for two weeks",
        "Routine vaccination",
        "Knee pain after running",
        "Prescription review",
        "Lower back pain",
        "Second opinion on test results",
    ),
    "justification": (
        "Customer requested an early payout",
        "Covered by the approved annual budget",
        "Refund for a duplicate charge",
        "Replacement of a damaged item",
        "Goodwill credit after a service outage",
        "Deposit agreed in the signed contract",
    ),
    "memo": ("March rent", "Invoice settlement", "Deposit for the order", "Quarterly fee", "Refund, duplicate charge", "Gift"),
    "request": (
        "Quiet room on a high floor",
        "Late check-in around 22:00",
        "Extra pillows, please",
        "A baby cot in the room",
        "Window seat if possible",
        "Wheelchair access needed",
    ),
    "dedication": ("For Mum, with love", "Happy birthday, Sam!", "In memory of Grandpa Joe", "Congratulations on the new job"),
    "subject": (
        "Your monthly summary",
        "Spring offers for members",
        "Reminder: your appointment next week",
        "Action needed: confirm your details",
        "Thank you for your order",
        "What's new this month",
        "Your receipt",
        "Important update to your account",
    ),
    "label": ("Main", "Backup", "Family", "Work", "Weekend", "Travel", "Home office", "Primary", "Spare", "Shared", "Personal"),
    "place": ("Downtown", "Riverside", "North Harbor", "Westfield", "Old Town", "Airport", "University Quarter", "Lakeside"),
    "city": ("Lisbon", "Toronto", "Osaka", "Nairobi", "Denver", "Krakow", "Auckland", "Glasgow", "Porto", "Montreal"),
    "company": ("Northwind Traders", "Bluebird Grocers", "Harbor Mutual", "Summit Outfitters", "Cedar & Co", "Atlas Freight"),
    "insurer": ("Harbor Mutual", "Evergreen Insurance", "Keystone Assurance", "Northstar Life"),
    "carrier": ("Bluewave Mobile", "Skyline Telecom", "Orbit Wireless", "Metro Connect"),
    "query": ("recent", "open items", "last quarter", "pending", "this year", "renewals", "high value"),
    "street": ("Main Street", "Oak Avenue", "Harbour Road", "Station Lane", "Park Terrace", "Mill Road", "King Street"),
    "pet": ("Bella", "Milo", "Luna", "Charlie", "Coco", "Max", "Nala", "Oscar", "Pepper", "Rocky", "Daisy", "Simba"),
    "item": ("Winter jacket", "Coffee grinder", "Running shoes", "Desk lamp", "Bluetooth speaker", "Backpack", "Kettle"),
    "task": ("Replace the kitchen tap", "Paint the hallway", "Fix the garden gate", "Service the boiler", "Clean the gutters"),
    "device": ("Pixel 8", "iPhone 15", "Galaxy S23", "ThinkPad T14", "MacBook Air", "iPad mini"),
    "test": ("Full blood count", "Lipid panel", "Thyroid function", "Vitamin D level", "Urinalysis"),
    "summary": (
        "Customer reported the issue twice; awaiting documents",
        "Reviewed the file; no action needed for now",
        "Escalated to the second line after the call",
        "Resolved by phone; confirmation sent",
        "Waiting for the signed form from the customer",
    ),
    "handover": (
        "Open tickets handed to the team lead",
        "Sam covers the weekly report",
        "Client calls go to the shared inbox",
        "Handover meeting booked for Friday",
        "Notes are in the team drive",
    ),
    "reply": ("Thanks, that works for me", "Could you send it again?", "Received, thank you", "Yes, please go ahead"),
    "rule": ("Block traffic from unknown hosts", "Allow office IPs only", "Alert on five failed logins", "Deny outbound SMTP"),
}
# (substring of the field name, pool); the first match wins
_TEXT_BY_NAME = (
    ("dietary", "diet"),
    ("allerg", "diet"),
    ("kitchen", "diet"),
    ("reason", "visit"),
    ("justification", "justification"),
    ("memo", "memo"),
    ("po_note", "memo"),
    ("special_request", "request"),
    ("listing_title", "item"),
    ("dedication", "dedication"),
    ("courier", "delivery"),
    ("shipping", "delivery"),
    ("pickup_note", "delivery"),
    ("access", "delivery"),
    ("handover", "handover"),
    ("instruction", "delivery"),
    ("subject", "subject"),
    ("title", "subject"),
    ("caption", "subject"),
    ("campaign", "subject"),
    ("summary", "summary"),
    ("strategy", "summary"),
    ("description", "summary"),
    ("desc", "summary"),
    ("comment", "summary"),
    ("advice", "summary"),
    ("message", "summary"),
    ("body", "summary"),
    ("text", "summary"),
    ("reply", "reply"),
    ("rule", "rule"),
    ("pet_name", "pet"),
    ("label", "label"),
    ("nickname", "label"),
    ("workspace", "label"),
    ("origin_city", "city"),
    ("merchant", "company"),
    ("insurer", "insurer"),
    ("carrier", "carrier"),
    ("counterparty", "company"),
    ("vasp", "company"),
    ("item", "item"),
    ("task", "task"),
    ("job", "task"),
    ("device", "device"),
    ("test", "test"),
)
_PERSON = ("beneficiary", "full", "owner", "approver", "reported", "inspector", "hygienist")
_PLACE = ("branch", "club", "store", "location", "court")
_ADDRESS = ("address",)
_NOTES = ("notes", "note", "intake_note", "case_summary", "scope_summary", "strategy_note")


PAT_TOKEN = re.compile(r"\[(?:\\.|[^\]\\])+\]|\((?:[A-Za-z0-9 _-]+\|)*[A-Za-z0-9 _-]+\)|\\.|.")
_ALPH = {
    "[0-9]": "0123456789",
    "[0-9a-f]": "0123456789abcdef",
    "[A-Z]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "[a-z]": "abcdefghijklmnopqrstuvwxyz",
}


def _char_class(tok: str, pat: str) -> str:
    """The characters of a bracket class such as ``[A-HJ-NPR-Z0-9]`` (no negation)."""
    body = tok[1:-1]
    if body.startswith("^"):
        raise GatlingError(f"pattern {pat!r}: a negated class {tok!r} cannot be generated")
    chars: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            c = body[i + 1]
            i += 1
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = c, body[i + 2]
            if ord(hi) < ord(lo):
                raise GatlingError(f"pattern {pat!r}: range {lo}-{hi} in {tok!r} is reversed")
            chars += [chr(x) for x in range(ord(lo), ord(hi) + 1)]
            i += 3
        else:
            chars.append(c)
            i += 1
    return "".join(dict.fromkeys(chars))


_pattern_cache: dict[str, list[tuple[Any, int, int]]] = {}
_COUNT = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}")


def _compile_pattern(pat: str) -> list[tuple[Any, int, int]]:
    """Pattern -> [(alphabet, min count, max count)]; a literal character is a one-letter alphabet.

    Raises :class:`GatlingError` for anything outside the subset (alternation, groups, ``*``...).
    """
    got = _pattern_cache.get(pat)
    if got is not None:
        return got
    body = pat[1:] if pat.startswith("^") else pat
    body = body[:-1] if body.endswith("$") else body
    parts: list[tuple[Any, int, int]] = []
    i = 0
    while i < len(body):
        m = PAT_TOKEN.match(body, i)
        assert m is not None
        tok = m.group(0)
        i = m.end()
        alph: Any
        if tok in _ALPH:
            alph = _ALPH[tok]
        elif len(tok) > 2 and tok[0] == "[":
            alph = _char_class(tok, pat)
        elif len(tok) > 2 and tok[0] == "(":
            alph = tuple(tok[1:-1].split("|"))
        elif tok.startswith("\\"):
            alph = tok[1]
        elif tok in "[](){}*+?|.^$":
            raise GatlingError(
                f"pattern {pat!r}: only literals, bracket classes, (a|b) groups of literals and "
                f"{{n}} / {{m,n}} counts can be generated (found {tok!r})"
            )
        else:
            alph = tok
        lo = hi = 1
        if i < len(body) and body[i] in "?+*":
            lo, hi = {"?": (0, 1), "+": (1, 8), "*": (0, 8)}[body[i]]
            i += 1
        elif i < len(body) and body[i] == "{":
            cm = _COUNT.match(body, i)
            if cm is None:
                raise GatlingError(f"pattern {pat!r}: malformed count at position {i + (pat != body)}")
            lo = int(cm.group(1))
            hi = lo if cm.group(2) is None else (int(cm.group(3)) if cm.group(3) else lo + 8)
            if hi < lo:
                raise GatlingError(f"pattern {pat!r}: count {cm.group(0)} has max < min")
            i = cm.end()
        parts.append((alph, lo, hi))
    _pattern_cache[pat] = parts
    return parts


_plans: dict[str, tuple[tuple[int, Any, int, int], ...]] = {}
_LIT, _DIGITS, _HEX, _CHOICE, _VAR = 0, 1, 2, 3, 4


def _plan(pat: str) -> tuple[tuple[int, Any, int, int], ...]:
    """The compiled pattern as draw steps (code, payload, lo, hi); adjacent fixed literals merged."""
    got = _plans.get(pat)
    if got is not None:
        return got
    steps: list[tuple[int, Any, int, int]] = []
    for alph, lo, hi in _compile_pattern(pat):
        if lo != hi:
            steps.append((_VAR, alph, lo, hi))
        elif len(alph) == 1:
            if steps and steps[-1][0] == _LIT:
                steps[-1] = (_LIT, steps[-1][1] + alph[0] * lo, 0, 0)
            else:
                steps.append((_LIT, alph[0] * lo, 0, 0))
        elif alph == "0123456789":
            steps.append((_DIGITS, 10**lo, lo, lo))
        elif alph == "0123456789abcdef":
            steps.append((_HEX, 4 * lo, lo, lo))
        else:
            steps.append((_CHOICE, alph, lo, lo))
    plan = _plans[pat] = tuple(steps)
    return plan


def _draw(rng: random.Random, alph: Any, n: int) -> str:
    if len(alph) == 1:
        return str(alph[0] * n)
    if alph == "0123456789":  # one draw for the whole run of digits (hot path: ids)
        return str(rng.randrange(10**n)).zfill(n)
    if alph == "0123456789abcdef":
        return f"{rng.getrandbits(4 * n):0{n}x}"
    return "".join(rng.choice(alph) for _ in range(n))


def _id_maker(plan: tuple[tuple[int, Any, int, int], ...]) -> Callable[[random.Random], str] | None:
    """For the common id shapes (a literal then digits or hex: ``^SUB-[0-9]{6}$``), one expression
    making exactly :func:`from_pattern`'s draws; None for any other plan."""
    if len(plan) == 2 and plan[0][0] == _LIT and plan[1][0] in (_DIGITS, _HEX):
        head, (code, x, lo, _) = plan[0][1], plan[1]
        if code == _DIGITS:
            return lambda rng: head + str(rng.randrange(x)).zfill(lo)
        return lambda rng: head + f"{rng.getrandbits(x):0{lo}x}"
    return None


_id_makers: dict[str, Callable[[random.Random], str] | None] = {}


def from_pattern(rng: random.Random, pat: str) -> str:
    """A random string matching a registry-style pattern."""
    try:
        make = _id_makers[pat]
    except KeyError:
        make = _id_makers[pat] = _id_maker(_plans.get(pat) or _plan(pat))
    if make is not None:
        return make(rng)
    out = []
    for code, x, lo, hi in _plans.get(pat) or _plan(pat):
        if code == _LIT:
            out.append(x)
        elif code == _DIGITS:
            out.append(str(rng.randrange(x)).zfill(lo))
        elif code == _HEX:
            out.append(f"{rng.getrandbits(x):0{lo}x}")
        elif code == _CHOICE:
            choice = rng.choice
            out.append("".join([choice(x) for _ in range(lo)]))
        else:
            out.append(_draw(rng, x, rng.randint(lo, hi)))
    return "".join(out)


class FastRandom(random.Random):
    """``random.Random`` with the same draws, minus two layers of Python calls on the hot paths.

    ``choice``, ``randint`` and one-argument ``randrange`` do CPython's ``_randbelow_with_getrandbits``
    inline (``getrandbits(n.bit_length())`` until below ``n``), exactly as its own methods use it
    (``seq[_randbelow(len(seq))]``, ``a + _randbelow(b - a + 1)``), so a
    seeded run gives the same values and the same state after each draw (a test compares them
    with ``random.Random``); anything unusual (floats, steps, empty ranges) goes to the base class.
    """

    def __init__(self, x: Any = None) -> None:
        if type(x) is int:  # what random.Random.seed does for an int, without its type checks
            _random.Random.seed(self, x)
            self.gauss_next = None
        else:
            super().__init__(x)

    def choice(self, seq: Any) -> Any:
        """Same as ``random.Random.choice``."""
        n = len(seq)
        if not n:
            raise IndexError("Cannot choose from an empty sequence")
        # CPython's _randbelow_with_getrandbits, inlined (one Python call less per draw)
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return seq[r]

    def randint(self, a: int, b: int) -> int:
        """Same as ``random.Random.randint``."""
        if type(a) is int and type(b) is int and b >= a:
            n = b - a + 1
            k = n.bit_length()
            r = self.getrandbits(k)
            while r >= n:
                r = self.getrandbits(k)
            return a + r
        return super().randint(a, b)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        """Same as ``random.Random.randrange``."""
        if stop is None and step == 1 and type(start) is int and start > 0:
            k = start.bit_length()
            r = self.getrandbits(k)
            while r >= start:
                r = self.getrandbits(k)
            return r
        return super().randrange(start, stop, step)


def rand_date(rng: random.Random, lo: int = 2024, hi: int = 2027) -> str:
    """An ISO date between Jan 1 of ``lo`` and Dec 28 of ``hi``."""
    y, m, d = rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28)
    return f"{y:04d}-{m:02d}-{d:02d}"  # always a real date (day <= 28): what date().isoformat() gives


# Dates by what the field means.  Worlds keep their clock in 2026 (state.World), so "past" ends
# in 2025, "upcoming" (a booking, a visit, a pickup: an event still to happen) is in 2027 and
# "future" (an expiry, a due date, an end of a term) is in 2027-2028: both after every clock.
# Birth dates make an adult of 21-86 on that clock.
_BIRTH = ("birth", "born", "dob")
_PAST = (
    "issued", "purchased", "since", "last_", "posted", "received", "taken", "arrived", "signature", "signed",
    "declared", "applied", "consent", "given", "sold", "booked", "linked", "started", "onset", "isolated",
    "watched", "as_of", "opened", "joined", "period_end",
)  # fmt: skip
_PAST_EXACT = ("from_date", "to_date")  # filters over history (transactions, visit logs, ledgers)
_UPCOMING = (
    "check_in", "check_out", "checkin", "checkout", "pickup", "pick_up", "drop_off", "dropoff", "appointment",
    "depart", "arrival", "flight", "reserv", "scheduled", "booking", "event_date", "move_date", "visit_date",
    "session_date", "hearing", "open_house", "requested_date", "preferred_dates", "free_dates", "harvest",
    "slot", "service_start", "window_start", "port_on", "opens_at", "ends_at", "starts", "start_date",
    "effective",
)  # fmt: skip
_UPCOMING_EXACT = ("start", "from", "to", "dep", "arr")
_FUTURE = (
    "expir", "until", "due", "deadline", "renewal", "next_", "_end", "end_date", "eta", "need_by", "ready_by",
    "expected", "retirement", "cutoff", "resumes", "closes", "callback_by", "closing", "deliver", "ships",
    "publish", "send", "first_run", "first_payment", "hold", "pause",
)  # fmt: skip
DATE_RANGES = {"birth": (1940, 2005), "past": (2018, 2025), "upcoming": (2027, 2027), "future": (2027, 2028), "any": (2025, 2027)}
"""Year ranges of :func:`date_kind`'s classes (inclusive)."""


def date_kind(name: str) -> str:
    """``birth``, ``past``, ``upcoming``, ``future`` or ``any``: what a date field called ``name`` can plausibly hold."""
    n = name.lower()
    if any(w in n for w in _BIRTH) or n == "birthday":
        return "birth"
    if n in _PAST_EXACT or any(w in n for w in _PAST):
        return "past"
    if n in _UPCOMING_EXACT or any(w in n for w in _UPCOMING):
        return "upcoming"
    if any(w in n for w in _FUTURE) or n == "end":
        return "future"
    return "any"


def date_for(rng: random.Random, name: str) -> str:
    """An ISO date that fits the meaning of the field ``name`` (see :func:`date_kind`)."""
    span = _date_spans.get(name)
    if span is None:
        span = _date_spans[name] = DATE_RANGES[date_kind(name)]
    return rand_date(rng, *span)


_date_spans: dict[str, tuple[int, int]] = {}


_PAIRS = (
    ("from", "to"),
    ("from_date", "to_date"),
    ("start", "end"),
    ("start_date", "end_date"),
    ("starts", "ends_at"),
    ("window_start", "window_end"),
    ("valid_from", "valid_until"),
    ("effective_from", "expiry_date"),
    ("delivery_start", "delivery_date"),
    ("opens_at", "gate_closes"),
    ("first_run", "end_date"),
    ("dep", "arr"),
    ("service_start", "service_end"),
)


def order_dates(values: dict[str, Any]) -> dict[str, Any]:
    """Swap start/end pairs of ISO dates in place so that a start never follows its end; returns ``values``."""
    for a, b in _PAIRS:
        x, y = values.get(a), values.get(b)
        if isinstance(x, str) and isinstance(y, str) and x[:4].isdigit() and y[:4].isdigit() and x > y:
            values[a], values[b] = y, x
    return values


def full_name(rng: random.Random) -> str:
    """A person's name."""
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def fit_text(text: str, lo: int, hi: int, pad: str = " ok") -> str:
    """Cut or pad ``text`` to a length in [lo, hi] (padding repeats ``pad``)."""
    while len(text) < lo:
        text += pad
    if len(text) <= hi:
        return text
    cut = text[:hi]
    word = cut[: cut.rfind(" ")].rstrip(" ,;:-") if " " in cut else ""  # end on a whole word where one fits
    if len(word) >= lo:
        return word
    return cut.rstrip() if len(cut.rstrip()) >= lo else cut


_Maker = Callable[[random.Random], str]
_makers: dict[str, _Maker] = {}


def _pick(pool: tuple[str, ...]) -> _Maker:
    return lambda rng: rng.choice(pool)


def _text_maker(n: str) -> _Maker:
    """How to draw free text for a field called ``n`` (lower case); decided once per name."""
    if n.endswith("last4"):
        return lambda rng: f"{rng.randrange(10000):04d}"
    if n in _NOTES:
        return lambda rng: "; ".join(rng.sample(NOTE_BITS, rng.randint(1, 3)))
    if any(w in n for w in _PERSON) or n in ("approver", "inspector", "hygienist"):
        return full_name
    if n in ("display_name", "profile_name", "platform_user"):
        return lambda rng: f"{rng.choice(FIRST)} {rng.choice(LAST)[0]}."
    if any(w in n for w in _PLACE):
        places, suffix = _PHRASES["place"], n.rsplit("_", 1)[-1]
        return lambda rng: f"{rng.choice(places)} {suffix}"
    if any(w in n for w in _ADDRESS):
        return lambda rng: f"{rng.randint(1, 240)} {rng.choice(_PHRASES['street'])}"
    if "postcode" in n:
        return lambda rng: f"{rng.randint(10000, 99999)}"
    if n == "source_ip":
        return lambda rng: f"203.0.113.{rng.randint(1, 254)}"
    if n in ("room", "unit"):
        return lambda rng: f"{n.title()} {rng.randint(1, 40)}{rng.choice('ABCD')}"
    if n in ("dock", "line"):
        return lambda rng: f"{n.title()} {rng.randint(1, 40)}"
    if n == "gate":
        return lambda rng: f"{rng.choice('ABCDEF')}{rng.randint(1, 30)}"
    if n == "row":
        return _pick(tuple("ABCDEFGHJK"))
    if n in ("from", "to"):
        return _pick(_PHRASES["city"])
    if n == "open_until":
        return lambda rng: f"{rng.randint(17, 22)}:00"
    if n in ("q", "query"):
        return _pick(_PHRASES["query"])
    if n in ("mode", "type", "value"):
        return _pick(("standard", "express", "manual", "automatic", "priority"))
    if n == "kind":
        return _pick(("earn", "burn", "bonus", "adjust"))
    if n == "symbol":
        return lambda rng: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 4)))
    if n.endswith("_url"):
        return lambda rng: f"https://files.example.org/exports/{rng.randrange(10**6):06d}.csv"
    if n == "alt":
        return _pick(("Photo of the front entrance", "Scan of the signed form", "Picture of the damaged item"))
    if n == "journal":
        return _pick(("Journal of Applied Ecology", "The Lancet", "Nature Communications", "Physical Review B"))
    if n in ("bin", "lot", "ref", "key") or "code" in n or "number" in n:
        return lambda rng: from_pattern(rng, "^[A-Z]{2}[0-9]{12}$")
    for key, pool in _TEXT_BY_NAME:
        if key in n:
            return _pick(_PHRASES[pool])
    if n.endswith("name"):
        return full_name
    return _pick(_PHRASES["summary"])


def _plain_text(rng: random.Random, name: str) -> str:
    """A sensible phrase for a free-text field called ``name``."""
    make = _makers.get(name)
    if make is None:
        make = _makers[name] = _text_maker(name.lower())
    return make(rng)


def text_for(rng: random.Random, name: str, lo: int, hi: int) -> str:
    """Plausible free text for a field called ``name`` within [lo, hi] characters."""
    if hi <= 0:
        return ""
    if lo == hi == 5 and name in ("from", "to", "at", "start", "end"):  # a clock time, e.g. naps from/to
        return f"{rng.randint(8, 17):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    base = _plain_text(rng, name)
    if lo == 0 and rng.random() < 0.3:
        return ""
    return fit_text(base, lo, hi)


# Real values for fields with well-known meanings (keyword in the field name -> candidates); a candidate is
# used only if it satisfies the field's pattern and length bounds, else the pattern draws (counted).
_KNOWN: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("timezone", "time_zone", "tz"),
        (
            "Europe/Berlin",
            "Europe/London",
            "Europe/Paris",
            "Europe/Madrid",
            "Europe/Amsterdam",
            "Europe/Warsaw",
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/Toronto",
            "America/Sao_Paulo",
            "Asia/Tokyo",
            "Asia/Singapore",
            "Asia/Kolkata",
            "Asia/Dubai",
            "Australia/Sydney",
            "Africa/Johannesburg",
            "Pacific/Auckland",
        ),
    ),
    (
        ("country", "origin", "destination", "nationality"),
        ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "JP", "IE", "SE", "PL", "BR", "IN", "MX", "CH", "AT"),
    ),
    (("currency",), ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK")),
    (("language", "lang"), ("en", "de", "fr", "es", "it", "nl", "pt", "ja", "pl", "sv")),
    (("locale",), ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL", "ja-JP")),
    (("state",), ("CA", "NY", "TX", "WA", "IL", "MA", "FL", "CO", "OR", "GA")),
    (
        ("postcode", "postal_code"),
        ("SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "LS1 4DY", "G2 3BZ", "BS1 5TR"),
    ),
    (("zip",), ("94105", "10001", "60601", "73301", "98101", "02110", "30303")),
)


def _phone(rng: random.Random) -> str:
    """An E.164 number in a range reserved for fiction (UK 07700 900xxx, US 202-555-01xx)."""
    if rng.random() < 0.5:
        return f"+447700900{rng.randrange(1000):03d}"
    return f"+1202555{rng.randrange(100, 200):04d}"


@functools.lru_cache(maxsize=4096)
def _known_pool(name: str, pattern: str, lo: int, hi: int) -> tuple[str, ...] | None:
    """The real values for a well-known field ``name`` that fit its pattern and length bounds
    (empty: none fits), or None when ``name`` is not a well-known field.  Cached: it depends only
    on the field, and value draws are the hot path."""
    pat = re.compile(pattern)
    for keys, pool in _KNOWN:
        if any(k == name or name.endswith("_" + k) or name.startswith(k + "_") for k in keys):
            return tuple(v for v in pool if lo <= len(v) <= hi and pat.search(v) is not None)
    return None


def known_value(rng: random.Random, schema: dict[str, Any], name: str) -> str | None:
    """A real value (IANA zone, ISO code, reserved phone number...) for a well-known field that fits
    ``schema``; None when the field is not well known or no real value fits (the pattern draws then)."""
    if name.endswith("_id") or not name:
        return None
    lo, hi = int(schema.get("minLength", 0)), int(schema.get("maxLength", 10**6))
    if "phone" in name or "msisdn" in name:
        pat = re.compile(schema["pattern"])
        for _ in range(4):
            v = _phone(rng)
            if lo <= len(v) <= hi and pat.search(v) is not None:
                return v
        return None
    ok = _known_pool(name, schema["pattern"], lo, hi)
    return str(rng.choice(ok)) if ok else None


PAGE_SIZES = (10, 20, 25, 50)  # conventional page sizes for a ``limit`` nobody asked about

# Plausible magnitudes by field-name keyword (first match wins), intersected with the schema's bounds.
_INT_RANGES: tuple[tuple[str, int, int], ...] = (
    ("mileage", 5_000, 150_000),
    ("model_year", 2005, 2025),
    ("tax_year", 2020, 2025),
    ("weight_kg", 1, 40),
    ("volume_mwh", 10, 5_000),
    ("acreage", 5, 2_000),
    ("disk_gb", 20, 500),
    ("storage_gb", 8, 256),
    ("data_cap_gb", 5, 200),
    ("dosage_mg", 5, 1_000),
    ("guest_count", 20, 250),
    ("line_items", 1, 20),
    ("seats", 1, 50),
    ("stock", 0, 500),
    ("units", 1, 500),
    ("quantity", 1, 50),
    ("hours_per_week", 5, 40),
    ("rental_days", 1, 14),
    ("nights", 1, 14),
    ("days", 1, 30),
    ("guests", 1, 8),
    ("passengers", 1, 4),
    ("party_size", 1, 8),
    ("term_years", 10, 30),
    ("bedrooms", 1, 5),
    ("dependents", 0, 4),
    ("pct", 1, 20),
    ("percent", 10, 25),
    ("tickets", 1, 6),
)


# Counts of a subject's records, by exact field name (a search total beside its results is set from them,
# see value_for): a world holds a few records per subject, an export a few hundred at most.
_COUNTS = {"total": (0, 50), "record_count": (1, 500)}


def int_for(rng: random.Random, schema: dict[str, Any], name: str = "") -> int:
    """A plausible integer for a field called ``name``, always within the schema's bounds."""
    lo = int(schema.get("minimum", 0))
    hi = int(schema.get("maximum", 1000))
    if name == "limit":
        sizes = [v for v in PAGE_SIZES if lo <= v <= hi]
        if "default" in schema and lo <= int(schema["default"]) <= hi:
            return int(schema["default"])
        if sizes:
            return int(rng.choice(sizes))
    if name in _COUNTS:  # a count of records (a search total, an export's size): small, not up to 1000
        a, b = max(_COUNTS[name][0], lo), min(_COUNTS[name][1], hi)
        if a <= b:
            return rng.randint(a, b)
    for key, a, b in _INT_RANGES:
        if key in name:
            a, b = max(a, lo), min(b, hi)
            if a <= b:
                return rng.randint(a, b)
            break
    if hi - lo > 1000:  # an unknown quantity with a wide range: spread over magnitudes, not ~hi/2
        return min(hi, max(lo, int(math.exp(rng.uniform(0.0, math.log(max(2, hi - lo + 1))))) + lo - 1))
    return rng.randint(lo, hi)


def said_value(rng: random.Random, schema: dict[str, Any], name: str = "") -> Any:
    """Like :func:`value_for`, but free text is never empty: a value a user states ("set the dedication to ...")."""
    if schema.get("type") == "string" and not ("enum" in schema or "pattern" in schema or "format" in schema):
        hi = int(schema.get("maxLength", 80))
        if hi > 0:
            return text_for(rng, name, max(1, int(schema.get("minLength", 0))), hi)
    return value_for(rng, schema, name)


def value_for(rng: random.Random, schema: dict[str, Any], name: str = "") -> Any:
    """A random value satisfying ``schema`` (see module docstring for the supported subset)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    typ = schema.get("type")
    if isinstance(typ, list):  # e.g. ["number", "null"]: a value of the first non-null type
        typ = next((t for t in typ if t != "null"), "null")
        if typ == "null":
            return None
        schema = {**schema, "type": typ}
    if typ == "string":
        if "pattern" in schema and schema.get("format") != "date":
            known = known_value(rng, schema, name)
            return known if known is not None else from_pattern(rng, schema["pattern"])
        if schema.get("format") == "date":
            return date_for(rng, name)
        if schema.get("format") == "email":
            return f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@example.org"
        if schema.get("format") == "date-time":
            return f"{date_for(rng, name)}T{rng.randint(0, 23):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z"
        if schema.get("format") == "uri":
            return f"https://files.example.org/{rng.choice(WORDS)}/{rng.randrange(10**6):06d}"
        return text_for(rng, name, int(schema.get("minLength", 0)), int(schema.get("maxLength", 80)))
    if typ == "integer":
        return int_for(rng, schema, name)
    if typ == "number":
        lo = float(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
        hi = float(schema.get("maximum", lo + 1000))
        if name == "balance" and hi > 1000:  # balances spread over magnitudes (median ~ sqrt(hi)), not ~hi/2
            return round(min(hi, max(lo, math.exp(rng.uniform(0.0, math.log(hi))))), 2)
        v = round(rng.uniform(lo, hi), 2)
        if "exclusiveMinimum" in schema and v <= schema["exclusiveMinimum"]:
            v = round(schema["exclusiveMinimum"] + 0.01, 2)
        return v
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "array":
        n = rng.randint(int(schema.get("minItems", 0)), min(int(schema.get("maxItems", 3)), 5))
        return [value_for(rng, schema.get("items", {}), name) for _ in range(n)]
    if typ == "object":
        props = schema.get("properties", {})
        out: dict[str, Any] = {}
        for k, s in props.items():
            res = out.get("results")
            if k == "total" and isinstance(res, list) and s.get("type") == "integer":
                # the results are a page of the total: at least that many, maybe a few more
                out[k] = min(int(s.get("maximum", 10**9)), max(int(s.get("minimum", 0)), len(res) + rng.randint(0, 3)))
            else:
                out[k] = value_for(rng, s, k)
        return order_dates(out)
    raise GatlingError(f"cannot generate a value for schema {schema!r} (field {name!r})")
