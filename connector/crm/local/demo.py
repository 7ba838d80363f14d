"""A seeded, deterministic demo org for the local CRM: owners, contacts and years of Tasks and Events.

Every contact is given a *persona* (cold, talked-at, friend, familiar, faithful, forever, drifting, and the
gratitude cases) whose activity history is shaped so that the default rule file places it on a known rung with
known flags. That makes the demo tell a story (a plausible funnel, real next steps) and lets tests check the
engine against an org whose answer is known.

Speed matters as much as realism: a million contacts with ten million activities must load in well under two
minutes. So nothing loops per contact or per activity: each persona's recipe draws whole columns with numpy,
chunk by chunk, and DuckDB turns the columns into Salesforce-shaped rows (Ids through the `sf_id` macro) in
one `INSERT ... SELECT` per table and chunk. Each chunk has its own random stream seeded from (seed, chunk),
so the same seed, evaluation date and sizes give byte-identical data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from connector.crm.local import demo_shapes
from connector.errors import DataError

if TYPE_CHECKING:
    import numpy.typing as npt

    from connector.crm.local.store import LocalCrm

    Ints = npt.NDArray[np.int64]
    Times = npt.NDArray[np.datetime64]

CHUNK = 100_000  # contacts per chunk: bounds memory to ~1M activities in flight; part of the seed contract
OLDEST = 4 * 365  # contacts were created over the last ~4 years
NO_WHO_SHARE = 0.015  # activities about a Lead or about nobody, which the engine must ignore
DELETED_SHARE = 0.005  # deleted activities (IsDeleted = true), also to be ignored
OPEN_TODO_SHARE = 0.08  # past to-dos still open (overdue)

_US_PER_S = 1_000_000


@dataclass(frozen=True)
class DemoStats:
    """Rows generated; contacts, tasks and events count only rows not marked deleted, as `LocalCrm.counts`."""

    contacts: int
    tasks: int
    events: int
    users: int


# --------------------------------------------------------------------------------------------------------------
# Activity templates. Subjects are chosen against the kinds of rules/ladder.yaml; the comments say which kinds
# a template is meant to hit, and every other kind it must stay clear of (no stray 'feedback', 'thank',
# 'referral', 'introduction', 'signed' ... in ordinary subjects).
# --------------------------------------------------------------------------------------------------------------

_WHAT_NONE, _WHAT_OPP, _WHAT_ACCOUNT, _WHAT_CASE = 0, 1, 2, 3


@dataclass(frozen=True)
class _Template:
    obj: str  # 'Task' or 'Event'
    subject: str
    subtype: str  # TaskSubtype or EventSubtype
    type: str
    call_type: str | None = None
    what: int = _WHAT_NONE
    minutes: tuple[int, ...] = (30, 45, 60)  # event lengths to draw from
    all_day: bool = False


def _email(subject: str, what: int = _WHAT_NONE) -> _Template:
    return _Template("Task", subject, "Email", "Email", what=what)


def _call(subject: str, direction: str, what: int = _WHAT_NONE) -> _Template:
    return _Template("Task", subject, "Call", "Call", call_type=direction, what=what)


def _task(subject: str, what: int = _WHAT_NONE, type_: str = "Other") -> _Template:
    return _Template("Task", subject, "Task", type_, what=what)


def _event(subject: str, what: int = _WHAT_NONE, minutes: tuple[int, ...] = (30, 45, 60)) -> _Template:
    return _Template("Event", subject, "Event", "Meeting", what=what, minutes=minutes)


_OUT_SUBJECTS = [
    ("Product update", _WHAT_NONE),
    ("Following up on our proposal", _WHAT_OPP),
    ("Pricing for next year", _WHAT_OPP),
    ("Agenda for our next meeting", _WHAT_NONE),
    ("Quick question", _WHAT_NONE),
    ("New features in the spring release", _WHAT_NONE),
    ("Resources you asked for", _WHAT_NONE),
    ("Meeting recap", _WHAT_NONE),
    ("Webinar invitation", _WHAT_NONE),
    ("Your onboarding plan", _WHAT_NONE),
]

_GROUPS: dict[str, list[_Template]] = {
    # outbound_email
    "out_email": [_email(s, w) for s, w in _OUT_SUBJECTS],
    # outbound_email (mass mail)
    "list_email": [
        _Template("Task", s, "ListEmail", "Email")
        for s in ("Monthly newsletter", "Release notes: what is new this month", "Webinar series: save the date")
    ],
    # inbound_email: their replies
    "in_email": [_email("Re: " + s, w) for s, w in _OUT_SUBJECTS[:6] + _OUT_SUBJECTS[7:8] + _OUT_SUBJECTS[9:]],
    # outbound_call, never listening
    "out_call": [
        _call("Call", "Outbound"),
        _call("Follow-up call", "Outbound"),
        _call("Pricing call", "Outbound", _WHAT_OPP),
        _call("Demo follow-up call", "Outbound"),
    ],
    # inbound_call, never listening or feedback
    "in_call": [
        _call("Inbound call", "Inbound"),
        _call("Support question", "Inbound", _WHAT_CASE),
        _call("Question about an invoice", "Inbound"),
        _call("Call about contract terms", "Inbound", _WHAT_OPP),
    ],
    # meeting, never listening
    "meeting": [
        _event("Product demo", _WHAT_OPP, (45, 60)),
        _event("Proposal walkthrough", _WHAT_OPP),
        _event("Onboarding session", _WHAT_ACCOUNT, (60, 90)),
        _event("Contract negotiation", _WHAT_OPP, (60, 90)),
        _event("Lunch meeting", _WHAT_NONE, (60, 90)),
        _event("Implementation planning", _WHAT_ACCOUNT, (60,)),
    ],
    # meeting + listening
    "listen_event": [
        _event("Discovery call", _WHAT_OPP),
        _event("Quarterly business review", _WHAT_ACCOUNT, (60, 90)),
        _event("Check-in"),
        _event("Customer interview", _WHAT_NONE, (45, 60)),
        _event("QBR", _WHAT_ACCOUNT, (60, 90)),
    ],
    # outbound_call + listening (a call we placed to listen is not a conversation they started)
    "listen_call": [_call("Check-in call", "Outbound"), _call("Discovery call", "Outbound", _WHAT_OPP)],
    # feedback (gratitude trigger); 'Product feedback call' is also an inbound_call
    "feedback": [
        _task("NPS survey answered"),
        _call("Product feedback call", "Inbound"),
        _task("Feature suggestion received"),
    ],
    # feedback + listening + meeting
    "feedback_session": [_event("Customer feedback session", _WHAT_ACCOUNT, (45, 60))],
    # referral + advocacy (gratitude trigger)
    "referral": [_task("Referral: introduced a colleague"), _task("Referred a partner company to us")],
    # advocacy only, not a trigger
    "advocacy": [
        _task("Reference call for a prospect", type_="Call"),
        _task("Testimonial recorded"),
        _task("Case study published", _WHAT_ACCOUNT),
    ],
    # won_deal (gratitude trigger): needs an Opportunity WhatId
    "win": [
        _task("Closed won: annual subscription", _WHAT_OPP),
        _task("Closed won: expansion", _WHAT_OPP),
        _task("Renewal signed", _WHAT_OPP),
    ],
    # thank_you
    "thanks": [
        _task("Thank-you card sent"),
        _email("Thank you for your business"),
        _task("Thank-you gift sent"),
        _call("Thank you call", "Outbound"),
    ],
    # thank_you, and by its subject also feedback: it answers itself (a thank-you counts on or after its trigger)
    "thanks_feedback": [_email("Thank you for your feedback"), _task("Thank-you card sent")],
    # no kind
    "todo": [
        _task("Prepare proposal", _WHAT_OPP),
        _task("Update account plan", _WHAT_ACCOUNT),
        _task("Send pricing sheet"),
        _task("Review contract terms", _WHAT_OPP),
        _task("Log meeting notes"),
        _task("Plan onsite visit", _WHAT_ACCOUNT),
        _task("Call back about pricing", type_="Call"),
    ],
    # all-day events are not meetings
    "all_day": [
        _Template("Event", s, "Event", "Other", what=_WHAT_ACCOUNT, all_day=True)
        for s in ("Annual customer conference", "Onsite workshop", "Trade show")
    ],
    # internal work with no contact
    "internal": [_task("Prepare quarterly forecast"), _event("Team pipeline meeting", _WHAT_NONE, (30, 60))],
}
# Activities about a Lead: they look like two-way contact, listening and gratitude, and must all be ignored.
_GROUPS["lead"] = [
    *_GROUPS["out_email"][:3], *_GROUPS["in_email"][:2], _GROUPS["out_call"][0], _GROUPS["in_call"][0],
    *_GROUPS["listen_event"][:2], _GROUPS["feedback"][0], _GROUPS["thanks"][0],
]
# Deleted activities that would change a rung or a flag if they were counted.
_GROUPS["deleted"] = [
    *_GROUPS["in_email"][:3], _GROUPS["meeting"][0], *_GROUPS["listen_event"][:3], *_GROUPS["thanks"][:2],
]
# Two-way conversations: mostly replies, then meetings, then calls they place (a template listed twice is drawn
# twice as often).
_GROUPS["conv"] = 2 * _GROUPS["in_email"] + _GROUPS["in_call"] + _GROUPS["meeting"]
# Older history: conversations among the mail and calls that prompted them.
_GROUPS["history"] = _GROUPS["conv"] + 3 * _GROUPS["out_email"] + _GROUPS["out_call"]
_GROUPS["listen"] = _GROUPS["listen_event"] + _GROUPS["listen_call"]
_GROUPS["trigger_plain"] = _GROUPS["feedback"]
_GROUPS["trigger_quiet"] = _GROUPS["feedback"] + _GROUPS["feedback_session"] + _GROUPS["win"]  # not advocacy
_GROUPS["trigger_any"] = _GROUPS["feedback"] + _GROUPS["feedback_session"] + _GROUPS["referral"] + _GROUPS["win"]

_TEMPLATES: list[_Template] = list(dict.fromkeys(t for ts in _GROUPS.values() for t in ts))
_TEMPLATE_INDEX = {t: i for i, t in enumerate(_TEMPLATES)}
_GROUP_IDS: dict[str, Ints] = {
    g: np.array([_TEMPLATE_INDEX[t] for t in ts], dtype=np.int64) for g, ts in _GROUPS.items()
}
_IS_EVENT = np.array([t.obj == "Event" for t in _TEMPLATES])
_IS_ALL_DAY = np.array([t.all_day for t in _TEMPLATES])
_IS_TODO = np.isin(np.arange(len(_TEMPLATES)), _GROUP_IDS["todo"])
_IS_FEEDBACK = np.isin(np.arange(len(_TEMPLATES)), np.concatenate([_GROUP_IDS["feedback"],
                                                                    _GROUP_IDS["feedback_session"]]))
_WHAT = np.array([t.what for t in _TEMPLATES], dtype=np.int64)
_IS_OUTBOUND_CALL = np.array([t.call_type == "Outbound" for t in _TEMPLATES])
_MINUTES = [np.array(t.minutes, dtype=np.int64) for t in _TEMPLATES]


# --------------------------------------------------------------------------------------------------------------
# Personas. Offsets are days before the evaluation date (1 = yesterday; negative = planned, in the future).
# Windows of the default rules: within_days N holds offsets 0..N-1; quarter q holds offsets 91q..91q+90.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """`lo`..`hi` activities from `group`, dated `newest`..`oldest` days ago, for a `share` of the persona."""

    group: str
    lo: int
    hi: int
    newest: int
    oldest: int
    share: float = 1.0


@dataclass(frozen=True)
class _Gratitude:
    """A gratitude trigger dated `newest`..`oldest` days ago, thanked on or after it when `thanked`."""

    group: str
    newest: int
    oldest: int
    share: float
    thanked: bool


@dataclass(frozen=True)
class Persona:
    """A kind of relationship, and the rung and flags the default rules should give it."""

    name: str
    weight: float
    rung: str
    flags: tuple[str, ...]
    min_age: int  # contact created this many days ago, at least ...
    max_age: int  # ... and at most
    blocks: tuple[_Block, ...] = ()
    gratitude: tuple[_Gratitude, ...] = ()
    filler_from: int = 90  # filler (outbound mail, calls, to-dos) only this many days ago or older
    filler_weight: float = 1.0


def _quarters(first: int, last: int, share: float = 1.0) -> tuple[_Block, ...]:
    """Two-way contact in each rolling 91-day quarter first..last (quarter 0 starts yesterday)."""
    return tuple(_Block("conv", 1, 1, max(1, 91 * q), 91 * q + 90, share) for q in range(first, last + 1))


_MISSING_LISTENING = "Missing listening"
_MISSING_THANK_YOU = "Missing thank-you"

# Outbound touches in the last 90 days stay at 2 or fewer for contacts without a listening conversation there, and
# under 8 for the others, so 'Missing listening' is open exactly where a persona says so.
_FAITHFUL_CORE = (
    _Block("conv", 3, 4, 1, 179),
    *_quarters(0, 2),
    _Block("listen", 1, 2, 1, 89),
    _Block("out_email", 1, 2, 1, 89, 0.8),
    _Block("todo", 1, 1, -30, -1, 0.3),
    _Block("listen_event", 1, 1, -45, -1, 0.3),
    _Block("all_day", 1, 1, 30, 700, 0.03),
)

PERSONAS: tuple[Persona, ...] = (
    Persona("cold", 0.22, "Fringe", (), 3, OLDEST, (
        _Block("out_email", 1, 2, 1, OLDEST, 0.6),  # never 3 in 90 days: no 'Missing listening'
        _Block("all_day", 1, 1, 1, OLDEST, 0.02),
    ), filler_weight=0.3),
    Persona("talked_at", 0.07, "Fringe", (_MISSING_LISTENING,), 30, OLDEST, (
        _Block("out_email", 3, 7, 1, 89),
        _Block("out_call", 1, 3, 1, 89, 0.5),
        _Block("list_email", 1, 2, 1, 89, 0.3),
        _Block("in_email", 1, 2, 200, OLDEST, 0.3),
        _Block("listen_event", 1, 1, -30, -1, 0.15),  # a planned discovery call does not count yet
    )),
    Persona("drifting", 0.06, "Fringe", (), 760, OLDEST, (
        _Block("in_email", 1, 3, 365, 730),
        *(_Block(g, 1, 2, 365 + 91 * q, 455 + 91 * q) for q, g in enumerate(("meeting", "in_call", "in_email"))),
        _Block("listen_event", 1, 2, 638, 730),
        _Block("out_email", 2, 6, 365, 730),
    ), (_Gratitude("trigger_any", 400, 700, 0.4, thanked=True),), filler_from=200, filler_weight=1.2),
    Persona("friend", 0.19, "Friend", (), 20, OLDEST, (
        _Block("conv", 1, 2, 1, 179),
        _Block("out_email", 1, 1, 1, 89, 0.5),
        _Block("listen", 1, 1, 90, 179, 0.2),  # 90 days old: just outside the listening window
        _Block("out_email", 1, 2, 90, 179, 0.3),
        _Block("history", 2, 6, 182, OLDEST, 0.4),
        _Block("todo", 1, 1, -30, -1, 0.1),
    )),
    Persona("friend_talked_at", 0.03, "Friend", (_MISSING_LISTENING,), 30, OLDEST, (
        _Block("conv", 1, 2, 1, 179),
        _Block("out_email", 4, 9, 1, 89),
        _Block("out_call", 1, 3, 1, 89, 0.6),
    )),
    Persona("friend_unthanked", 0.02, "Friend", (_MISSING_THANK_YOU,), 180, OLDEST, (
        _Block("conv", 1, 2, 1, 179),
        _Block("out_email", 1, 1, 1, 89, 0.5),
    ), (
        _Gratitude("trigger_plain", 10, 170, 1.0, thanked=False),
        _Gratitude("trigger_any", 200, OLDEST, 0.3, thanked=True),
    )),
    Persona("friend_thanked", 0.02, "Friend", (), 180, OLDEST, (
        _Block("conv", 1, 2, 1, 179),
        _Block("out_email", 1, 1, 1, 89, 0.5),
    ), (_Gratitude("trigger_plain", 10, 170, 1.0, thanked=True),)),
    Persona("familiar", 0.14, "Familiar", (), 100, OLDEST, (
        _Block("conv", 3, 4, 1, 179),  # nothing two-way in quarter 2 (182..272 days ago): not Faithful
        _Block("listen", 1, 2, 1, 89),
        _Block("out_email", 1, 2, 1, 89, 0.7),
        _Block("history", 2, 6, 273, OLDEST, 0.5),
        _Block("todo", 1, 1, -30, -1, 0.2),
    ), (_Gratitude("trigger_any", 8, 170, 0.3, thanked=True),), filler_weight=1.5),
    Persona("familiar_unthanked", 0.04, "Familiar", (_MISSING_THANK_YOU,), 400, OLDEST, (
        *_FAITHFUL_CORE,  # meets Faithful's criteria but for the open flag
        *_quarters(3, 5, 0.5),
    ), (
        _Gratitude("trigger_any", 10, 170, 1.0, thanked=False),
        _Gratitude("trigger_any", 200, OLDEST, 0.5, thanked=True),
    ), filler_weight=2.0),
    Persona("familiar_thanked", 0.03, "Familiar", (), 100, OLDEST, (
        _Block("conv", 3, 4, 1, 179),
        _Block("listen", 1, 2, 1, 89),
        _Block("out_email", 1, 2, 1, 89, 0.7),
    ), (_Gratitude("trigger_any", 10, 170, 1.0, thanked=True),), filler_weight=1.5),
    Persona("faithful", 0.13, "Faithful", (), 400, OLDEST, (
        *_FAITHFUL_CORE,
        *_quarters(3, 5, 0.6),
        _Block("advocacy", 1, 1, 400, OLDEST, 0.2),  # advocacy, but over a year ago: not Forever
        _Block("history", 2, 6, 546, OLDEST, 0.6),
    ), (
        _Gratitude("trigger_quiet", 8, 170, 0.5, thanked=True),  # a referral would be advocacy: Forever
        _Gratitude("trigger_quiet", 200, OLDEST, 0.3, thanked=True),
        _Gratitude("trigger_plain", 1, 5, 0.05, thanked=False),  # too recent to flag
    ), filler_weight=2.0),
    Persona("forever", 0.05, "Forever", (), 760, OLDEST, (
        *_FAITHFUL_CORE,
        *_quarters(3, 5),
        _Block("advocacy", 1, 1, 8, 364),
        _Block("history", 3, 8, 546, OLDEST),
    ), (
        _Gratitude("referral", 8, 300, 0.5, thanked=True),
        _Gratitude("trigger_plain", 8, 170, 0.6, thanked=True),
        _Gratitude("win", 8, 360, 0.4, thanked=True),
    ), filler_weight=2.5),
)

_PERSONA_P = np.array([p.weight for p in PERSONAS]) / sum(p.weight for p in PERSONAS)


# --------------------------------------------------------------------------------------------------------------
# People: owners, contacts, accounts.
# --------------------------------------------------------------------------------------------------------------

_OWNERS = [
    ("Maya Lindqvist", 1.4), ("Daniel Okafor", 1.2), ("Priya Raman", 1.2), ("Tom Becker", 1.0),
    ("Sofia Alvarez", 1.0), ("James Whitfield", 0.9), ("Aiko Tanaka", 0.8), ("Lucas Moreau", 0.5),
]
_OWNER_P = np.array([w for _, w in _OWNERS]) / sum(w for _, w in _OWNERS)
_FIRST = [
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hannah", "Ian", "Julia", "Karim", "Laura",
    "Marco", "Nina", "Oliver", "Paula", "Quentin", "Rosa", "Samuel", "Tara", "Umar", "Vera", "William", "Xin",
    "Yusuf", "Zoe", "Amelia", "Bruno", "Carmen", "Dmitri", "Emma", "Felix", "Gabriela", "Hugo", "Ingrid", "Jonas",
    "Kenji", "Leila", "Mateo", "Noor", "Oscar", "Petra", "Rahul", "Sara", "Theo", "Ursula", "Victor", "Wen",
]
_LAST = [
    "Andersen", "Brown", "Castillo", "Dubois", "Eriksson", "Fischer", "Garcia", "Hughes", "Ivanova", "Jensen",
    "Kowalski", "Lopez", "Murphy", "Nakamura", "O'Brien", "Patel", "Quinn", "Rossi", "Schmidt", "Thompson",
    "Ueda", "Vargas", "Walker", "Xu", "Young", "Zimmermann", "Ahmed", "Bianchi", "Chen", "Dasgupta", "Evans",
    "Fernandes", "Gallagher", "Haddad", "Ito", "Johansson", "Kim", "Larsen", "Mensah", "Novak", "Okoye", "Park",
]
_TITLES = [
    "CEO", "CFO", "CTO", "VP Sales", "VP Operations", "Head of Procurement", "IT Director", "Operations Manager",
    "Finance Manager", "Product Manager", "Office Manager", "Purchasing Agent", "Engineering Lead",
    "Customer Success Manager", "Marketing Director", "Project Manager",
]
_LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show", "Employee Referral",
                 "Other"]
_LEAD_SOURCE_P = np.array([0.3, 0.15, 0.12, 0.1, 0.13, 0.1, 0.1])
_ACCOUNT_A = ["North", "Blue", "Bright", "Silver", "Green", "Summit", "Pioneer", "Harbor", "Cedar", "Granite",
              "Maple", "River", "Stone", "Iron", "Golden", "Clear"]
_ACCOUNT_B = ["field", "ridge", "works", "point", "line", "gate", "wave", "path", "bridge", "crest", "mark", "soft"]


def _chunk_rng(seed: int, chunk: int) -> np.random.Generator:
    return np.random.default_rng([seed, chunk])


def _draw_personas(rng: np.random.Generator, n: int) -> Ints:
    return rng.choice(len(PERSONAS), size=n, p=_PERSONA_P).astype(np.int64)


def personas(contacts: int, seed: int = 7) -> list[str]:
    """The persona of each contact `generate` makes, in Contact Id order (for tests and for explaining the demo)."""
    out: list[str] = []
    for chunk, start in enumerate(range(0, contacts, CHUNK)):
        codes = _draw_personas(_chunk_rng(seed, chunk), min(CHUNK, contacts - start))
        out.extend(PERSONAS[int(i)].name for i in codes)
    return out


# --------------------------------------------------------------------------------------------------------------
# One chunk of activities, as columns.
# --------------------------------------------------------------------------------------------------------------


# Whom an activity is about (WhoId).
_ABOUT_CONTACT, _ABOUT_NOBODY, _ABOUT_LEAD, _ABOUT_CONTACT_DELETED = 0, 1, 2, 3
_COMPLETED, _NOT_STARTED, _IN_PROGRESS = 0, 1, 2


@dataclass
class _Acts:
    """Activities under construction, as lists of column pieces: contact (chunk-local, -1 for none),
    template, days ago and whom it is about."""

    contact: list[Ints] = field(default_factory=list)
    template: list[Ints] = field(default_factory=list)
    offset: list[Ints] = field(default_factory=list)
    who: list[Ints] = field(default_factory=list)

    def add(self, contact: Ints, template: Ints, offset: Ints, who: int | Ints = _ABOUT_CONTACT) -> None:
        self.contact.append(contact)
        self.template.append(template)
        self.offset.append(offset)
        self.who.append(np.broadcast_to(np.asarray(who, dtype=np.int64), contact.shape))

    def size(self) -> int:
        return sum(len(c) for c in self.contact)

    def columns(self) -> tuple[Ints, Ints, Ints, Ints]:
        def cat(parts: list[Ints]) -> Ints:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        return cat(self.contact), cat(self.template), cat(self.offset), cat(self.who)


def _choose(rng: np.random.Generator, group: str, n: int) -> Ints:
    ids = _GROUP_IDS[group]
    return ids[rng.integers(0, len(ids), size=n)]


def _offsets(rng: np.random.Generator, newest: int, oldest: Ints) -> Ints:
    """Uniform whole days in newest..oldest (per row)."""
    span = oldest - newest + 1
    return newest + (rng.random(len(oldest)) * span).astype(np.int64)


def _block(rng: np.random.Generator, acts: _Acts, members: Ints, age: Ints, b: _Block) -> None:
    chosen = members[rng.random(len(members)) < b.share] if b.share < 1 else members
    counts = rng.integers(b.lo, b.hi + 1, size=len(chosen))
    rows = np.repeat(chosen, counts)
    oldest = np.minimum(b.oldest, age[rows])  # never before the contact existed
    keep = oldest >= b.newest
    rows, oldest = rows[keep], oldest[keep]
    acts.add(rows, _choose(rng, b.group, len(rows)), _offsets(rng, b.newest, oldest))


def _gratitude(rng: np.random.Generator, acts: _Acts, members: Ints, age: Ints, g: _Gratitude) -> None:
    rows = members[rng.random(len(members)) < g.share]
    oldest = np.minimum(g.oldest, age[rows])
    keep = oldest >= g.newest
    rows, oldest = rows[keep], oldest[keep]
    trig = _choose(rng, g.group, len(rows))
    off = _offsets(rng, g.newest, oldest)
    acts.add(rows, trig, off)
    if g.thanked:
        # Thanked the same day or within the next week, never later than yesterday.
        lag = np.minimum(rng.integers(0, 7, size=len(rows)), np.maximum(off - 1, 0))
        thanks = np.where(_IS_FEEDBACK[trig], _choose(rng, "thanks_feedback", len(rows)),
                          _choose(rng, "thanks", len(rows)))
        acts.add(rows, thanks, off - lag)


def _chunk_activities(rng: np.random.Generator, persona: Ints, age: Ints, target: int) -> _Acts:
    """Each persona's signature activities, filler up to `target`, then Lead/no-contact and deleted rows."""
    acts = _Acts()
    for code, p in enumerate(PERSONAS):
        members = np.flatnonzero(persona == code).astype(np.int64)
        for b in p.blocks:
            _block(rng, acts, members, age, b)
        for g in p.gratitude:
            _gratitude(rng, acts, members, age, g)

    # Filler: outbound mail, to-dos and calls spread over each contact's older history, more for the closer
    # relationships, never inside the windows that decide the persona's rung and flags.
    extra = round(target * NO_WHO_SHARE)
    filler = max(0, target - acts.size() - extra)
    filler_from = np.array([p.filler_from for p in PERSONAS], dtype=np.int64)[persona]
    weight = np.array([p.filler_weight for p in PERSONAS])[persona] * (age > filler_from)
    if filler and weight.sum() > 0:
        rows = np.repeat(np.arange(len(persona), dtype=np.int64), rng.poisson(weight * (filler / weight.sum())))
        kind = rng.choice(4, size=len(rows), p=[0.5, 0.25, 0.2, 0.05])
        template = np.choose(kind, [_choose(rng, g, len(rows)) for g in ("out_email", "todo", "out_call",
                                                                            "list_email")])
        acts.add(rows, template, _offsets(rng, 0, age[rows] - filler_from[rows]) + filler_from[rows])

    lead = rng.random(extra) < 0.6
    acts.add(
        np.full(extra, -1, dtype=np.int64),
        np.where(lead, _choose(rng, "lead", extra), _choose(rng, "internal", extra)),
        _offsets(rng, 1, np.full(extra, 730, dtype=np.int64)),
        np.where(lead, _ABOUT_LEAD, _ABOUT_NOBODY),
    )
    deleted = round(target * DELETED_SHARE)
    rows = rng.integers(0, len(persona), size=deleted, dtype=np.int64)
    acts.add(rows, _choose(rng, "deleted", deleted), _offsets(rng, 1, np.minimum(179, age[rows])),
             _ABOUT_CONTACT_DELETED)
    return acts


