"""Which contacts a sync computes, and the engine's inputs narrowed to them.

What a sync writes on a contact can differ from what the last one wrote for four reasons only: its data changed
(an activity of it, an email or a relation naming it, a field of the contact), the rules changed (another rules
version: nothing of the cache is used), a day came on which its timeline moves (`next_change`), or the CRM no longer
shows what a sync meant it to show (a write refused or cut short, a hand edit). Every other contact already shows
what this run would write, so a sync reads, classifies, places and plans only the others.

The first two are seen in a fingerprint of the contact's rows as the backend exposes them (`fp`: every column of
its `crm_activity` rows and of its `crm_contact` row except the trust fields), the last in a hash of the trust fields
the CRM shows (`ch`) against the one of the values the sync that computed the contact meant to write (`ph`, kept in
the timeline cache). Both are compared with the cache, never with a run's writes, so a run stopped anywhere leaves
the next one to compute exactly the contacts that still need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from typing import Any

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine.relations import CONTACTS, PLACE, PLAN_FIELDS, TIMELINE, flag_col, flag_since_col
from connector.engine.texts import rung_name
from connector.engine.timeline import CACHE, FINGERPRINTS, FRESH, TODO_ALL
from connector.ruleset.compiler import RuleSet

ActivitiesOf = Callable[[str], exp.Expr]  # a table of contact Ids -> at least their `crm_activity` rows

STANDING = "tl_standing"  # every live contact's rung, grace and open flags: the run's figures read it
_INPUTS = ("crm_contact", "crm_activity")  # what the backend exposes; narrowed to the scope while computing


def written_hash(side: str, written: Collection[str] | None = None) -> exp.Expr:
    """A hash of the trust fields, as the plan compares them (flags as a set): `side` "new" for what a sync means
    to write (in `tl_place`), "cur" for what the CRM shows. `written`: the fields in use ([fields] keys); an
    optional field the CRM lacks is never written, so it would never match what a sync meant to write there, and
    every contact with a value for it would be computed again on every run. None: all of them."""
    values = []
    for logical, (new, cur) in PLAN_FIELDS.items():
        if written is not None and logical not in written:
            continue
        column = sql.col(new if side == "new" else cur)
        values.append(
            sql.q("list_sort(string_split(COALESCE($c, ''), ';'))", c=column) if logical == "flags" else column
        )
    return sql.func("hash", *values)


# A contact's own stamps move with every write, this tool's too; what changed is in the other columns.
_STAMPS = frozenset({"LastModifiedDate", "SystemModstamp", "LastModifiedById", "LastViewedDate", "LastReferencedDate"})


def fingerprints(
    con: duckdb.DuckDBPyConnection, owned: frozenset[str] = frozenset(), written: Collection[str] | None = None
) -> exp.Expr:
    """`tl_t_fp`: per live contact, `fp` (its data), `ch` (its trust fields as the CRM shows them) and `nf` (the day
        of its next activity dated after the evaluation day, which the timeline does not count yet: the day it counts
        is a change day). Every column the backend exposes is hashed but the stamps and the fields this tool writes
    (`owned`), so a fact the engine reads cannot change unseen."""
    skip = _STAMPS | owned
    contact = [sql.col(n, "c") for n in _columns(con, "crm_contact") if not n.startswith("cur_") and n not in skip]
    activity = [sql.col(n) for n in _columns(con, "crm_activity")]
    return sql.create_temp(
        FINGERPRINTS,
        sql.q(
            'SELECT c."Id" AS cid, $contact_hash AS fp, $ch AS ch, a.nf FROM $contacts c '
            'LEFT JOIN (SELECT "WhoId" AS cid, bit_xor($activity_hash) AS fp, min(day) FILTER (WHERE day > $as_of) '
            'AS nf FROM crm_activity GROUP BY 1) a ON a.cid = c."Id"',
            contact_hash=sql.func("hash", *contact, sql.q("COALESCE(a.fp, 0)")),
            activity_hash=sql.func("hash", *activity),
            ch=written_hash("cur", written),
            as_of=sql.as_of(),
            contacts=sql.table(CONTACTS.name),
        ),
    )


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [relation]
    ).fetchall()
    return [str(r[0]) for r in rows]


def todo(*, everyone: bool = False) -> exp.Expr:
    """New contacts, changed ones, rows computed for a later day, rows whose next change day has come, and
    contacts whose trust fields are not what their sync meant to write (`everyone`: all live contacts)."""
    if everyone:
        return sql.create_temp(TODO_ALL, sql.q("SELECT cid FROM $fp", fp=sql.table(FINGERPRINTS)))
    return sql.create_temp(
        TODO_ALL,
        sql.q(
            "SELECT f.cid FROM $fp f LEFT JOIN $cache k ON k.cid = f.cid "
            "WHERE k.cid IS NULL OR k.fp <> f.fp OR k.as_of > $as_of OR k.next_change <= $as_of "
            "OR k.ph IS DISTINCT FROM f.ch",
            fp=sql.table(FINGERPRINTS),
            cache=sql.table(CACHE),
            as_of=sql.as_of(),
        ),
    )


@contextlib.contextmanager
def narrowed(con: duckdb.DuckDBPyConnection, activities_of: ActivitiesOf | None = None) -> Iterator[None]:
    """`crm_contact` and `crm_activity` show only the contacts of `tl_t_todo_all` while the engine computes; as
    the backend exposed them again afterwards (the plan, the follow-ups and the figures read them whole).
    `activities_of`: the backend's `crm_activity` for a table of contacts (CrmBackend.activities_of), which picks
    their activities before it joins anything; without it, the whole view is filtered."""
    for name in _INPUTS:
        con.execute(f"ALTER VIEW {name} RENAME TO tl_s_all_{name}")
    try:
        # A table, not a view: the view's Id checks make the planner guess a few hundred contacts, so a join
        # built its hash table on the contacts, their trust texts included, and a rule change on a large org ran
        # out of memory there. A table's row count is known.
        con.execute(
            "CREATE TEMP TABLE crm_contact AS SELECT * FROM tl_s_all_crm_contact "
            f'WHERE "Id" IN (SELECT cid FROM {TODO_ALL})'
        )
        source = activities_of(TODO_ALL) if activities_of else sql.q("SELECT * FROM tl_s_all_crm_activity")
        sql.run(
            con,
            sql.create_temp(
                "crm_activity",
                sql.q(
                    'SELECT * FROM ($s) s WHERE COALESCE("WhoId" IN (SELECT cid FROM $todo), false)',
                    s=source,
                    todo=sql.table(TODO_ALL),
                ),
                kind="VIEW",
            ),
        )
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS crm_contact")
        con.execute("DROP VIEW IF EXISTS crm_activity")
        for name in _INPUTS:
            con.execute(f"ALTER VIEW tl_s_all_{name} RENAME TO {name}")


def standing(rules: RuleSet) -> exp.Expr:
    """`tl_standing`: every live contact as the timeline places it (computed now or kept), in the columns of
    `tl_place` the run's figures count: `new_stage`, `in_grace` and one per flag."""
    flags = [sql.alias(sql.q("$s IS NOT NULL", s=sql.col(flag_since_col(f.id))), flag_col(f.id)) for f in rules.flags]
    body = exp.select(
        sql.col("cid"),
        sql.alias(rung_name(rules, sql.col("final")), "new_stage"),
        sql.alias(sql.q("COALESCE(in_grace, false)"), "in_grace"),
        sql.alias(sql.q("CASE WHEN final > qualified_now THEN held_until END"), "held_until"),
        *flags,
    ).from_(sql.table(TIMELINE.name))
    return sql.create_temp(STANDING, body, kind="VIEW")


def fresh_rows(con: duckdb.DuckDBPyConnection, written: Collection[str] | None = None) -> Any:
    """The rows a cached run computed, with the hash of what it means to write (`ph`, from `tl_place`), as
    columns for `Store.save_timeline`."""
    planned = exp.select(sql.col("cid"), sql.alias(written_hash("new", written), "ph")).from_(sql.table(PLACE.name))
    body = sql.q(
        "SELECT f.* EXCLUDE (ph), p.ph FROM $fresh f LEFT JOIN ($planned) p ON p.cid = f.cid",
        fresh=sql.table(FRESH),
        planned=planned,
    )
    return sql.run(con, body).fetchnumpy()
