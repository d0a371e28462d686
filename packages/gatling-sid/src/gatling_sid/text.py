"""User-request text: intent templates filled with slot values, wrapped in varied openers, context and closers.

A request is ``opener + core + detail + closer``; each part is drawn independently from its own
pool and the core carries the slot values (ids, names, amounts, dates), so two requests of the
same domain and intent rarely share more than a few word trigrams.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from typing import Any

INTENTS = ("account_inquiry", "account_update", "transaction", "cancellation", "creation", "report", "account_review")

OPENERS = (
    "",
    "",
    "Hi,",
    "Hello there.",
    "Good morning!",
    "Hey,",
    "Quick question:",
    "Hi team,",
    "Hello, hoping you can help.",
    "Afternoon!",
    "Hi, this is {name}.",
    "{name} here.",
    "Hello, my name is {name}.",
    "Hi! {name} writing.",
    "Sorry to bother you,",
    "Hope your day is going well.",
    "Hi again,",
    "Urgent-ish:",
    "Morning,",
    "Greetings,",
    "Hey there, it's {name}.",
    "Hi support,",
    "Evening!",
    "So,",
    "Hello from {city}.",
    "Hi, quick one from {city}.",
)
CLOSERS = (
    "",
    "",
    "Thanks!",
    "Thank you so much.",
    "Appreciate it.",
    "Cheers.",
    "Thanks in advance.",
    "Let me know when it's done.",
    "Please confirm once finished.",
    "Many thanks, {first}.",
    "Thanks a lot - {first}",
    "That's all for now.",
    "I'll wait for your reply.",
    "Have a good one.",
    "Much obliged.",
    "Ping me if you need anything else.",
    "Best, {first}.",
    "Thanks for the quick help.",
    "Hope that's clear.",
    "Talk soon.",
)
CITIES = (
    "Lisbon",
    "Austin",
    "Nairobi",
    "Osaka",
    "Toronto",
    "Leeds",
    "Porto Alegre",
    "Krakow",
    "Pune",
    "Adelaide",
    "Accra",
    "Bergen",
    "Tucson",
    "Seville",
    "Hanoi",
    "Halifax",
    "Lyon",
    "Cebu",
    "Denver",
    "Tallinn",
)
REASON_TEXT = {
    "customer_request": "I just don't need it anymore",
    "duplicate": "it looks like a duplicate",
    "no_longer_needed": "it's no longer needed",
    "fraud_suspected": "I think something fishy is going on",
    "relocation": "I'm relocating",
    "cost": "it's getting too expensive",
}
CORES: dict[str, tuple[str, ...]] = {
    "account_inquiry": (
        "Hey, does {entity} {entity_id} have anything pending? Curious about the {field} too.",
        "Need a quick look at {entity_id} - specifically the {field}. Thanks, {subject} {subject_id}.",
        "Could I get the latest on my {entity} ({entity_id})? Mostly interested in {field}.",
        "Can you tell me the current status of my {entity} {entity_id}?",
        "What's the balance on {entity} {entity_id}? My {subject} number is {subject_id}.",
        "I'd like to see the details of {entity} {entity_id}, please.",
        "Could you look up {entity} {entity_id} and tell me what's on file?",
        "Please check what my {entity} {entity_id} currently shows for {field}.",
        "I can't find my {entity} in the app. I'm {subject} {subject_id}; can you look at {entity_id}?",
        "Is {entity} {entity_id} still active? Just want to double-check {field}.",
        "Pull up the record for {entity} {entity_id} and read me the {field}.",
        "As {subject} {subject_id} I want a summary of my {entities}.",
        "What does {entity_id} say under {field} right now?",
    ),
    "account_update": (
        "Small change needed on {entity_id}: the {field} is wrong, it should be {value}.",
        "Can you edit my {entity}? ID {entity_id}. New {field}: {value}.",
        "Please record {value} as the {field} for {entity} {entity_id} going forward.",
        "Please change the {field} on {entity} {entity_id} to {value}.",
        "I need to update my {entity} {entity_id}: set {field} to {value}.",
        "Could you switch {field} to {value} for {entity_id}? I'm {subject} {subject_id}.",
        "Update {entity} {entity_id} so that {field} reads {value}, my date of birth is {dob}.",
        "For {entity} {entity_id}, {field} should be {value} from now on.",
        "Can we modify {entity_id}? The {field} needs to become {value}.",
        "My details changed - put {value} as the {field} on {entity} {entity_id}.",
        "I'm {subject} {subject_id} (born {dob}, card ending {last4}); set {field} = {value} on {entity_id}.",
        "Change of plans: {field} on my {entity} ({entity_id}) is now {value}.",
    ),
    "transaction": (
        "Would you {money} for me? {amount} {currency}, {entity} {entity_id}, reference '{memo}'.",
        "{amount} {currency} needs to go through today - please {money} on {entity_id}.",
        "Requesting {a_money_noun}: {entity} {entity_id}, {currency} {amount}, verified under {subject_id}.",
        "Please {money} {amount} {currency} using {entity} {entity_id}.",
        "I need to {money} for {amount} {currency} on {entity_id}, memo '{memo}'.",
        "Go ahead and {money}: {amount} {currency} from {entity} {entity_id}.",
        "Can you {money} of {amount} {currency}? The {entity} is {entity_id}, I'm {subject} {subject_id}.",
        "{money_cap} - amount {amount} {currency}, {entity} {entity_id}, please process today.",
        "I'd like to {money} ({amount} {currency}) against {entity_id}; my DOB is {dob}.",
        "Process {a_money_noun} of {amount} {currency} on {entity} {entity_id} for me.",
        "Time to {money}: {currency} {amount} via {entity_id}. Last four digits {last4}.",
        "Quick {money_noun} please - {amount} {currency}, {entity} {entity_id}.",
    ),
    "cancellation": (
        "Time to let go of {entity_id}. Please {destroy} - {reason}.",
        "Honestly {reason}, so I'd like you to {destroy} ({entity} {entity_id}).",
        "I've decided: {destroy} {entity_id}. {reason_cap}.",
        "Please {destroy} {entity_id}; {reason}.",
        "I want to {destroy} - it's {entity} {entity_id}. Reason: {reason}.",
        "Can you {destroy} for me? {entity_id}, because {reason}.",
        "I'd like to permanently {destroy} ({entity_id}), {reason}.",
        "{destroy_cap} {entity_id} please, {reason}. I'm {subject} {subject_id}.",
        "Go ahead and {destroy} {entity_id}. Honestly {reason}.",
        "Kindly {destroy} on file as {entity_id} since {reason}.",
        "Could we {destroy}? ID {entity_id}, DOB {dob}; {reason}.",
    ),
    "creation": (
        "Looking to add {a_entity} to my profile ({subject_id}); {field} would be {value}.",
        "Please register a new {entity} for {name}, with {field} {value}.",
        "Starting fresh - open one more {entity}, and note {field} as {value}.",
        "I'd like to open a new {entity} with {field} set to {value}.",
        "Please create {a_entity} for me ({subject} {subject_id}), {field}: {value}.",
        "Set me up with a new {entity}; I want {field} as {value}.",
        "Can you start a fresh {entity}? {field_cap} should be {value}. DOB {dob}.",
        "New {entity} please, {subject} ID {subject_id}, with {field} {value}.",
        "I want another {entity} - make the {field} {value}, card ending {last4}.",
        "Create {a_entity} under {subject_id} with {field} = {value}.",
        "Could I get a new {entity}? Put {value} for {field}.",
    ),
    "report": (
        "Need an internal summary of {subject_id}'s {entities} sent over to {recipient}.",
        "Put together the {entity} list for {subject} {subject_id} and mail it to {recipient}.",
        "Could {recipient} get a digest of {subject_id}'s {entities} ('{query}')?",
        "Send the team a summary of {subject} {subject_id}'s {entities}.",
        "Compile the {entities} for {subject_id} and email the report to {recipient}.",
        "Can you look up {subject} {subject_id}'s {entities} and forward the first one to {recipient}?",
        "Prepare a short report on {entities} of {subject_id} for {recipient}.",
        "Search {entities} for '{query}' under {subject_id} and notify {recipient}.",
        "Please find {subject_id}'s {entities} matching '{query}' and send a note to {recipient}.",
        "Email {recipient} a rundown of the {entities} belonging to {subject_id}.",
        "Report on {subject_id}: list their {entities} and share it with {recipient}.",
    ),
    "account_review": (
        "Please do a full pass over my account ({subject_id}): profile, {entities}, and set {field} to {value}.",
        "Check everything under {subject_id} and then switch the first {entity}'s {field} to {value}.",
        "Review all my {entities}, I'm {subject} {subject_id}, and set {field} to {value} on the main one.",
        "Could you go through my {entities} and update the first one's {field} to {value}? ID {subject_id}.",
        "Do an account review for {subject_id}: check my profile and {entities}, then change {field} to {value}.",
        "Audit my {entities} ({subject} {subject_id}, born {dob}) and fix the {field} to {value}.",
        "Look over my profile and {entities} and make the {field} {value} where needed. {subject_id}.",
        "I'm {subject_id} - please review my {entities} and set {field} to {value} on the top result.",
        "Annual check-in: review {subject_id}'s {entities}, then update {field} to {value}.",
    ),
}
DETAILS = (
    "",
    "",
    "",
    "I already tried the website.",
    "My last four are {last4} if you need them.",
    "It's been a hectic week.",
    "I'm on my phone so excuse typos.",
    "My birthday is {dob} for verification.",
    "No rush, but today would be great.",
    "I called earlier and got disconnected.",
    "This is for my records.",
    "My partner asked me to sort this out.",
    "Happy to verify whatever you need.",
    "I'm travelling next week.",
    "The app keeps timing out on me.",
    "Reference {ref} from my last chat.",
    "I think the reference was {ref}.",
    "Ticket {ref} is related.",
    "Date of birth {dob}, last four {last4}.",
    "I'm at the office until six.",
    "Writing from {city} this week.",
    "My number on file ends in {last4}.",
    "This came up while doing my paperwork.",
    "Second time asking, sorry.",
    "Just want this sorted before the weekend.",
    "I'm double-checking everything after a move to {city}.",
)


def humanize(s: str) -> str:
    """``close_account`` -> ``close account``."""
    return s.replace("_", " ")


@functools.lru_cache(maxsize=1024)
def _plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun: ``policy`` -> ``policies``, ``box`` -> ``boxes``."""
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    if re.search(r"(?:s|x|z|ch|sh)$", noun):
        return noun + "es"
    return noun + "s"


