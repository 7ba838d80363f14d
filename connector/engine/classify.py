"""Pass 1: every activity gets one boolean column per declared kind (an activity may be of several kinds).

Reads the backend's `crm_activity` relation (one row per Task/Event of a Contact, with its `day`) and keeps only
activities dated on or before the evaluation date that are of at least one kind, so later passes scan less.

The text tests of the kinds (MENTIONS and IS_ONLY, each one regular expression, and LIKE) are the costly part, and
an org logs the same few subjects again and again ("Call", "Email: Re: Renewal", a sequence's template): a million
Tasks may hold a few thousand distinct subjects. Each test is therefore run once per distinct value of the fields it
reads, in a small table joined back to the activities, and a test that several kinds share (the thanks words, the
'who wrote it' check) is run once, not once per kind. The kinds mean exactly what they say row by row: the join is
null-safe, so a test on an empty field gives what it gives on the row itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine.relations import ACTIVITY_FACTS, CLASSIFIED, kind_col
from connector.ruleset.compiler import RuleSet
from connector.ruleset.expr_guard import unguarded

_SOURCE = 'SELECT *, "WhoId" AS cid, "Id" AS aid FROM crm_activity WHERE day <= $as_of'
_COLUMNS = "SELECT column_name FROM duckdb_columns() WHERE table_name = 'crm_activity'"
_TEXT_TESTS = (exp.RegexpLike, exp.ILike, exp.Like)
_ACTIVITIES = "tl_src"


@dataclass
class _Lookup:
    """The text tests that read the same fields, run once per distinct value of those fields."""

    fields: tuple[str, ...]
    tests: dict[str, tuple[str, exp.Expr]] = field(default_factory=dict)  # test's SQL -> (column, test)

    @property
    def name(self) -> str:
        return "tl_w_" + "_".join(f.lower() for f in self.fields)

    def key(self, index: int) -> str:
        return f"wk_{index}"

    def body(self, source: str) -> exp.Expr:
        """SELECT <fields as keys>, <tests> FROM (SELECT DISTINCT <fields> FROM source)."""
        distinct = exp.select(*(sql.col(f) for f in self.fields)).distinct().from_(sql.table(source))
        keys = [sql.alias(sql.col(f), self.key(i)) for i, f in enumerate(self.fields)]
        tests = [sql.alias(test.copy(), name) for name, test in self.tests.values()]
        return exp.select(*keys, *tests).from_(distinct.subquery("d", copy=False), copy=False)

    def join(self) -> exp.Expr:
        return sql.all_of(
            exp.NullSafeEQ(this=sql.col(f, _ACTIVITIES), expression=sql.col(self.key(i), self.name))
            for i, f in enumerate(self.fields)
        )


def _text_fields(node: exp.Expr) -> tuple[str, ...] | None:
    """The activity fields a text test reads, or None when it reads something else too (a parameter, a table)."""
    if any(True for _ in node.find_all(exp.Placeholder, exp.Subquery, exp.AggFunc)):
        return None
    columns = list(node.find_all(exp.Column))
    if not columns or any(c.table for c in columns):
        return None
    return tuple(sorted({c.name for c in columns}))


def kinds_tree(rules: RuleSet, lookups: dict[tuple[str, ...], _Lookup] | None = None) -> list[exp.Expr]:
    """`COALESCE(<match>, false) AS k_<kind>` for every kind. With `lookups`, each regular expression test (and
    each LIKE on the same fields, which then costs no join of its own) is taken out into the lookup of the fields
    it reads, and the match reads its column instead. A LIKE on an Id ('006%') stays in place: its field has about
    as many values as there are activities, and a prefix test costs less than the join."""
    matches = [k.expr.copy() for k in rules.kinds.values()]
    if lookups is not None:
        read = {f for m in matches for node in m.find_all(exp.RegexpLike) if (f := _text_fields(node)) is not None}
        counter = sum(len(lk.tests) for lk in lookups.values())
        for i, match in enumerate(matches):
            for node in list(match.find_all(*_TEXT_TESTS)):
                fields = _text_fields(node)
                if fields is None or fields not in read:
                    continue
                lookup = lookups.setdefault(fields, _Lookup(fields))
                text = node.sql()
                if text not in lookup.tests:
                    lookup.tests[text] = (f"w_{counter}", node.copy())
                    counter += 1
                column = sql.col(lookup.tests[text][0], lookup.name)
                if node is match:
                    matches[i] = column
                else:
                    node.replace(column)
        matches = [unguarded(m) for m in matches]
    return [
        sql.alias(exp.Coalesce(this=match, expressions=[exp.false()]), kind_col(k))
        for k, match in zip(rules.kinds, matches, strict=True)
    ]


# The facts the later passes of a sync read of a classified activity (a cited activity's privacy, what an answer
# refers to); the others served the kinds, which are computed by then.
_ENGINE_FACTS = frozenset({"IsPrivate", "WhatId", "RepliesTo"})


def statement(
    rules: RuleSet,
    *,
    one_contact: bool = False,
    have: frozenset[str] | None = None,
    kindless: bool = False,
    lean: bool = False,
) -> exp.Expr:
    """`have`: the columns `crm_activity` provides; a fact it lacks is carried as NULL. `kindless`: keep the
    activities of no kind too (`classify` deletes them after). `lean`: keep only the facts a sync's later passes
    read: at a million contacts the classified activities outgrow the engine's memory and spill to disk, and every
    column of ten million rows counts."""
    inner = sql.q(_SOURCE)
    assert isinstance(inner, exp.Select)
    missing = [
        sql.alias(exp.cast(exp.Null(), typ), name)
        for name, typ in ACTIVITY_FACTS
        if have is not None and name not in have
    ]
    inner = inner.select(*missing, append=True, copy=False)
    if one_contact:
        inner = inner.where(sql.q('"WhoId" = $contact_id'), copy=False)
    lookups: dict[tuple[str, ...], _Lookup] = {}
    kinds = kinds_tree(rules, lookups)
    columns = [sql.col(name, _ACTIVITIES) for name in ("cid", "aid", "day", "Subject", "object")]
    columns += [sql.col(name, _ACTIVITIES) for name, _ in ACTIVITY_FACTS if not lean or name in _ENGINE_FACTS]
    classified = exp.select(*columns, *kinds).from_(exp.to_table(_ACTIVITIES), copy=False)
    for lookup in lookups.values():
        classified = classified.join(exp.to_table(lookup.name), on=lookup.join(), join_type="LEFT", copy=False)
    any_kind = sql.any_of(sql.col(kind_col(k)) for k in rules.kinds)
    outer = exp.select(exp.Star()).from_(classified.subquery(copy=False), copy=False)
    if not kindless:
        outer = outer.where(any_kind, copy=False)
    outer = outer.with_(_ACTIVITIES, as_=inner, copy=False)
    for lookup in lookups.values():
        outer = outer.with_(lookup.name, as_=lookup.body(_ACTIVITIES), copy=False)
    return sql.create_temp(CLASSIFIED.name, outer)


def classify(
    con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None, lean: bool = False
) -> int:
    """Materialise the classified activities; returns how many were kept. `lean`: see `statement`."""
    params: dict[str, object] = {"as_of": as_of, "contact_id": contact_id}
    have = frozenset(str(r[0]) for r in con.execute(_COLUMNS).fetchall())
    one = contact_id is not None
    # DuckDB pushes a filter on the kinds below the projection that computes them, so every kind's test would run
    # twice (a third of this pass at a million contacts); deleting the few activities of no kind afterwards reads
    # the computed columns instead.
    sql.run_each(con, rules.memo.keep(("classify", one, have, lean), lambda: _rendered(rules, one, have, lean)), params)
    return int(sql.scalar(con, _COUNT))


_COUNT = sql.rendered(sql.q("SELECT count(*) FROM $t", t=sql.table(CLASSIFIED.name)))


def _rendered(rules: RuleSet, one_contact: bool, have: frozenset[str], lean: bool) -> list[sql.Rendered]:
    made = statement(rules, one_contact=one_contact, have=have, kindless=True, lean=lean)
    any_kind = sql.any_of(sql.col(kind_col(k)) for k in rules.kinds)
    return sql.rendered_each(
        [made, sql.q("DELETE FROM $t WHERE NOT ($any)", t=sql.table(CLASSIFIED.name), any=any_kind)]
    )
