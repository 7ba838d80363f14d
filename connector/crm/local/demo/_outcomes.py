"""The demo org's deals: won and lost Opportunities with their contact roles, drawn with a known relation to the
rung each contact stood on, so `trust-ladder calibrate` has something true to find.

On the first day of each of the last OUTCOME_MONTHS months, each contact wins a deal closing within the next
CLOSE_WITHIN_DAYS days with the probability WON_PER_MONTH gives its rung that day, and loses one with LOST_PER_MONTH
whatever its rung. One rung is made deliberately uninformative: Familiar (the third rung) wins exactly as often as
Friend below it, so calibration should show a lift of 1 there and the ordering broken. Deals only: no Task, Event
or Contact is added or changed, so every other figure of the demo stays as it was.

Contacts go too: on each month's first day a contact still there has its email bounce within the next
CLOSE_WITHIN_DAYS days with the probability GONE_PER_MONTH gives its rung (falling as the ladder climbs), once;
IsEmailBounced, EmailBouncedDate and EmailBouncedReason are set on the Contact, as Salesforce's bounce management
sets them, and nothing else of it changes (the engine reads no bounce field under the default rules).

The rung comes from the caller (a table of contact, day and rung: the timeline under the rules in force), because
the relation is to the ladder an admin sees. The draws come from their own random stream of the demo's seed, in a
fixed order, so the same seed, date and rules give the same deals.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from connector import sql

if TYPE_CHECKING:
    from connector.crm.local.store import LocalCrm

OUTCOME_MONTHS = 36
GONE_PER_MONTH = (0.012, 0.006, 0.003, 0.0015, 0.0005)  # by rung index, lowest first: a bounce, once
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist"
CLOSE_WITHIN_DAYS = 14  # a deal drawn on a month's first day closes 1 to 14 days later
WON_PER_MONTH = (0.02, 0.06, 0.06, 0.14, 0.25)  # by rung index, lowest first; Familiar = Friend on purpose
LOST_PER_MONTH = 0.03
RENEWAL_SHARE = 0.4  # of won deals: Type 'Renewal' (the others 'New Business')
_STREAM = 0x0C0E  # the outcomes' own random stream of the seed
_GONE_STREAM = 0x0C0F  # the bounces' own, so the deals stay as they were

_DRAWS = "demo_draws"
_ASKED = """
CREATE OR REPLACE TEMP TABLE demo_asked AS
SELECT row_number() OVER (ORDER BY g.cid, g.day) - 1 AS i, g.cid, g.day, g.r, c."AccountId" AS account
FROM $rungs g JOIN "Contact" c ON c."Id" = g.cid
WHERE g.day >= $first AND g.day < $as_of
"""
_OPPS = """
INSERT INTO "Opportunity" ("Id", "AccountId", "Name", "StageName", "Type", "IsClosed", "IsWon", "CloseDate",
  "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
SELECT sf_id('006', $base + d.n), a.account,
       CASE WHEN d.won AND d.renewal THEN 'Renewal' ELSE 'New Business' END || ' ' || strftime(a.day, '%Y-%m'),
       CASE WHEN d.won THEN 'Closed Won' ELSE 'Closed Lost' END,
       CASE WHEN d.won AND d.renewal THEN 'Renewal' ELSE 'New Business' END, true, d.won,
       a.day + CAST(d.offset_days AS INTEGER), false, CAST(a.day AS TIMESTAMP),
       CAST(a.day + CAST(d.offset_days AS INTEGER) AS TIMESTAMP),
       CAST(a.day + CAST(d.offset_days AS INTEGER) AS TIMESTAMP)
FROM demo_draws d JOIN demo_asked a ON a.i = d.i
WHERE a.day + CAST(d.offset_days AS INTEGER) < $as_of
"""
_ROLES = """
INSERT INTO "OpportunityContactRole" ("Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "IsDeleted",
  "CreatedDate", "LastModifiedDate", "SystemModstamp")
SELECT sf_id('00K', $base + d.n), sf_id('006', $base + d.n), a.cid, 'Decision Maker', true, false,
       CAST(a.day AS TIMESTAMP), CAST(a.day AS TIMESTAMP), CAST(a.day AS TIMESTAMP)
FROM demo_draws d JOIN demo_asked a ON a.i = d.i
WHERE a.day + CAST(d.offset_days AS INTEGER) < $as_of
"""
_GONE = "demo_gone"
_BOUNCES = """
UPDATE "Contact" SET "IsEmailBounced" = true, "EmailBouncedDate" = CAST(g.day AS TIMESTAMP) + INTERVAL 9 HOUR,
       "EmailBouncedReason" = $reason
FROM (SELECT a.cid, min(a.day + CAST(d.offset_days AS INTEGER)) AS day
      FROM demo_gone d JOIN demo_asked a ON a.i = d.i GROUP BY a.cid) g
WHERE "Contact"."Id" = g.cid AND g.day < $as_of
"""
_BASE = 10**9  # Opportunity numbers start here, apart from the Ids the activities' WhatIds use


def won_rate(rung: int) -> float:
    return WON_PER_MONTH[min(rung, len(WON_PER_MONTH) - 1)]


def gone_rate(rung: int) -> float:
    return GONE_PER_MONTH[min(rung, len(GONE_PER_MONTH) - 1)]


def _gone_draws(r: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The (contact, month) rows whose draw sends the contact away; its first such month counts (`_BOUNCES`)."""
    rng = np.random.default_rng([seed, _GONE_STREAM])
    p = np.array([gone_rate(k) for k in range(int(r.max(initial=0)) + 1)])[r] if len(r) else np.zeros(0)
    picked = np.flatnonzero(rng.random(len(r)) < p)
    offsets = rng.integers(1, CLOSE_WITHIN_DAYS + 1, size=len(picked))
    return {"i": picked.astype(np.int64), "offset_days": offsets.astype(np.int64)}


def add_outcomes(crm: LocalCrm, rungs_table: str, *, seed: int, as_of: dt.date) -> int:
    """Add the deals to the demo org from `rungs_table` (cid, day, r: each contact's rung on month starts); returns
    how many Opportunities were added."""
    con = crm.con
    first = dt.date(as_of.year - OUTCOME_MONTHS // 12, as_of.month, 1)
    sql.run(con, sql.q(_ASKED, rungs=sql.table(rungs_table), first=sql.lit(first), as_of=sql.lit(as_of)))
    r = con.execute("SELECT r FROM demo_asked ORDER BY i").fetchnumpy()["r"].astype(np.int64)
    rng = np.random.default_rng([seed, _STREAM])
    p_won = np.array([won_rate(k) for k in range(int(r.max(initial=0)) + 1)])[r] if len(r) else np.zeros(0)
    u = rng.random(len(r))
    won = u < p_won
    lost = (u >= p_won) & (u < p_won + LOST_PER_MONTH)
    picked = np.flatnonzero(won | lost)
    offsets = rng.integers(1, CLOSE_WITHIN_DAYS + 1, size=len(picked))
    renewal = rng.random(len(picked)) < RENEWAL_SHARE
    draws = {
        "n": np.arange(len(picked), dtype=np.int64),
        "i": picked.astype(np.int64),
        "won": won[picked],
        "offset_days": offsets.astype(np.int64),
        "renewal": renewal,
    }
    con.execute("BEGIN TRANSACTION")
    try:
        con.register(_DRAWS, draws)
        params = {"base": sql.lit(_BASE), "as_of": sql.lit(as_of)}
        sql.run(con, sql.q(_OPPS, **params))
        sql.run(con, sql.q(_ROLES, **params))
        con.unregister(_DRAWS)
        con.register(_GONE, _gone_draws(r, seed))
        sql.run(con, sql.q(_BOUNCES, reason=sql.lit(BOUNCE_REASON), as_of=sql.lit(as_of)))
        con.unregister(_GONE)
        con.execute("DROP TABLE IF EXISTS demo_asked")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(con.execute('SELECT count(*) FROM "Opportunity"').fetchone()[0])  # type: ignore[index]