@functools.lru_cache(maxsize=1024)
def _with_article(noun: str) -> str:
    """``a`` or ``an`` before ``noun`` by its first letter (``an order``, ``an in game purchase``;
    ``a utility`` and ``a one-off``: a ``u``/``one`` that sounds like a consonant keeps ``a``)."""
    vowel = re.match(r"[aeio]", noun, re.I) is not None and re.match(r"one\b|once\b", noun, re.I) is None
    return ("an " if vowel else "a ") + noun


def _money_noun(money: str) -> str:
    words = money.split("_")
    return " ".join(words[1:] if len(words) > 1 else words)


# The user states what the agent will later use (issue 17 item 3: grounded traces); each
# pool is drawn only for a fact the core/detail left out, so most requests carry one or two.
IDENTITY_FACTS = (
    "For verification: {subject} ID {subject_id}, born {dob}, last four {last4}.",
    "My {subject} number is {subject_id}; DOB {dob}; the last 4 digits are {last4}.",
    "ID check details: {subject_id}, date of birth {dob}, last four {last4}.",
    "You can verify me with {subject_id} / {dob} / {last4}.",
    "I'm {subject} {subject_id} (born {dob}, last four {last4}).",
    "Security info - born on {dob}, last four digits {last4}, {subject} id {subject_id}.",
    "To confirm it's me: {subject_id}, {dob}, and {last4} are the last four.",
    "Verification: I was born {dob}, my {subject} ID is {subject_id} and the last four are {last4}.",
    "{subject_cap} {subject_id} here, DOB {dob}, ending {last4}.",
    "Details for the identity check - {subject} {subject_id}, birthday {dob}, last 4: {last4}.",
)
SUBJECT_FACTS = (
    "My {subject} ID is {subject_id}.",
    "It's under {subject} {subject_id}.",
    "The {subject} number is {subject_id}.",
    "I'm {subject_id} in your system.",
    "Look me up as {subject_id}.",
    "({subject_cap} {subject_id}.)",
)
ENTITY_FACTS = (
    "It's {entity} {entity_id}.",
    "The {entity} id is {entity_id}.",
    "That's {entity_id}.",
    "Reference: {entity_id}.",
    "(It's the {entity} numbered {entity_id}.)",
    "On file as {entity_id}.",
)
RECIPIENT_FACTS = (
    "Please send the update to {recipient}.",
    "Copy {recipient} on it.",
    "The note should go to {recipient}.",
    "Mail {recipient} when it's done.",
    "Our team inbox is {recipient}.",
    "Let {recipient} know afterwards.",
    "Confirmation to {recipient}, please.",
    "Loop in {recipient}.",
)