# --------------------------------------------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------------------------------------------

def _quote(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def _pick(values: list[str], index_sql: str) -> str:
    """SQL picking values[index] (0-based) from an inline list."""
    return f"{_sql_list(values)}[{index_sql} + 1]"


def _at(as_of: dt.date, days_ago: Ints, seconds: Ints) -> Times:
    """Timestamps `days_ago` days before midnight of `as_of`, plus `seconds` into that day."""
    out: Times = np.datetime64(as_of.isoformat(), "us") + (seconds - days_ago * 86_400).astype("timedelta64[s]")
    return out


def _load_lookups(crm: LocalCrm) -> None:
    """Owners, and the small lookup tables the bulk INSERTs join against."""
    con = crm.con
    names = [n for n, _ in _OWNERS]
    emails = [n.lower().replace(" ", ".") + "@trust-ladder-demo.example.com" for n in names]
    con.execute(
        'INSERT INTO "User" ("Id", "Name", "Email", "IsActive") '
        f"SELECT sf_id('005', i), {_pick(names, 'i')}, {_pick(emails, 'i')}, true FROM range({len(names)}) r(i)"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE demo_user AS "
                f"SELECT CAST(i AS BIGINT) AS n, sf_id('005', i) AS Id FROM range({len(names)}) r(i)")
    con.execute("CREATE OR REPLACE TEMP TABLE demo_tmpl (i BIGINT, Subject VARCHAR, Subtype VARCHAR, "
                "Type VARCHAR, CallType VARCHAR, AllDay BOOLEAN)")
    con.execute("INSERT INTO demo_tmpl VALUES " + ", ".join(
        f"({i}, {_quote(t.subject)}, {_quote(t.subtype)}, {_quote(t.type)}, {_quote(t.call_type)}, {t.all_day})"
        for i, t in enumerate(_TEMPLATES)
    ))


@dataclass(frozen=True)
class _Org:
    """What every chunk shares: sizes of the invented accounts and leads, and who owns each account."""

    as_of: dt.date
    accounts: int
    leads: int
    account_owner: Ints


@dataclass(frozen=True)
class _Contacts:
    """The chunk's contacts as the activities need them (index = chunk-local contact)."""

    first: int  # global number of the chunk's first contact
    age: Ints  # days since created
    account: Ints
    owner: Ints
    created: Times


def _load_contacts(crm: LocalCrm, rng: np.random.Generator, first: int, persona: Ints, org: _Org) -> _Contacts:
    n = len(persona)
    lo = np.array([p.min_age for p in PERSONAS], dtype=np.int64)[persona]
    hi = np.array([p.max_age for p in PERSONAS], dtype=np.int64)[persona]
    age = _offsets(rng, 0, hi - lo) + lo
    account = rng.integers(0, org.accounts, size=n, dtype=np.int64)
    owner = np.where(rng.random(n) < 0.9, org.account_owner[account],
                     rng.choice(len(_OWNERS), size=n, p=_OWNER_P))
    created = _at(org.as_of, age, rng.integers(8 * 3600, 17 * 3600, size=n, dtype=np.int64))
    # Last edited some time between creation and an hour before the evaluation date.
    span = (_at(org.as_of, np.zeros(n, dtype=np.int64), np.full(n, -3600, dtype=np.int64)) - created)
    modified = created + (span.astype(np.int64) * rng.random(n)).astype("timedelta64[us]").astype("timedelta64[s]")
    crm.con.register("demo_c", {
        "n": np.arange(first, first + n, dtype=np.int64),
        "first": rng.integers(0, len(_FIRST), size=n, dtype=np.int64),
        "last": rng.integers(0, len(_LAST), size=n, dtype=np.int64),
        "title": rng.integers(0, len(_TITLES), size=n, dtype=np.int64),
        "source": rng.choice(len(_LEAD_SOURCES), size=n, p=_LEAD_SOURCE_P),
        "account": account,
        "owner": owner,
        "created": created,
        "modified": modified,
    })
    n_a, n_b = len(_ACCOUNT_A), len(_ACCOUNT_B)
    domain = (f"lower({_pick(_ACCOUNT_A, f'account % {n_a}')} || {_pick(_ACCOUNT_B, f'(account // {n_a}) % {n_b}')})"
              f" || CASE WHEN account >= {n_a * n_b} THEN CAST(account // {n_a * n_b} AS VARCHAR) ELSE '' END"
              " || '.example.com'")
    first_name, last_name = _pick(_FIRST, "first"), _pick(_LAST, "last")
    crm.con.execute(f"""
CREATE OR REPLACE TEMP TABLE demo_contact AS
SELECT c.n, sf_id('003', c.n) AS Id, sf_id('001', c.account) AS AccountId, u.Id AS OwnerId,
       {first_name} AS FirstName, {last_name} AS LastName,
       lower(replace({first_name} || '.' || {last_name}, '''', '')) || '@' || {domain} AS Email,
       {_pick(_TITLES, 'title')} AS Title, {_pick(_LEAD_SOURCES, 'source')} AS LeadSource, created, modified
FROM demo_c c JOIN demo_user u ON u.n = c.owner
""")
    crm.con.unregister("demo_c")
    crm.con.execute("""
INSERT INTO "Contact" ("Id", "FirstName", "LastName", "Email", "Title", "AccountId", "OwnerId", "LeadSource",
                       "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT Id, FirstName, LastName, Email, Title, AccountId, OwnerId, LeadSource, created, modified, modified, false
FROM demo_contact ORDER BY n
""")
    return _Contacts(first, age, account, owner.astype(np.int64), created)


_TASK_SQL = """
INSERT INTO "Task" ("Id", "WhoId", "WhatId", "AccountId", "OwnerId", "Subject", "ActivityDate", "Status",
                    "Priority", "Type", "TaskSubtype", "CallType", "CallDurationInSeconds", "CallDisposition",
                    "IsClosed", "CompletedDateTime", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                    "IsDeleted")
SELECT sf_id('00T', a.n), {who}, {what}, c.AccountId, u.Id, t.Subject, CAST(a.day AS DATE),
       CASE a.status WHEN 0 THEN 'Completed' WHEN 1 THEN 'Not Started' ELSE 'In Progress' END,
       CASE WHEN a.high THEN 'High' ELSE 'Normal' END, t.Type, t.Subtype, t.CallType,
       CASE WHEN t.Subtype = 'Call' THEN a.seconds END,
       CASE WHEN t.Subtype = 'Call' THEN CASE WHEN a.voicemail THEN 'Left voicemail' ELSE 'Connected' END END,
       a.status = 0, CASE WHEN a.status = 0 THEN a.at END, a.made, a.touched, a.touched, a.deleted
{source}
"""
_EVENT_SQL = """
INSERT INTO "Event" ("Id", "WhoId", "WhatId", "AccountId", "OwnerId", "Subject", "Type", "EventSubtype",
                     "StartDateTime", "EndDateTime", "ActivityDateTime", "ActivityDate", "DurationInMinutes",
                     "IsAllDayEvent", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT sf_id('00U', a.n), {who}, {what}, c.AccountId, u.Id, t.Subject, t.Type, t.Subtype,
       a.at, a.ends, a.at, CAST(a.day AS DATE), a.minutes, t.AllDay, a.made, a.touched, a.touched, a.deleted
{source}
"""
# sf_id expands to a long expression, and DuckDB evaluates it for every row when it sits inside a CASE: Lead,
# Opportunity and Case Ids are made only for the rows that have one, and joined back (twice as fast).
_SOURCE_SQL = f"""
FROM demo_a a
JOIN demo_tmpl t ON t.i = a.tmpl JOIN demo_user u ON u.n = a.owner
LEFT JOIN demo_contact c ON c.n = a.contact
LEFT JOIN (SELECT n, sf_id('00Q', lead) AS lead_id FROM demo_a WHERE who = {_ABOUT_LEAD}) l ON l.n = a.n
LEFT JOIN (SELECT n, sf_id(CASE what WHEN {_WHAT_OPP} THEN '006' ELSE '500' END, opp) AS what_id
           FROM demo_a WHERE what IN ({_WHAT_OPP}, {_WHAT_CASE})) w ON w.n = a.n
ORDER BY a.n
"""
_WHO_SQL = "COALESCE(l.lead_id, c.Id)"
_WHAT_SQL = f"CASE WHEN a.what = {_WHAT_ACCOUNT} THEN c.AccountId ELSE w.what_id END"


def _load_activities(
    crm: LocalCrm, rng: np.random.Generator, acts: _Acts, people: _Contacts, org: _Org, next_ids: tuple[int, int]
) -> tuple[int, int]:
    """Dates, times, owners and details for every activity, then one INSERT per table; returns rows per table."""
    contact, template, offset, who = acts.columns()
    # Oldest first within each contact, so Ids grow with time as they would in a real org.
    order = np.lexsort((template, -offset, contact))
    contact, template, offset, who = contact[order], template[order], offset[order], who[order]
    n = len(contact)
    has_contact = contact >= 0
    c = np.where(has_contact, contact, 0)
    is_event, all_day, is_todo = _IS_EVENT[template], _IS_ALL_DAY[template], _IS_TODO[template]
    planned = offset < 0

    day = _at(org.as_of, offset, np.zeros(n, dtype=np.int64))
    # Business hours; meetings start on the quarter hour; nothing before the contact existed.
    seconds = np.where(is_event, rng.integers(32, 70, size=n) * 900, rng.integers(8 * 3600, 18 * 3600, size=n))
    at = _at(org.as_of, offset, seconds)
    at = np.where(has_contact & ~planned, np.maximum(at, people.created[c] + np.timedelta64(60, "s")), at)
    at = np.where(all_day, day, at)
    minutes = np.zeros(n, dtype=np.int64)
    pick = rng.random(n)
    for t in np.unique(template[is_event]):
        mask = template == t
        choices = _MINUTES[t]
        minutes[mask] = choices[(pick[mask] * len(choices)).astype(np.int64)]
    ends = np.where(all_day, day, at + (minutes * 60 * _US_PER_S).astype("timedelta64[us]"))

    # Logged mail and calls are created when they happen, meetings and to-dos up to two weeks ahead, planned
    # items before the evaluation date; nothing is created or modified on or after it.
    made = np.where(
        planned,
        _at(org.as_of, rng.integers(1, 20, size=n), rng.integers(8 * 3600, 18 * 3600, size=n)),
        at - np.where(is_event | is_todo, rng.integers(0, 15, size=n), 0).astype("timedelta64[D]"),
    )
    made = np.where(has_contact, np.maximum(made, people.created[c]), made)
    last_minute = _at(org.as_of, np.zeros(n, dtype=np.int64), np.full(n, -60, dtype=np.int64))
    made = np.minimum(made, last_minute)
    touched = np.where(planned, made,
                       np.maximum(made, ends) + (rng.integers(0, 7200, size=n) * _US_PER_S).astype("timedelta64[us]"))
    touched = np.minimum(touched, last_minute)

    overdue = is_todo & ~planned & (rng.random(n) < OPEN_TODO_SHARE)
    status = np.where(planned, _NOT_STARTED,
                      np.where(overdue, np.where(rng.random(n) < 0.3, _IN_PROGRESS, _NOT_STARTED), _COMPLETED))
    account = np.where(has_contact, people.account[c], rng.integers(0, org.accounts, size=n))
    owner = np.where(has_contact & (rng.random(n) < 0.9), people.owner[c],
                     rng.choice(len(_OWNERS), size=n, p=_OWNER_P))
    voicemail = _IS_OUTBOUND_CALL[template] & (rng.random(n) < 0.2)
    cols: dict[str, npt.NDArray[Any]] = {
        "contact": np.where(has_contact, contact + people.first, -1),
        "who": who,
        "lead": rng.integers(0, org.leads, size=n, dtype=np.int64),
        "tmpl": template,
        "what": np.where(has_contact, _WHAT[template], _WHAT_NONE),  # a Lead's activity relates to no record
        "opp": account * 4 + rng.integers(0, 4, size=n),  # each account has a few opportunities (and cases)
        "owner": owner,
        "day": day,
        "at": at,
        "ends": ends,
        "minutes": minutes,
        "made": made,
        "touched": touched,
        "status": status,
        "high": rng.random(n) < 0.15,
        "voicemail": voicemail,
        "seconds": np.where(voicemail, rng.integers(15, 60, size=n), rng.integers(60, 1800, size=n)),
        "deleted": who == _ABOUT_CONTACT_DELETED,
    }
    sizes = []
    for sql, mask, next_id in ((_TASK_SQL, ~is_event, next_ids[0]), (_EVENT_SQL, is_event, next_ids[1])):
        part = {k: v[mask] for k, v in cols.items()}
        part["n"] = np.arange(next_id, next_id + int(mask.sum()), dtype=np.int64)
        crm.con.register("demo_a", part)
        crm.con.execute(sql.format(who=_WHO_SQL, what=_WHAT_SQL, source=_SOURCE_SQL))
        crm.con.unregister("demo_a")
        sizes.append(int(mask.sum()))
    return sizes[0], sizes[1]


def _check_empty(crm: LocalCrm) -> None:
    for table in ("Contact", "Task", "Event", "User"):
        row = crm.con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        if row and row[0]:
            raise DataError(
                f"the local CRM already holds {row[0]} {table} rows; the demo fills only an empty CRM "
                "(create a fresh one, or replace the file)"
            )


def generate(
    crm: LocalCrm,
    *,
    contacts: int = 3000,
    seed: int = 7,
    as_of: dt.date,
    activities_per_contact: float = 10.0,
    shapes: bool = True,
) -> DemoStats:
    """Fill an empty local CRM with a demo org whose history ends the day before `as_of`, in one transaction.

    The org holds about `activities_per_contact` live activities per contact. The personas' own histories
    need about 8, so a smaller figure is met only from above. `shapes`: add emails, shared and cancelled
    meetings, webinars, private events and backdated calls (connector.crm.local.demo_shapes).
    """
    if contacts < 0 or activities_per_contact < 0:
        raise ValueError("contacts and activities_per_contact must not be negative")
    _check_empty(crm)
    accounts = max(1, contacts // 5)
    org = _Org(
        as_of=as_of,
        accounts=accounts,
        leads=max(1, contacts // 10),
        account_owner=np.random.default_rng([seed, 1 << 30]).choice(len(_OWNERS), size=accounts, p=_OWNER_P),
    )
    con = crm.con
    con.execute("BEGIN TRANSACTION")
    try:
        _load_lookups(crm)
        tasks = events = 0
        for chunk, first in enumerate(range(0, contacts, CHUNK)):
            rng = _chunk_rng(seed, chunk)
            persona = _draw_personas(rng, min(CHUNK, contacts - first))
            people = _load_contacts(crm, rng, first, persona, org)
            acts = _chunk_activities(rng, persona, people.age, round(len(persona) * activities_per_contact))
            t, e = _load_activities(crm, rng, acts, people, org, (tasks, events))
            tasks, events = tasks + t, events + e
        if shapes:
            demo_shapes.add(crm, seed=seed, as_of=as_of)
        for table in ("demo_contact", "demo_user", "demo_tmpl"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = crm.counts()
    return DemoStats(contacts=counts["Contact"], tasks=counts["Task"], events=counts["Event"], users=counts["User"])
