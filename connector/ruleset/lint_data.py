"""Findings a rule file earns only against data: kinds that match no activity of the CRM at hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from connector import sql
from connector.errors import Finding
from connector.ruleset.compiler import RuleSet
from connector.ruleset.lint import WARNING


def data_findings(rules: RuleSet, con: duckdb.DuckDBPyConnection, label: str) -> list[Finding]:
    """Kinds that match no activity in the CRM's `crm_activity` (all of it, whatever its date)."""
    if not rules.kinds:
        return []
    counts = [
        exp.Filter(
            this=sql.q("count(*)"),
            expression=exp.Where(this=exp.Coalesce(this=k.expr.copy(), expressions=[exp.false()])),
        )
        for k in rules.kinds.values()
    ]
    row = sql.run(con, sql.select(sql.q("count(*)"), *counts, from_="crm_activity")).fetchone()
    assert row is not None
    total = int(row[0])
    out = []
    for (name, _), n in zip(rules.kinds.items(), row[1:], strict=True):
        if not n:
            out.append(
                rules.source.finding(
                    ("kinds", name),
                    f"kind '{name}' matches none of the {total:,} activities in {label}: check its "
                    "match condition against how your org logs this activity",
                    severity=WARNING,
                )
            )
    return out


# -- helpers -------------------------------------------------------------------------------------------------


# -- what the rules read of the org's own activities (`rules check --data`) ------------------------------------

TOP_SUBJECTS = 10
_COVERAGE = "tl_rules_coverage"
SHORT_WORDS = 2  # a subject of this many words or fewer says little about what happened ("Call", "Inbound call")


@dataclass(frozen=True)
class Coverage:
    """How much of the org's activity the kinds read: per kind, none at all, and the subjects behind the gaps.

    The total counts each activity once, whatever its date; a sync counts otherwise (its "activities classified":
    those of a kind dated on or before its day, once per contact who took part). `by_day`, `later` and
    `sync_rows` carry the steps from one figure to the other, so the two outputs reconcile."""

    activities: int  # distinct activities of the CRM's contacts (a shared one once), of every date
    per_kind: dict[str, int]
    unmatched: int  # activities no kind matches
    unmatched_subjects: list[tuple[str, int]]  # the most common subjects among them
    short_subjects: list[tuple[str, int]]  # the most common subjects of one or two words among all activities
    as_of: str  # the day a sync would count to (ISO)
    by_day: int  # activities of a kind dated on or before as_of
    later: int  # activities of a kind dated after as_of, which a sync on as_of does not read yet
    sync_rows: int  # the by_day ones once per contact who took part: a sync's "activities classified"


def coverage(rules: RuleSet, con: duckdb.DuckDBPyConnection, as_of: dt.date) -> Coverage:
    """Read every activity of `crm_activity` (whatever its date) through the kinds: what an admin tuning the
    rules needs to see is the share of the org's own logging the rules cannot read, and the subjects behind it.
    `as_of`: the day to count a sync's figure to, for the reconciliation."""
    flags = [f"k{i}" for i in range(len(rules.kinds))]
    marks = [
        sql.alias(exp.Coalesce(this=k.expr.copy(), expressions=[exp.false()]), flag)
        for k, flag in zip(rules.kinds.values(), flags, strict=True)
    ]
    any_kind = sql.any_of([sql.col(f) for f in flags]) if flags else exp.false()
    # One row per activity: a shared activity is in crm_activity once per contact who took part. A kind may read
    # the contact's side (direction, presence), so "of a kind" is per row, as classify reads it.
    rows = sql.select(sql.col("Id"), sql.col("Subject"), sql.col("day"), *marks, from_="crm_activity")
    row_kind = exp.Paren(this=any_kind.copy())
    read = sql.q("day <= $as_of AND $k", k=row_kind)
    per_activity = (
        exp.select(
            sql.col("Id"),
            sql.alias(sql.func("any_value", sql.col("Subject")), "subject"),
            *(sql.alias(sql.func("bool_or", sql.col(f)), f) for f in flags),
            sql.alias(sql.func("bool_or", read), "read"),
            sql.alias(sql.func("bool_or", sql.q("day > $as_of AND $k", k=row_kind.copy())), "later"),
            sql.alias(exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=read.copy())), "rows_read"),
        )
        .from_(exp.Subquery(this=rows, alias=exp.TableAlias(this=sql.ident("a"))))
        .group_by(sql.col("Id"))
    )
    sql.run(con, sql.create_temp(_COVERAGE, per_activity), {"as_of": as_of})
    counts = [exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=sql.col(f))) for f in flags]
    row = sql.run(
        con,
        sql.select(
            sql.q("count(*)"),
            exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=exp.Not(this=exp.Paren(this=any_kind)))),
            sql.q("count(*) FILTER (WHERE read)"),
            sql.q("count(*) FILTER (WHERE later AND NOT read)"),
            sql.q("COALESCE(sum(rows_read), 0)"),
            *counts,
            from_=_COVERAGE,
        ),
    ).fetchone()
    assert row is not None
    unmatched = sql.q("NOT ($any)", any=any_kind)
    short = sql.q(
        "len(string_split(trim(regexp_replace(subject, '[^A-Za-z0-9]+', ' ', 'g')), ' ')) <= $n", n=SHORT_WORDS
    )
    return Coverage(
        activities=int(row[0]),
        per_kind={name: int(n) for name, n in zip(rules.kinds, row[5:], strict=True)},
        unmatched=int(row[1]),
        unmatched_subjects=_top(con, unmatched),
        short_subjects=_top(con, short),
        as_of=as_of.isoformat(),
        by_day=int(row[2]),
        later=int(row[3]),
        sync_rows=int(row[4]),
    )


def _top(con: duckdb.DuckDBPyConnection, where: exp.Expr) -> list[tuple[str, int]]:
    """The most common subjects (case and outer spaces aside) among the activities `where` holds for."""
    rows = sql.run(
        con,
        sql.q(
            "SELECT min(trim(subject)) AS shown, count(*) AS n FROM $t WHERE $w AND trim(subject) <> '' "
            "GROUP BY lower(trim(subject)) ORDER BY n DESC, shown LIMIT $top",
            t=sql.table(_COVERAGE),
            w=where,
            top=TOP_SUBJECTS,
        ),
    ).fetchall()
    return [(str(s), int(n)) for s, n in rows]
