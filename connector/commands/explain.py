"""`explain`: why one contact sits where it does, criterion by criterion, with the numbers.

It runs the very same passes as a sync, restricted to one contact, so an explanation can never disagree
with what a sync would write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from connector import engine, ids, sql
from connector.commands import explain_inputs as inputs
from connector.commands.contact_words import who
from connector.crm.local import accounts
from connector.engine.relations import CLASSIFIED, PLACE, criterion_col, feature_col, flag_col, flag_since_col, kind_col
from connector.errors import DataError
from connector.ruleset.compiler import CompiledFeature, RuleSet

_CONTACT = """
SELECT c."FirstName", c."LastName", COALESCE(a."Name", ''), COALESCE(c."AccountId", '')
FROM crm_contact c LEFT JOIN ($accounts) a ON a."Id" = c."AccountId" WHERE c."Id" = $cid
"""


@dataclass
class CriterionTrace:
    when: str
    says: str
    met: bool
    values: dict[str, Any]


@dataclass
class RungTrace:
    index: int
    name: str
    means: str
    criteria: list[CriterionTrace]

    @property
    def met(self) -> bool:
        return all(c.met for c in self.criteria)


@dataclass
class FlagTrace:
    label: str
    when: str
    says: str
    open: bool
    values: dict[str, Any]
    activities: list[dict[str, Any]] = field(default_factory=list)
    since: dt.date | None = None  # an open flag: the day it opened, from the contact's timeline
    evidence: list[str] = field(default_factory=list)  # an open flag: which inputs stay open, why it opened then


@dataclass
class Explanation:
    contact_id: str
    name: str
    as_of: dt.date
    rules_version: str
    stage: str
    qualified: str
    crm_stage: str | None
    crm_since: dt.date | None
    since: dt.date
    in_grace: bool
    next_step: str
    reason: str
    rungs: list[RungTrace]
    flags: list[FlagTrace]
    features: dict[str, Any]
    activities: list[dict[str, Any]] = field(default_factory=list)  # what was counted, most recent first
    account: str = ""  # the account's name as the CRM holds it, '' when none or unknown
    account_id: str = ""  # AccountId, '' for none


def explain(con: duckdb.DuckDBPyConnection, rules: RuleSet, contact_id: str, as_of: dt.date) -> Explanation:
    """Why the contact stands where it does on `as_of`: since, holds and flag ages as they were that day."""
    cid = _to18(contact_id)
    found = sql.run(con, sql.q(_CONTACT, accounts=accounts.names(con)), {"cid": cid}).fetchone()
    if found is None:
        raise DataError(f"no contact with Id {contact_id} in the CRM (deleted contacts are not evaluated)")
    engine.compute(con, rules, as_of, contact_id=cid)
    cur = sql.run(con, sql.q("SELECT * FROM $t", t=sql.table(PLACE.name)))
    cols = [d[0] for d in cur.description]
    row = dict(zip(cols, cur.fetchone() or (), strict=True))

    def values(names: list[str]) -> dict[str, Any]:
        return symbol_values(row, names, as_of)

    rungs = [
        RungTrace(
            r.index,
            r.name,
            r.means,
            [
                CriterionTrace(c.when, c.says, bool(row[criterion_col(r.index, j)]), values(c.compiled.names))
                for j, c in enumerate(r.criteria)
            ],
        )
        for r in rules.rungs
    ]
    flags = []
    for f in rules.flags:
        vals = values(f.compiled.names)
        kinds = [k for n in f.compiled.names if n in rules.features for k in rules.features[n].spec.kinds]
        is_open = bool(row[flag_col(f.id)])
        since = row.get(flag_since_col(f.id)) if is_open else None
        waiting = [n for n in dict.fromkeys(f.compiled.names) if n in rules.features and _waits(rules.features[n])]
        flags.append(
            FlagTrace(
                f.label,
                f.when,
                f.says,
                is_open,
                vals,
                _activities(con, kinds) if kinds else [],
                since,
                [line for n in waiting for line in inputs.evidence(con, rules, n, row, cid, as_of, since)]
                if is_open
                else [],
            )
        )
    feats = {n: row.get(feature_col(n)) for n in rules.features}
    return Explanation(
        contact_id=cid,
        name=" ".join(p for p in found[:2] if p),
        as_of=as_of,
        rules_version=rules.version,
        stage=row["new_stage"],
        qualified=rules.rungs[row["qualified"]].name,
        crm_stage=row["cur_stage"],
        crm_since=row["cur_since"],
        since=row["new_since"],
        in_grace=bool(row["in_grace"]),
        next_step=row["new_next"],
        reason=row["new_reason"],
        rungs=rungs,
        flags=flags,
        features=feats,
        activities=_activities(con, list(rules.kinds), limit=15) if rules.kinds else [],
        account=str(found[2]),
        account_id=str(found[3]),
    )


def symbol_values(row: dict[str, Any], names: list[str], as_of: dt.date) -> dict[str, Any]:
    """The value of each name a condition uses, read from a placed contact's row (see engine.relations)."""
    out: dict[str, Any] = {}
    for n in names:
        if n == "as_of":
            out[n] = as_of
        elif n == "open_flags":
            out[n] = row.get(n)
        elif feature_col(n) in row:
            out[n] = row[feature_col(n)]
        elif flag_col(n) in row:
            out[n] = row[flag_col(n)]
    return out


def _waits(feature: CompiledFeature) -> bool:
    return feature.spec.type == "unanswered"