def _said(value: str, text: str) -> bool:
    """``value`` occurs in ``text`` as a token of its own (``5841`` inside ``PUO-71375841`` does not count)."""
    i = text.find(value)
    while i >= 0:
        before = text[i - 1] if i else " "
        after = text[i + len(value)] if i + len(value) < len(text) else " "
        if not (before.isalnum() or before == "-") and not after.isalnum():
            return True
        i = text.find(value, i + 1)
    return False


_PIECES = {
    "subject_id": ("my {subject} ID is {subject_id}", "I'm {subject} {subject_id}", "the {subject} number is {subject_id}"),
    "dob": ("my date of birth is {dob}", "I was born {dob}", "DOB {dob}"),
    "last4": ("the last four are {last4}", "the number ends in {last4}", "last 4: {last4}"),
}
_PIECE_LEADS = ("For the check,", "Also,", "To verify:", "In case you need it,", "And")


def facts_sentences(rng: random.Random, text: str, slots: dict[str, Any], need: set[str]) -> list[str]:
    """Sentences stating each fact in ``need`` (identity, subject_id, entity_id, recipient) that ``text`` lacks."""
    fill = dict(slots)
    fill["subject_cap"] = str(fill.get("subject", ""))[:1].upper() + str(fill.get("subject", ""))[1:]
    out = []
    missing = [k for k in ("subject_id", "dob", "last4") if not _said(str(slots[k]), text)]
    if "identity" in need and len(missing) == 3:
        out.append(rng.choice(IDENTITY_FACTS).format_map(fill))
    elif "identity" in need and missing:  # state only what is not said yet (never a fact twice)
        bits = [rng.choice(_PIECES[k]).format_map(fill) for k in missing]
        out.append(rng.choice(_PIECE_LEADS) + " " + " and ".join(bits) + ".")
    elif "subject_id" in need and str(slots["subject_id"]) not in text:
        out.append(rng.choice(SUBJECT_FACTS).format_map(fill))
    if "entity_id" in need and str(slots["entity_id"]) not in text:
        out.append(rng.choice(ENTITY_FACTS).format_map(fill))
    if "recipient" in need and str(slots["recipient"]) not in text:
        out.append(rng.choice(RECIPIENT_FACTS).format_map(fill))
    return out


