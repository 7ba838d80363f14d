"""The "contact gone" outcome for `calibrate`: on which day each contact's email bounced or it was marked inactive.

A bounce has its day: Salesforce's bounce management stamps Contact.EmailBouncedDate (a dateTime) when it sets
IsEmailBounced (Object Reference for the Salesforce Platform, "Contact"). "Inactive" has no standard field, so the
rule file names the field and the value that means gone, and optionally a date field holding the day
(`inactive_since_field`, e.g. Inactive_Date__c), the day the field changed as the org records it.

When only the current value is known (an inactive checkbox without a date; IsEmailBounced without EmailBouncedDate)
the contact is counted gone on the day after its last activity, or on its creation day without any: the last day
we know it was still there. Not LastModifiedDate, which every later edit moves, ours included (each sync that
changes a trust field stamps it), nor the day a sync first saw the value, which would put years of history on the
day trust-ladder was installed. Field history (ContactHistory) is not read.

A contact goes once: the months after the day it went are left out of this outcome's table (calibrate), since a
contact already gone cannot go again and would only thin the rate of the rung it decayed to.
"""

from __future__ import annotations

import json

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine.relations import CLASSIFIED
from connector.ruleset.compiled import CompiledOutcome

# The mirror's record of the Contact fields its last pull selected (connector.crm.salesforce.mirror_pull): a field
# the sync user cannot see is never selected, so its column is empty, not false.
PULLED_FIELDS_KEY = "salesforce.fields.Contact"

# The day after the last activity, or the creation day: the last day the contact was known to be there.
_FALLBACK = 'COALESCE(l.last_day + 1, CAST(c."CreatedDate" AS DATE))'
_SOURCE = """
SELECT $o AS o, c."Id" AS cid, $day AS day
FROM "Contact" c LEFT JOIN (SELECT cid, max(day) AS last_day FROM $act GROUP BY cid) l ON l.cid = c."Id"
WHERE NOT COALESCE(c."IsDeleted", false) AND $cond
"""


def contact_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT DISTINCT column_name FROM duckdb_columns() WHERE table_name = 'Contact'").fetchall()
    return {str(r[0]) for r in rows}


def pulled_fields(con: duckdb.DuckDBPyConnection) -> set[str] | None:
    """The Contact fields a Salesforce mirror's last pull selected; None for CRM data that is not a mirror."""
    try:
        row = con.execute('SELECT "Value" FROM "_TrustLadderMeta" WHERE "Key" = ?', [PULLED_FIELDS_KEY]).fetchone()
    except duckdb.CatalogException:
        return None
    return set(json.loads(row[0])) if row and row[0] else None


def usable(outcome: CompiledOutcome, columns: set[str], pulled: set[str] | None) -> tuple[set[str], list[str]]:
    """The outcome's fields the CRM data holds, and those it lacks (absent, or not pulled: hidden from the sync
    user by field-level security, or named since the last sync)."""
    assert outcome.gone is not None
    have, lacking = set(), []
    for name in outcome.gone.fields():
        if name in columns and (pulled is None or name in pulled):
            have.add(name)
        else:
            lacking.append(name)
    return have, lacking


def source(o: int, outcome: CompiledOutcome, have: set[str]) -> exp.Expr | None:
    """The day each contact went, by each sign the CRM data holds (a contact may have two: its first counts);
    None when it holds none."""
    gone = outcome.gone
    assert gone is not None
    parts: list[exp.Expr] = []
    fallback = sql.q(_FALLBACK)
    if gone.email_bounced and have & {"IsEmailBounced", "EmailBouncedDate"}:
        signs = []
        if "IsEmailBounced" in have:
            signs.append(sql.q('COALESCE(c."IsEmailBounced", false)'))
        if "EmailBouncedDate" in have:
            signs.append(sql.q('c."EmailBouncedDate" IS NOT NULL'))
            day = sql.q('COALESCE(CAST(c."EmailBouncedDate" AS DATE), $f)', f=fallback)
        else:
            day = fallback.copy()
        parts.append(sql.q(_SOURCE, o=o, day=day, act=sql.table(CLASSIFIED.name), cond=sql.any_of(signs)))
    if gone.inactive_field and gone.inactive_field in have:
        cond = sql.q(
            "lower(trim(CAST($f AS VARCHAR))) = lower(trim($v))",
            f=sql.col(gone.inactive_field, "c"),
            v=sql.lit(gone.inactive_value),
        )
        day = fallback.copy()
        if gone.inactive_since_field and gone.inactive_since_field in have:
            day = sql.q("COALESCE(TRY_CAST($d AS DATE), $f)", d=sql.col(gone.inactive_since_field, "c"), f=day)
        parts.append(sql.q(_SOURCE, o=o, day=day, act=sql.table(CLASSIFIED.name), cond=cond))
    if not parts:
        return None
    union = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    return sql.q("SELECT o, cid, day FROM ($u) WHERE day <= $as_of", u=union, as_of=sql.as_of())