def _to18(contact_id: str) -> str:
    try:
        return ids.typed(contact_id)
    except ValueError as e:
        raise DataError(str(e)) from None


def _activities(con: duckdb.DuckDBPyConnection, kinds: list[str], limit: int = 12) -> list[dict[str, Any]]:
    kinds = list(dict.fromkeys(kinds))
    labels = sql.func(
        "concat_ws",
        sql.lit(", "),
        *(sql.q("CASE WHEN $k THEN $name END", k=sql.col(kind_col(k)), name=k) for k in kinds),
    )
    tree = sql.q(
        'SELECT day, aid, object, "Subject", $labels AS kinds, "DaySource", "LoggedDate", "Incoming", '
        '"HasEmailMessage", "IsPrivate", "IsPrimary", "Attendees", "Declined" FROM $t WHERE $cond '
        "ORDER BY day DESC, aid LIMIT $n",
        labels=labels,
        t=sql.table(CLASSIFIED.name),
        cond=sql.any_of(sql.col(kind_col(k)) for k in kinds),
        n=int(limit),
    )
    cur = sql.run(con, tree)
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        r = dict(zip(names, values, strict=True))
        out.append(
            {
                "date": r["day"],
                "id": r["aid"],
                "object": r["object"],
                "subject": r["Subject"],
                "kinds": r["kinds"],
                "dated_by": r["DaySource"],
                "logged": r["LoggedDate"],
                "direction": _direction(r),
                "private": bool(r["IsPrivate"]),
                "shared": r["IsPrimary"] is False,
                "attendees": r["Attendees"],
                "declined": bool(r["Declined"]),
            }
        )
    return out


def _direction(r: dict[str, Any]) -> str | None:
    """Where an email's direction came from: Salesforce's EmailMessage, or only its subject."""
    if r["HasEmailMessage"]:
        return "incoming (EmailMessage)" if r["Incoming"] else "outgoing (EmailMessage)"
    if r["object"] == "Task" and r["Incoming"] is None and str(r["Subject"] or "").lower().startswith("re:"):
        return "read from the subject (no EmailMessage)"
    return None


def _activity_line(a: dict[str, Any]) -> str:
    notes = [f"dated by {a['dated_by']}" if a.get("dated_by") else ""]
    if a.get("logged") and a["logged"] > a["date"]:  # logged after it happened: backdated
        notes.append(f"logged {a['logged']}")
    if a.get("direction"):
        notes.append(f"direction {a['direction']}")
    if a.get("shared"):
        notes.append("credited as one of the people present")
    if a.get("attendees") and a["attendees"] > 1:
        notes.append(f"{a['attendees']} people")
    if a.get("declined"):
        notes.append("declined")
    if a.get("private"):
        notes.append("private")
    extra = "; ".join(n for n in notes if n)
    return f"        {a['date']}  {a['object']:<5} {a['id']}  {a['subject']}  [{a['kinds']}]" + (
        f"  ({extra})" if extra else ""
    )


def format_value(value: Any) -> str:
    """A feature's value as an admin reads it: yes/no, two decimals, ISO dates, 'none'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return "none" if value is None else str(value)


def _flag_state(f: FlagTrace, as_of: dt.date) -> str:
    """'OPEN for 143 days (since 2026-07-14)': how long a flag has been open matters as much as that it is."""
    if not f.open:
        return "not raised"
    if f.since is None:
        return "OPEN"
    n = (as_of - f.since).days
    return f"OPEN for {n} day{'s' if n != 1 else ''} (since {f.since.isoformat()})"


def render(e: Explanation) -> str:
    named = who(e.name or e.contact_id, e.account, e.account_id, e.contact_id)
    lines = [
        f"{named}, as of {e.as_of.isoformat()}, rules {e.rules_version}",
        f"Rung: {e.stage} since {e.since.isoformat()}"
        + (f" (held during demotion grace; qualifies for {e.qualified})" if e.in_grace else ""),
        f"CRM shows: {e.crm_stage or 'nothing yet'}" + (f" since {e.crm_since.isoformat()}" if e.crm_since else ""),
        "",
    ]
    current = next(r.index for r in e.rungs if r.name == e.stage)
    for r in e.rungs:
        tag = " (current)" if r.index == current else " (next)" if r.index == current + 1 else ""
        lines.append(f"{r.name}{tag}: {'met' if r.met else 'not met'}. {r.means}")
        if not r.criteria:
            lines.append("    every contact starts here")
        for c in r.criteria:
            vals = ", ".join(f"{k} = {format_value(v)}" for k, v in c.values.items())
            lines.append(f"  [{'x' if c.met else ' '}] {c.says}")
            lines.append(f"        {c.when}   ({vals})")
    lines.append("")
    lines.append("Flags:")
    for f in e.flags:
        vals = ", ".join(f"{k} = {format_value(v)}" for k, v in f.values.items())
        lines.append(f"  [{'!' if f.open else ' '}] {f.label}: {_flag_state(f, e.as_of)} - {f.says}")
        lines.append(f"        {f.when}   ({vals})")
        lines += [f"        {line}" for line in f.evidence]
        for a in f.activities if f.open else []:
            lines.append(_activity_line(a))
    if e.activities:
        lines += ["", f"Activities counted, most recent first (up to {len(e.activities)}):"]
        lines += [_activity_line(a) for a in e.activities]
    lines += ["", f"Next step: {e.next_step}", f"Reason: {e.reason}"]
    return "\n".join(lines)
