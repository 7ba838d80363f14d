"""`explain`: why one contact sits where it does, criterion by criterion, with the numbers.

It runs the very same passes as a sync, restricted to one contact, so an explanation can never disagree
with what a sync would write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from connector import evaluate, ids, sync
from connector.classify import ACT_TABLE, kind_column
from connector.errors import DataError
from connector.ruleset.compiler import RuleSet


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


def explain(con: duckdb.DuckDBPyConnection, rules: RuleSet, contact_id: str, as_of: dt.date,
            state_path: Path | None) -> Explanation:
    cid = contact_id if len(contact_id) == 18 else _to18(contact_id)
    found = con.execute("SELECT FirstName, LastName FROM crm_contact WHERE Id = ?", [cid]).fetchone()
    if found is None:
        raise DataError(f"no contact with Id {contact_id} in the CRM (deleted contacts are not evaluated)")
    sync.compute(con, rules, as_of, state_path, contact_id=cid)
    cur = con.execute(f"SELECT * FROM {evaluate.PLACE_TABLE}")
    cols = [d[0] for d in cur.description]
    row = dict(zip(cols, cur.fetchone() or (), strict=True))

    def values(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in names:
            if n == "as_of":
                out[n] = as_of
            elif n in row:
                out[n] = row[n]
            elif f"flag__{n}" in row:
                out[n] = row[f"flag__{n}"]
        return out

    rungs = [
        RungTrace(r.index, r.name, r.means, [
            CriterionTrace(c.when, c.says, bool(row[evaluate.criterion_column(r.index, j).strip('"')]),
                           values(c.compiled.names))
            for j, c in enumerate(r.criteria)
        ])
        for r in rules.rungs
    ]
    flags = []
    for f in rules.flags:
        vals = values(f.compiled.names)
        kinds = [k for n in f.compiled.names if n in rules.features for k in rules.features[n].spec.kinds]
        flags.append(FlagTrace(f.label, f.when, f.says, bool(row[f"flag__{f.id}"]), vals,
                               _activities(con, kinds) if kinds else []))
    feats = {n: row.get(n) for n in rules.features}
    return Explanation(
        contact_id=cid, name=" ".join(p for p in found if p), as_of=as_of, rules_version=rules.version,
        stage=row["new_stage"], qualified=rules.rungs[row["qualified"]].name, crm_stage=row["cur_stage"],
        crm_since=row["cur_since"], since=row["new_since"], in_grace=bool(row["in_grace"]),
        next_step=row["new_next"], reason=row["new_reason"], rungs=rungs, flags=flags, features=feats,
    )


def _to18(contact_id: str) -> str:
    try:
        return ids.to18(contact_id)
    except ValueError:
        raise DataError(f"'{contact_id}' is not a Salesforce Id (15 or 18 characters)") from None


def _activities(con: duckdb.DuckDBPyConnection, kinds: list[str], limit: int = 12) -> list[dict[str, Any]]:
    kinds = list(dict.fromkeys(kinds))
    cond = " OR ".join(kind_column(k) for k in kinds)
    labels = ", ".join(f"CASE WHEN {kind_column(k)} THEN '{k}' END" for k in kinds)
    rows = con.execute(
        f"SELECT day, aid, object, Subject, concat_ws(', ', {labels}) FROM {ACT_TABLE} "
        f"WHERE {cond} ORDER BY day DESC, aid LIMIT {int(limit)}"
    ).fetchall()
    return [{"date": d, "id": i, "object": o, "subject": s, "kinds": k} for d, i, o, s, k in rows]


def format_value(value: Any) -> str:
    """A feature's value as an admin reads it: yes/no, two decimals, ISO dates, 'none'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return "none" if value is None else str(value)


def render(e: Explanation) -> str:
    lines = [
        f"{e.name or e.contact_id} ({e.contact_id}), as of {e.as_of.isoformat()}, rules {e.rules_version}",
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
        lines.append(f"  [{'!' if f.open else ' '}] {f.label}: {'OPEN' if f.open else 'not raised'} - {f.says}")
        lines.append(f"        {f.when}   ({vals})")
        for a in f.activities if f.open else []:
            lines.append(f"        {a['date']}  {a['object']:<5} {a['id']}  {a['subject']}  [{a['kinds']}]")
    lines += ["", f"Next step: {e.next_step}", f"Reason: {e.reason}"]
    return "\n".join(lines)
