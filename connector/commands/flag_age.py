"""How long each open flag has been open: a thank-you owed since July is not one owed since last week.

The day a flag opened is the start of its current run on the contact's timeline (`gs_<flag>` in a placement
table, connector.engine.timeline), so an age is exact to the day whether or not a sync ran when it opened. The
report lists the oldest open flags and, per owner, how many are open and how old the oldest is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from connector import sql
from connector.commands import insights
from connector.engine.relations import flag_col, flag_since_col
from connector.ruleset.compiler import RuleSet

STALE_DAYS = 30  # an open flag older than this is counted apart: a month without the thank-you or the listening

_OPEN = """
SELECT p.cid, concat_ws(' ', c."FirstName", c."LastName") AS name, o.owner, o.owner_name,
       COALESCE($since, CAST($as_of AS DATE)) AS since, o.account, o.account_id
FROM $place p JOIN $owners o USING (cid) JOIN crm_contact c ON c."Id" = p.cid
WHERE $open
"""


@dataclass(frozen=True)
class OpenFlag:
    cid: str
    name: str
    owner: str  # OwnerId, or insights.NO_OWNER
    owner_name: str
    flag: str  # the flag's label, as on the record
    since: dt.date  # the day it opened
    days: int  # days open on the evaluation day (0: opened that day)
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""


@dataclass(frozen=True)
class OwnerFlags:
    owner: str
    owner_name: str
    open: int
    stale: int  # open more than STALE_DAYS
    oldest: OpenFlag


def open_flags(con: duckdb.DuckDBPyConnection, place: str, rules: RuleSet, as_of: dt.date) -> list[OpenFlag]:
    """Every open flag of every contact in `place` (a table with tl_place's columns, `insights.OWNERS` built),
    oldest first; ties by contact name, then Id."""
    found: list[OpenFlag] = []
    for f in rules.flags:
        tree = sql.q(
            _OPEN,
            place=sql.table(place),
            owners=sql.table(insights.OWNERS),
            since=sql.col(flag_since_col(f.id), "p"),
            open=sql.col(flag_col(f.id), "p"),
        )
        for cid, name, owner, owner_name, since, account, account_id in sql.run(con, tree, {"as_of": as_of}).fetchall():
            found.append(
                OpenFlag(
                    str(cid),
                    str(name),
                    str(owner),
                    str(owner_name),
                    f.label,
                    since,
                    (as_of - since).days,
                    str(account),
                    str(account_id),
                )
            )
    return sorted(found, key=lambda o: (o.since, o.name, o.cid, o.flag))


def by_owner(flags: list[OpenFlag]) -> list[OwnerFlags]:
    """Per owner, open flags and the oldest one; the owner whose oldest flag is oldest first."""
    out: dict[str, OwnerFlags] = {}
    for f in flags:  # oldest first, so an owner's first flag is its oldest
        had = out.get(f.owner)
        if had is None:
            out[f.owner] = OwnerFlags(f.owner, f.owner_name, 1, int(f.days > STALE_DAYS), f)
        else:
            out[f.owner] = OwnerFlags(
                f.owner, f.owner_name, had.open + 1, had.stale + int(f.days > STALE_DAYS), had.oldest
            )
    return sorted(out.values(), key=lambda o: (o.oldest.since, -o.open, o.owner_name))
