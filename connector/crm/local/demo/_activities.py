"""Loading a chunk's activities: dates, times, owners and details, then one INSERT per table (Task, Event)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connector import sql
from connector.crm.local.demo._days import US_PER_S, timestamps
from connector.crm.local.demo._histories import ABOUT_CONTACT_DELETED, ABOUT_LEAD, Acts
from connector.crm.local.demo._people import OWNER_P, OWNERS, Contacts, Org
from connector.crm.local.demo._templates import (
    IS_ALL_DAY,
    IS_EVENT,
    IS_OUTBOUND_CALL,
    IS_TODO,
    MINUTES,
    WHAT,
    WHAT_ACCOUNT,
    WHAT_CASE,
    WHAT_NONE,
    WHAT_OPP,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from connector.crm.local.store import LocalCrm

OPEN_TODO_SHARE = 0.08  # past to-dos still open (overdue)

_COMPLETED, _NOT_STARTED, _IN_PROGRESS = 0, 1, 2


_TASK_SQL = """
INSERT INTO "Task" ("Id", "WhoId", "WhatId", "AccountId", "OwnerId", "Subject", "ActivityDate", "Status",
                    "Priority", "Type", "TaskSubtype", "CallType", "CallDurationInSeconds", "CallDisposition",
                    "IsClosed", "CompletedDateTime", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                    "IsDeleted")
SELECT sf_id('00T', a.n), COALESCE(l.lead_id, c.Id),
       CASE WHEN a.what = $account THEN c.AccountId ELSE w.what_id END, c.AccountId, u.Id, t.Subject,
       CAST(a.day AS DATE),
       CASE a.status WHEN 0 THEN 'Completed' WHEN 1 THEN 'Not Started' ELSE 'In Progress' END,
       CASE WHEN a.high THEN 'High' ELSE 'Normal' END, t.Type, t.Subtype, t.CallType,
       CASE WHEN t.Subtype = 'Call' THEN a.seconds END,
       CASE WHEN t.Subtype = 'Call' THEN CASE WHEN a.voicemail THEN 'Left voicemail' ELSE 'Connected' END END,
       a.status = 0, CASE WHEN a.status = 0 THEN a.at END, a.made, a.touched, a.touched, a.deleted