# The update/creation asks when the field is a boolean: stated naturally and one way only.
BOOL_CORES = {
    "account_update": (
        "Please mark {entity} {entity_id} as {field_state}.",
        "Can you update {entity} {entity_id}? It should be {field_state} from now on.",
        "For {entity} {entity_id}, {field}: {value}, please.",
        "I need a change on {entity_id} ({field}: {value}). I'm {subject} {subject_id}.",
        "Please set {entity} {entity_id} to {field_state}.",
        "Change of plans: my {entity} ({entity_id}) is {field_state} now.",
    ),
    "creation": (
        "Please create a new {entity} for me ({subject} {subject_id}), {field}: {value}.",
        "I'd like to open a new {entity}, marked as {field_state}.",
        "New {entity} please, {subject} ID {subject_id}; {field}: {value}.",
        "Set me up with a new {entity} - {field_state}.",
    ),
    "account_review": (
        "Please do a full pass over my account ({subject_id}): profile, {entities}, and mark the first one as {field_state}.",
        "Review all my {entities}, I'm {subject} {subject_id}, and make the main one {field_state}.",
        "I'm {subject_id} - please review my {entities}; please mark the top one as {field_state}.",
        "Do an account review for {subject_id}: check my profile and {entities}, then {field}: {value} on the first.",
    ),
}


