"""Activity templates: the subjects, subtypes and related records the demo's Tasks and Events are drawn from.

Subjects are chosen against the kinds of rules/ladder.yaml; the comments say which kinds a template is meant to
hit, and every other kind it must stay clear of (no stray 'feedback', 'thank', 'referral', 'introduction',
'signed' ... in ordinary subjects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

WHAT_NONE, WHAT_OPP, WHAT_ACCOUNT, WHAT_CASE = 0, 1, 2, 3


@dataclass(frozen=True)
class _Template:
    obj: str  # 'Task' or 'Event'
    subject: str
    subtype: str  # TaskSubtype or EventSubtype
    type: str
    call_type: str | None = None
    what: int = WHAT_NONE
    minutes: tuple[int, ...] = (30, 45, 60)  # event lengths to draw from
    all_day: bool = False


def _email(subject: str, what: int = WHAT_NONE) -> _Template:
    return _Template("Task", subject, "Email", "Email", what=what)


def _call(subject: str, direction: str, what: int = WHAT_NONE) -> _Template:
    return _Template("Task", subject, "Call", "Call", call_type=direction, what=what)


def _task(subject: str, what: int = WHAT_NONE, type_: str = "Other") -> _Template:
    return _Template("Task", subject, "Task", type_, what=what)


def _event(subject: str, what: int = WHAT_NONE, minutes: tuple[int, ...] = (30, 45, 60)) -> _Template:
    return _Template("Event", subject, "Event", "Meeting", what=what, minutes=minutes)


_OUT_SUBJECTS = [
    ("Product update", WHAT_NONE),
    ("Following up on our proposal", WHAT_OPP),
    ("Pricing for next year", WHAT_OPP),
    ("Agenda for our next meeting", WHAT_NONE),
    ("Quick question", WHAT_NONE),
    ("New features in the spring release", WHAT_NONE),
    ("Resources you asked for", WHAT_NONE),
    ("Meeting recap", WHAT_NONE),
    ("Webinar invitation", WHAT_NONE),
    ("Your onboarding plan", WHAT_NONE),
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
        _call("Pricing call", "Outbound", WHAT_OPP),
        _call("Demo follow-up call", "Outbound"),
    ],
    # inbound_call, never listening or feedback
    "in_call": [
        _call("Inbound call", "Inbound"),
        _call("Support question", "Inbound", WHAT_CASE),
        _call("Question about an invoice", "Inbound"),
        _call("Call about contract terms", "Inbound", WHAT_OPP),
    ],
    # meeting, never listening
    "meeting": [
        _event("Product demo", WHAT_OPP, (45, 60)),
        _event("Proposal walkthrough", WHAT_OPP),
        _event("Onboarding session", WHAT_ACCOUNT, (60, 90)),
        _event("Contract negotiation", WHAT_OPP, (60, 90)),
        _event("Status meeting", WHAT_NONE, (60, 90)),
        _event("Implementation planning", WHAT_ACCOUNT, (60,)),
    ],
    # meeting + listening
    "listen_event": [
        _event("Discovery call", WHAT_OPP),
        _event("Quarterly business review", WHAT_ACCOUNT, (60, 90)),
        _event("Check-in"),
        _event("Customer interview", WHAT_NONE, (45, 60)),
        _event("QBR", WHAT_ACCOUNT, (60, 90)),
    ],
    # outbound_call + listening (a call we placed to listen is not a conversation they started)
    "listen_call": [_call("Check-in call", "Outbound"), _call("Discovery call", "Outbound", WHAT_OPP)],
    # feedback (gratitude trigger); 'Product feedback call' is also an inbound_call
    "feedback": [
        _task("NPS survey answered"),
        _call("Product feedback call", "Inbound"),
        _task("Feature suggestion received"),
    ],
    # feedback + listening + meeting
    "feedback_session": [_event("Customer feedback session", WHAT_ACCOUNT, (45, 60))],
    # referral + advocacy (gratitude trigger)
    "referral": [_task("Referral: introduced a colleague"), _task("Referred a partner company to us")],
    # advocacy only, not a trigger
    "advocacy": [
        _task("Reference call for a prospect", type_="Call"),
        _task("Testimonial recorded"),
        _task("Case study published", WHAT_ACCOUNT),
    ],
    # won_deal (gratitude trigger): needs an Opportunity WhatId
    "win": [
        _task("Closed won: annual subscription", WHAT_OPP),
        _task("Closed won: expansion", WHAT_OPP),
        _task("Renewal signed", WHAT_OPP),
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
        _task("Prepare proposal", WHAT_OPP),
        _task("Update account plan", WHAT_ACCOUNT),
        _task("Send pricing sheet"),
        _task("Review contract terms", WHAT_OPP),
        _task("Log meeting notes"),
        _task("Plan onsite visit", WHAT_ACCOUNT),
        _task("Call back about pricing", type_="Call"),
    ],
    # all-day events are not meetings
    "all_day": [
        _Template("Event", s, "Event", "Other", what=WHAT_ACCOUNT, all_day=True)
        for s in ("Annual customer conference", "Onsite workshop", "Trade show")
    ],
    # internal work with no contact
    "internal": [_task("Prepare quarterly forecast"), _event("Team pipeline meeting", WHAT_NONE, (30, 60))],
}
# Activities about a Lead: they look like two-way contact, listening and gratitude, and must all be ignored.
_GROUPS["lead"] = [
    *_GROUPS["out_email"][:3],
    *_GROUPS["in_email"][:2],
    _GROUPS["out_call"][0],
    _GROUPS["in_call"][0],
    *_GROUPS["listen_event"][:2],
    _GROUPS["feedback"][0],
    _GROUPS["thanks"][0],
]
# Deleted activities that would change a rung or a flag if they were counted.
_GROUPS["deleted"] = [
    *_GROUPS["in_email"][:3],
    _GROUPS["meeting"][0],
    *_GROUPS["listen_event"][:3],
    *_GROUPS["thanks"][:2],
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
# A thank-you for a referral names it: "Thank you for your business" would name a deal won, and answer none of
# her referrals (the default rules' named_by). Drawn in its place for a referral (added last: the templates before
# keep their numbers, and the demo its figures).
_GROUPS["thanks_referral"] = [_email("Thanks for the introduction")]

TEMPLATES: list[_Template] = list(dict.fromkeys(t for ts in _GROUPS.values() for t in ts))
_TEMPLATE_INDEX = {t: i for i, t in enumerate(TEMPLATES)}
GROUP_IDS: dict[str, Ints] = {
    g: np.array([_TEMPLATE_INDEX[t] for t in ts], dtype=np.int64) for g, ts in _GROUPS.items()
}
IS_EVENT = np.array([t.obj == "Event" for t in TEMPLATES])
IS_ALL_DAY = np.array([t.all_day for t in TEMPLATES])
IS_TODO = np.isin(np.arange(len(TEMPLATES)), GROUP_IDS["todo"])
IS_FEEDBACK = np.isin(np.arange(len(TEMPLATES)), np.concatenate([GROUP_IDS["feedback"], GROUP_IDS["feedback_session"]]))
IS_REFERRAL = np.isin(np.arange(len(TEMPLATES)), GROUP_IDS["referral"])
THANKS_FOR_BUSINESS = _TEMPLATE_INDEX[_GROUPS["thanks"][1]]
THANKS_FOR_REFERRAL = _TEMPLATE_INDEX[_GROUPS["thanks_referral"][0]]
WHAT = np.array([t.what for t in TEMPLATES], dtype=np.int64)
IS_OUTBOUND_CALL = np.array([t.call_type == "Outbound" for t in TEMPLATES])
MINUTES = [np.array(t.minutes, dtype=np.int64) for t in TEMPLATES]
