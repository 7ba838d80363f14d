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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from connector import sql
from connector.crm.local import demo_shapes
from connector.crm.local.demo._activities import load_activities
from connector.crm.local.demo._histories import chunk_activities
from connector.crm.local.demo._outcomes import WON_PER_MONTH, add_outcomes, won_rate
from connector.crm.local.demo._people import OWNER_P, OWNERS, Org, load_accounts, load_contacts, load_lookups
from connector.crm.local.demo._personas import PERSONAS, Persona, chunk_rng, draw_personas
from connector.errors import DataError

if TYPE_CHECKING:
    from connector.crm.local.store import LocalCrm

CHUNK = 100_000  # contacts per chunk: bounds memory to ~1M activities in flight; part of the seed contract


@dataclass(frozen=True)
class DemoStats:
    """Rows generated; contacts, tasks and events count only rows not marked deleted, as `LocalCrm.counts`."""

    contacts: int
    tasks: int
    events: int
    users: int


def personas(contacts: int, seed: int = 7) -> list[str]:
    """The persona of each contact `generate` makes, in Contact Id order (for tests and for explaining the demo)."""
    out: list[str] = []
    for chunk, start in enumerate(range(0, contacts, CHUNK)):
        codes = draw_personas(chunk_rng(seed, chunk), min(CHUNK, contacts - start))
        out.extend(PERSONAS[int(i)].name for i in codes)
    return out


def _check_empty(crm: LocalCrm) -> None:
    for table in ("Account", "Contact", "Task", "Event", "User"):
        row = sql.run(crm.con, sql.q("SELECT count(*) FROM $t", t=sql.table(table))).fetchone()
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
    org = Org(
        as_of=as_of,
        accounts=accounts,
        leads=max(1, contacts // 10),
        account_owner=np.random.default_rng([seed, 1 << 30]).choice(len(OWNERS), size=accounts, p=OWNER_P),
    )
    con = crm.con
    con.execute("BEGIN TRANSACTION")
    try:
        load_lookups(crm)
        load_accounts(crm, org)
        tasks = events = 0
        for chunk, first in enumerate(range(0, contacts, CHUNK)):
            rng = chunk_rng(seed, chunk)
            persona = draw_personas(rng, min(CHUNK, contacts - first))
            people = load_contacts(crm, rng, first, persona, org)
            acts = chunk_activities(rng, persona, people.age, round(len(persona) * activities_per_contact))
            t, e = load_activities(crm, rng, acts, people, org, (tasks, events))
            tasks, events = tasks + t, events + e
        if shapes:
            demo_shapes.add(crm, seed=seed, as_of=as_of)
        for table in ("demo_contact", "demo_user", "demo_tmpl"):
            sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(table)))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = crm.counts()
    return DemoStats(contacts=counts["Contact"], tasks=counts["Task"], events=counts["Event"], users=counts["User"])


__all__ = [
    "CHUNK",
    "PERSONAS",
    "WON_PER_MONTH",
    "DemoStats",
    "Persona",
    "add_outcomes",
    "generate",
    "personas",
    "won_rate",
]