# ... and when it is to be false: a box the user unticks or a plain "field: no" (was "mark ... as not X",
# "my order is not gift wrap now"); as many templates per intent as above.
BOOL_CORES_OFF = {
    "account_update": (
        "Please untick {field} on {entity} {entity_id}.",
        "Can you update {entity} {entity_id}? Please leave {field} unticked from now on.",
        "For {entity} {entity_id}, {field}: {value}, please.",
        "I need a change on {entity_id} ({field}: {value}). I'm {subject} {subject_id}.",
        "Please uncheck {field} for {entity} {entity_id}.",
        "Change of plans: please untick {field} on my {entity} ({entity_id}).",
    ),
    "creation": (
        "Please create a new {entity} for me ({subject} {subject_id}), {field}: {value}.",
        "I'd like to open a new {entity}, with {field} unticked.",
        "New {entity} please, {subject} ID {subject_id}; {field}: {value}.",
        "Set me up with a new {entity} - leave {field} unticked.",
    ),
    "account_review": (
        "Please do a full pass over my account ({subject_id}): profile, {entities}, and untick {field} on the first one.",
        "Review all my {entities}, I'm {subject} {subject_id}, and uncheck {field} on the main one.",
        "I'm {subject_id} - please review my {entities}; please untick {field} on the top one.",
        "Do an account review for {subject_id}: check my profile and {entities}, then {field}: {value} on the first.",
    ),
}


