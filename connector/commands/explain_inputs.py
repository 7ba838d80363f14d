"""What `explain` says of an open flag that waits on an `unanswered` feature (the default Missing thank-you):
which input stays open, how long it has waited, why the flag opened on its day and not on the input's, and what
became of the contact's other inputs of the window.

A new user saw "open since 16 May" beside a next step citing "8 May", and one thank-you among several inputs
without knowing which input it answered. These lines say it, from the very tables the sync's passes left for the
contact (`engine.compute` for one contact): the feature's cited activity, and the trigger rows with the day each
was answered (`connector.engine.answers`, for `each_answer: answers_oldest`), or the first answer on or after it
(`answers_all_before`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine.relations import (
    CLASSIFIED,
    feature_col,
    feature_id_col,
    feature_kind_col,
    feature_subject_col,
    kind_col,
)
from connector.ruleset.compiler import CompiledFeature, RuleSet

SHOWN = 8  # the other inputs of the window listed, most recent first


@dataclass(frozen=True)
class _Input:
    aid: str
    day: dt.date
    subject: str
    label: str
    answered: dt.date | None


def evidence(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    name: str,
    row: dict[str, Any],
    cid: str,
    as_of: dt.date,
    since: dt.date | None,
) -> list[str]:
    """The lines for feature `name` of an open flag: the input it cites, the day the flag opened and why, the
    other inputs of the window (answered, and when; or also open). None when the feature cites nothing."""
    f = rules.features[name]
    spec = f.spec
    day = row.get(feature_col(name))
    if day is None or spec.older_than_days is None:
        return []
    wait = spec.older_than_days
    answer = " or ".join(dict.fromkeys(rules.kinds[k].label or k for k in spec.answered_by or []))
    label = row.get(feature_kind_col(name)) or ""
    subject = row.get(feature_subject_col(name)) or ""
    aid = row.get(feature_id_col(name)) or ""
    waited = (as_of - day).days
    lines = [f"open: {_named(label, day, subject, aid)}, {waited} days without a {answer}"]
    counts_from = day + dt.timedelta(days=wait + 1)
    rule = f"(older_than_days: {wait})"
    if since is None or since == counts_from:
        lines.append(f"open since {counts_from}, the first day it was more than {wait} days without one {rule}")
    elif since < counts_from:
        lines.append(
            f"open since {since}: an earlier input was then more than {wait} days without one {rule}, and one has "
            f"been every day since; this one was from {counts_from}"
        )
    else:
        lines.append(
            f"open since {since}, when the rest of the flag's condition came to hold; this input was more than "
            f"{wait} days without one {rule} from {counts_from}"
        )
    others = [i for i in _inputs(con, rules, f, cid, as_of) if i.aid != aid]
    for i in others[:SHOWN]:
        named = _named(i.label, i.day, i.subject, i.aid)
        if i.answered is not None:
            lines.append(f"answered: {named}, on {i.answered}")
        elif i.day + dt.timedelta(days=wait) < as_of:
            lines.append(f"also open: {named}")
        else:
            lines.append(f"not counted yet: {named}, {wait} days or less old")
    if len(others) > SHOWN:
        lines.append(f"... and {len(others) - SHOWN} older inputs of the window")
    return lines


def _named(label: str, day: dt.date, subject: str, aid: str) -> str:
    quoted = f' "{subject}"' if subject else ""
    return f"{label} of {day}{quoted} ({aid})"


def _inputs(
    con: duckdb.DuckDBPyConnection, rules: RuleSet, f: CompiledFeature, cid: str, as_of: dt.date
) -> list[_Input]:
    """The contact's triggers of `f` in its window, most recent first, each with the day it was answered."""
    spec = f.spec
    triggers = list(dict.fromkeys(spec.unanswered or []))
    answers = list(dict.fromkeys(spec.answered_by or []))
    where = sql.q("cid = $cid AND $any", cid=cid, any=exp.paren(sql.any_of(sql.col(kind_col(k)) for k in triggers)))
    if spec.within_days:
        where = sql.q("$w AND day > $as_of - $n", w=where, as_of=sql.as_of(), n=int(spec.within_days))
    marks = [exp.Coalesce(this=sql.col(kind_col(k)), expressions=[exp.false()]) for k in triggers]
    tree = sql.select(sql.col("aid"), sql.col("day"), sql.col("Subject"), *marks, from_=CLASSIFIED.name)
    tree = tree.where(where, copy=False).order_by(
        exp.Ordered(this=sql.col("day"), desc=True), sql.col("aid"), copy=False
    )
    found = sql.run(con, tree, {"as_of": as_of}).fetchall()
    paired = [g for g in rules.features.values() if g.spec.type == "unanswered" and g.spec.answers_oldest]
    answered: dict[str, dt.date | None] = {}
    if f in paired:
        table = f"tl_answered_{paired.index(f)}"  # connector.engine.features: the triggers, each with its answer
        answered = {
            str(a): na
            for a, na in sql.run(
                con, sql.q("SELECT aid, na FROM $t WHERE cid = $cid", t=sql.table(table), cid=cid)
            ).fetchall()
        }
    else:
        days = [
            d
            for (d,) in sql.run(
                con,
                sql.q(
                    "SELECT day FROM $t WHERE cid = $cid AND $any ORDER BY day",
                    t=sql.table(CLASSIFIED.name),
                    cid=cid,
                    any=exp.paren(sql.any_of(sql.col(kind_col(k)) for k in answers)),
                ),
            ).fetchall()
        ]
        answered = {str(r[0]): next((d for d in days if d >= r[1]), None) for r in found}
    out = []
    for aid, day, subject, *marked in found:
        kind = next(k for k, on in zip(triggers, marked, strict=True) if on)
        out.append(_Input(str(aid), day, str(subject or ""), rules.kinds[kind].label or kind, answered.get(str(aid))))
    return out