"""
_EVENT_SQL = """
INSERT INTO "Event" ("Id", "WhoId", "WhatId", "AccountId", "OwnerId", "Subject", "Type", "EventSubtype",
                     "StartDateTime", "EndDateTime", "ActivityDateTime", "ActivityDate", "DurationInMinutes",
                     "IsAllDayEvent", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT sf_id('00U', a.n), COALESCE(l.lead_id, c.Id),
       CASE WHEN a.what = $account THEN c.AccountId ELSE w.what_id END, c.AccountId, u.Id, t.Subject, t.Type, t.Subtype,
       a.at, a.ends, a.at, CAST(a.day AS DATE), a.minutes, t.AllDay, a.made, a.touched, a.touched, a.deleted
"""
# sf_id expands to a long expression, and DuckDB evaluates it for every row when it sits inside a CASE: Lead,
# Opportunity and Case Ids are made only for the rows that have one, and joined back (twice as fast).
_SOURCE_SQL = """
FROM demo_a a
JOIN demo_tmpl t ON t.i = a.tmpl JOIN demo_user u ON u.n = a.owner
LEFT JOIN demo_contact c ON c.n = a.contact
LEFT JOIN (SELECT n, sf_id('00Q', lead) AS lead_id FROM demo_a WHERE who = $lead) l ON l.n = a.n
LEFT JOIN (SELECT n, sf_id(CASE what WHEN $opp THEN '006' ELSE '500' END, opp) AS what_id
           FROM demo_a WHERE what IN ($opp, $case)) w ON w.n = a.n
ORDER BY a.n
"""
_SLOTS = {"account": WHAT_ACCOUNT, "opp": WHAT_OPP, "case": WHAT_CASE, "lead": ABOUT_LEAD}


def load_activities(
    crm: LocalCrm, rng: np.random.Generator, acts: Acts, people: Contacts, org: Org, next_ids: tuple[int, int]
) -> tuple[int, int]:
    """Dates, times, owners and details for every activity, then one INSERT per table; returns rows per table."""
    contact, template, offset, who = acts.columns()
    # Oldest first within each contact, so Ids grow with time as they would in a real org.
    order = np.lexsort((template, -offset, contact))
    contact, template, offset, who = contact[order], template[order], offset[order], who[order]
    n = len(contact)
    has_contact = contact >= 0
    c = np.where(has_contact, contact, 0)
    is_event, all_day, is_todo = IS_EVENT[template], IS_ALL_DAY[template], IS_TODO[template]
    planned = offset < 0

    day = timestamps(org.as_of, offset, np.zeros(n, dtype=np.int64))
    # Business hours; meetings start on the quarter hour; nothing before the contact existed.
    seconds = np.where(is_event, rng.integers(32, 70, size=n) * 900, rng.integers(8 * 3600, 18 * 3600, size=n))
    at = timestamps(org.as_of, offset, seconds)
    at = np.where(has_contact & ~planned, np.maximum(at, people.created[c] + np.timedelta64(60, "s")), at)
    at = np.where(all_day, day, at)
    minutes = np.zeros(n, dtype=np.int64)
    pick = rng.random(n)
    for t in np.unique(template[is_event]):
        mask = template == t
        choices = MINUTES[t]
        minutes[mask] = choices[(pick[mask] * len(choices)).astype(np.int64)]
    ends = np.where(all_day, day, at + (minutes * 60 * US_PER_S).astype("timedelta64[us]"))

    # Logged mail and calls are created when they happen, meetings and to-dos up to two weeks ahead, planned
    # items before the evaluation date; nothing is created or modified on or after it.
    made = np.where(
        planned,
        timestamps(org.as_of, rng.integers(1, 20, size=n), rng.integers(8 * 3600, 18 * 3600, size=n)),
        at - np.where(is_event | is_todo, rng.integers(0, 15, size=n), 0).astype("timedelta64[D]"),
    )
    made = np.where(has_contact, np.maximum(made, people.created[c]), made)
    last_minute = timestamps(org.as_of, np.zeros(n, dtype=np.int64), np.full(n, -60, dtype=np.int64))
    made = np.minimum(made, last_minute)
    touched = np.where(
        planned, made, np.maximum(made, ends) + (rng.integers(0, 7200, size=n) * US_PER_S).astype("timedelta64[us]")
    )
    touched = np.minimum(touched, last_minute)

    overdue = is_todo & ~planned & (rng.random(n) < OPEN_TODO_SHARE)
    status = np.where(
        planned, _NOT_STARTED, np.where(overdue, np.where(rng.random(n) < 0.3, _IN_PROGRESS, _NOT_STARTED), _COMPLETED)
    )
    account = np.where(has_contact, people.account[c], rng.integers(0, org.accounts, size=n))
    owner = np.where(has_contact & (rng.random(n) < 0.9), people.owner[c], rng.choice(len(OWNERS), size=n, p=OWNER_P))
    voicemail = IS_OUTBOUND_CALL[template] & (rng.random(n) < 0.2)
    cols: dict[str, npt.NDArray[Any]] = {
        "contact": np.where(has_contact, contact + people.first, -1),
        "who": who,
        "lead": rng.integers(0, org.leads, size=n, dtype=np.int64),
        "tmpl": template,
        "what": np.where(has_contact, WHAT[template], WHAT_NONE),  # a Lead's activity relates to no record
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
        "deleted": who == ABOUT_CONTACT_DELETED,
    }
    sizes = []
    for insert, mask, next_id in ((_TASK_SQL, ~is_event, next_ids[0]), (_EVENT_SQL, is_event, next_ids[1])):
        part = {k: v[mask] for k, v in cols.items()}
        part["n"] = np.arange(next_id, next_id + int(mask.sum()), dtype=np.int64)
        crm.con.register("demo_a", part)
        sql.run(crm.con, sql.q(insert + _SOURCE_SQL, **_SLOTS))
        crm.con.unregister("demo_a")
        sizes.append(int(mask.sum()))
    return sizes[0], sizes[1]