def compose(rng: random.Random, intent: str, slots: dict[str, Any], need: set[str] | None = None) -> str:
    """Request text for ``intent`` from ``slots`` (keys used by the templates; unused keys are ignored).

    ``need``: facts the agent's calls will use (``identity``, ``subject_id``, ``entity_id``,
    ``recipient``); any the drawn sentences leave out is stated in a sentence of its own.
    """
    fill = dict(slots)
    fill.setdefault("first", str(fill.get("name", "")).split(" ")[0])
    fill.setdefault("city", rng.choice(CITIES))
    fill.setdefault("ref", f"#{rng.randint(10000, 999999)}")
    if "entity" in fill:  # "policies", "an order": the entity nouns are the registry's, so inflect here
        fill["entities"] = _plural(str(fill["entity"]))
        fill["a_entity"] = _with_article(str(fill["entity"]))
    if "money" in fill:
        fill["money_noun"] = humanize(_money_noun(fill["money_op"]))
        fill["a_money_noun"] = _with_article(fill["money_noun"])
        fill["money_cap"] = fill["money"][:1].upper() + fill["money"][1:]
    if "destroy" in fill:
        fill["destroy_cap"] = fill["destroy"][:1].upper() + fill["destroy"][1:]
    if "field" in fill:
        fill["field_cap"] = fill["field"][:1].upper() + fill["field"][1:]
    if "reason_code" in fill:
        fill["reason"] = REASON_TEXT[fill["reason_code"]]
        fill["reason_cap"] = fill["reason"][:1].upper() + fill["reason"][1:]
    cores = CORES[intent]
    if isinstance(fill.get("value_raw"), bool) and intent in BOOL_CORES:  # "mark it as urgent", "organic: no"
        cores = BOOL_CORES[intent] if fill["value_raw"] else BOOL_CORES_OFF[intent]
        fill["field_state"] = fill["field"]
    parts = [rng.choice(OPENERS), rng.choice(cores), rng.choice(DETAILS), rng.choice(CLOSERS)]
    if rng.random() < 0.5:  # detail before or after the ask
        parts[1], parts[2] = parts[2], parts[1]
    done = [p.format_map(fill) for p in parts]
    core = done[1] if parts[1] in cores else done[2]
    for i in (1, 2):  # a detail that repeats an identity fact the ask already gives is left out
        if done[i] is not core and any(str(fill.get(k, "\0")) in done[i] and str(fill[k]) in core for k in ("dob", "last4")):
            done[i] = ""
    if need:
        extra = facts_sentences(rng, " ".join(done), fill, need)
        if extra:
            at = rng.randint(1, 3)  # after the opener, before the closer
            done[at:at] = extra
    after_comma(done, fill)
    return " ".join(p for p in done if p).strip()


_FIRST_WORD = re.compile(r"[A-Z][a-z']*\b")
_KEEP_CAPITAL = frozenset(("I", "I'm", "I'd", "I've", "I'll"))


def after_comma(parts: list[str], fill: Mapping[str, Any]) -> None:
    """Lower-case the first word of a part that follows one ending in a comma ("Hey, please ...",
    not "Hey, Please ..."), unless the word is "I" or a name from the request's own values."""
    prev = ""
    for i, part in enumerate(parts):
        if not part:
            continue
        if prev.endswith(","):
            m = _FIRST_WORD.match(part)
            if m and m.group() not in _KEEP_CAPITAL and not _is_proper(m.group(), fill):
                parts[i] = part[:1].lower() + part[1:]
        prev = part


def _is_proper(word: str, fill: Mapping[str, Any]) -> bool:
    """Whether ``word`` starts a word of a name-like value of the request (a person, a city)."""
    return any(
        type(v) is str and (v == word or v.startswith(word + " ") or f" {word}" in v)
        for k, v in fill.items()
        if k in _PROPER_KEYS
    )


_PROPER_KEYS = frozenset(("name", "first", "city", "full_name"))


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def has_token(hay: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``hay`` as a whole token, not inside a longer word or number.

    An occurrence counts only where the characters beside it do not continue it: a letter, digit
    or ``_`` next to an alphanumeric end of ``needle`` continues it (``7790`` is not stated by
    ``SUB-477909``, ``15`` not by ``fixed_15``), and so does ``.``/``,`` followed by a digit next
    to a digit end (``12`` is not stated by ``12.50`` or ``1,200``).  Hyphens, spaces, ``@``,
    ``/`` and other punctuation separate tokens (``BRW-887716`` states ``887716``).
    """
    if not needle:
        return True
    i = hay.find(needle)
    if i < 0:
        return False
    first, last = needle[0], needle[-1]
    check_l, check_r = _word_char(first), _word_char(last)
    dig_l, dig_r = first.isdigit(), last.isdigit()
    n, m = len(needle), len(hay)
    while i >= 0:
        j = i + n
        ok = True
        if check_l and i > 0:
            b = hay[i - 1]
            if _word_char(b) or (dig_l and b in ".," and i > 1 and hay[i - 2].isdigit()):
                ok = False
        if ok and check_r and j < m:
            a = hay[j]
            if _word_char(a) or (dig_r and a in ".," and j + 1 < m and hay[j + 1].isdigit()):
                ok = False
        if ok:
            return True
        i = hay.find(needle, i + 1)
    return False
