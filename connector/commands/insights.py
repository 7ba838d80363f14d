"""What admins and salespeople ask of a placement, per owner: what holds contacts back, who is slipping, which flags
are open, and whose contacts these are.

Every function reads a placement table with the columns of `tl_place` (the engine's, or a simulation's copy) joined
with `crm_contact` and the CRM's `User` table; every statement is made by the one SQL builder, with rung names,
criterion texts and dates entering as literals or bound parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from connector import sql
from connector.crm.local import accounts
from connector.engine import texts
from connector.engine.relations import criterion_col, flag_col, flag_since_col
from connector.ruleset.compiler import RuleSet

OWNERS = "tl_rep_owner"  # cid -> owner key (OwnerId, '' for none) and display name, account name and Id
NO_OWNER = ""

_OWNERS = """
CREATE OR REPLACE TEMP TABLE $t AS
SELECT c."Id" AS cid, COALESCE(c."OwnerId", '') AS owner,
       COALESCE(u."Name", c."OwnerId", '(no owner)') AS owner_name, u."Email" AS owner_email,
       COALESCE(a."Name", '') AS account, COALESCE(c."AccountId", '') AS account_id
FROM crm_contact c LEFT JOIN "User" u ON u."Id" = c."OwnerId" LEFT JOIN ($accounts) a ON a."Id" = c."AccountId"
"""
_BOOKS = """SELECT owner, any_value(owner_name), any_value(owner_email), count(*) FROM $t GROUP BY owner
ORDER BY count(*) DESC, 2"""
_HELD_BACK = "SELECT o.owner FROM $place p JOIN $owners o USING (cid) GROUP BY o.owner"
_SLIPPING = """
SELECT p.cid, concat_ws(' ', c."FirstName", c."LastName") AS name, o.owner, p.new_stage,
       $qualifies AS qualifies, p.in_grace,
       p.held_until AS until,
       $missing AS missing, o.account, o.account_id, COALESCE(p.new_next, '') AS next_step
FROM $place p JOIN $owners o USING (cid) JOIN crm_contact c ON c."Id" = p.cid
WHERE p.final > p.qualified
ORDER BY until, name, p.cid
"""
_FLAGGED = """
SELECT p.cid, concat_ws(' ', c."FirstName", c."LastName") AS name, o.owner, p.new_stage, p.new_flags, p.new_next,
       o.account, o.account_id
FROM $place p JOIN $owners o USING (cid) JOIN crm_contact c ON c."Id" = p.cid
WHERE p.new_flags IS NOT NULL
ORDER BY name, p.cid
"""
_CONTACTS = """SELECT c."Id", concat_ws(' ', c."FirstName", c."LastName"), o.owner, o.account, o.account_id
FROM crm_contact c
JOIN $owners o ON o.cid = c."Id" WHERE list_contains(CAST($ids AS VARCHAR[]), c."Id")"""


@dataclass(frozen=True)
class Owner:
    key: str  # OwnerId, or NO_OWNER
    name: str
    email: str | None
    contacts: int


@dataclass(frozen=True)
class Criterion:
    rung: str
    says: str


@dataclass(frozen=True)
class Slipping:
    cid: str
    name: str
    owner: str
    stage: str  # the rung on the record, held or decaying
    qualifies: str  # the rung the contact meets today
    held: bool  # held by the demotion grace period (else: decaying, one rung per period)
    until: dt.date  # when the grace period ends, or when the next rung is lost
    missing: str  # the criteria it no longer meets, '; '-joined
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""  # AccountId, '' for none
    next_step: str = ""  # the next step the contact record shows (a held contact's keep step comes first)


@dataclass(frozen=True)
class Flagged:
    cid: str
    name: str
    owner: str
    stage: str
    flags: list[str]
    next_step: str
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""  # AccountId, '' for none
    opened: tuple[tuple[str, dt.date | None], ...] = ()  # each open flag's label and the day it opened

    @property
    def oldest(self) -> dt.date | None:
        """The day the longest-open flag opened (None when the timeline did not say)."""
        days = [d for _, d in self.opened if d is not None]
        return min(days) if days else None


@dataclass(frozen=True)
class Who:
    """A live contact as the pages name it."""

    name: str
    owner: str
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""  # AccountId, '' for none


def owners(con: duckdb.DuckDBPyConnection) -> list[Owner]:
    """Build OWNERS for the contacts on `con` (with their accounts' names as the CRM holds them now); the owners,
    biggest books first."""
    sql.run(con, sql.q(_OWNERS, t=sql.table(OWNERS), accounts=accounts.names(con)))
    rows = sql.run(con, sql.q(_BOOKS, t=sql.table(OWNERS))).fetchall()
    return [Owner(str(k), str(n), None if e is None else str(e), int(c)) for k, n, e, c in rows]


def criteria(rules: RuleSet) -> list[Criterion]:
    return [Criterion(r.name, c.says) for r in rules.rungs[1:] for c in r.criteria]


def held_back(con: duckdb.DuckDBPyConnection, place: str, rules: RuleSet, rung: str) -> dict[str, list[int]]:
    """Per owner, for each criterion of `criteria(rules)`, three counts: contacts below its rung (by the `rung`
    column, `final` or `qualified`), of those how many fail it, and how many stand one rung below and miss only
    this criterion (one step from climbing)."""
    on = sql.col(rung, "p")
    aggs: list[exp.Expr] = []
    for r in rules.rungs[1:]:
        cols = [sql.col(criterion_col(r.index, j), "p") for j in range(len(r.criteria))]
        for j, c in enumerate(cols):
            others = sql.all_of(o.copy() for i, o in enumerate(cols) if i != j)
            aggs += [
                sql.q("count(*) FILTER (WHERE $on < $k)", on=on, k=r.index),
                sql.q("count(*) FILTER (WHERE $on < $k AND NOT $c)", on=on, k=r.index, c=c),
                sql.q(
                    "count(*) FILTER (WHERE $on = $k - 1 AND NOT $c AND $others)", on=on, k=r.index, c=c, others=others
                ),
            ]
    tree = sql.q(_HELD_BACK, place=sql.table(place), owners=sql.table(OWNERS))
    assert isinstance(tree, exp.Select)
    tree.select(*aggs, append=True, copy=False)
    return {str(row[0]): [int(v) for v in row[1:]] for row in sql.run(con, tree).fetchall()}


def slipping(con: duckdb.DuckDBPyConnection, place: str, rules: RuleSet, as_of: dt.date) -> list[Slipping]:
    """Contacts kept above the rung they qualify for: held by the demotion grace period (until its end), or
    decaying after it (until they lose the next rung): the day from each contact's timeline, soonest first."""
    missing = exp.Case(
        this=sql.col("final", "p"),
        ifs=[
            exp.If(this=sql.lit(r.index), true=texts.missing(rules.rungs, r.index, rules.flags))
            for r in rules.rungs[1:]
        ],
    )
    tree = sql.q(
        _SLIPPING,
        place=sql.table(place),
        owners=sql.table(OWNERS),
        qualifies=texts.rung_name(rules, sql.col("qualified", "p")),
        missing=missing,
    )
    return [
        Slipping(
            str(cid),
            str(name),
            str(owner),
            str(stage),
            str(qual),
            bool(held),
            until,
            str(miss or ""),
            str(acc),
            str(acc_id),
            step,
        )
        for cid, name, owner, stage, qual, held, until, miss, acc, acc_id, step in sql.run(
            con, tree, {"as_of": as_of}
        ).fetchall()
    ]


def flagged(con: duckdb.DuckDBPyConnection, place: str, rules: RuleSet | None = None) -> list[Flagged]:
    """Contacts with an open flag, with the next step the engine gives them. With `rules`, also the day each open
    flag opened, from the timeline's `gs_<flag>` columns (a placement without them, such as a simulation's copy,
    says nothing of age)."""
    tree = sql.q(_FLAGGED, place=sql.table(place), owners=sql.table(OWNERS))
    assert isinstance(tree, exp.Select)
    declared = list(rules.flags) if rules is not None else []
    present = {str(r[0]) for r in con.execute(f"DESCRIBE {sql.render(sql.table(place))}").fetchall()}
    aged = [f for f in declared if flag_since_col(f.id) in present]
    for f in aged:
        tree.select(
            sql.q("CASE WHEN $g THEN $gs END", g=sql.col(flag_col(f.id), "p"), gs=sql.col(flag_since_col(f.id), "p")),
            append=True,
            copy=False,
        )
    out = []
    for cid, name, owner, stage, flags, step, account, account_id, *days in sql.run(con, tree).fetchall():
        opened = tuple((f.label, d) for f, d in zip(aged, days, strict=True) if f.label in str(flags).split(";"))
        out.append(
            Flagged(
                str(cid),
                str(name),
                str(owner),
                str(stage),
                str(flags).split(";"),
                str(step or ""),
                str(account),
                str(account_id),
                opened,
            )
        )
    return out


def contacts(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, Who]:
    """Name, owner key and account of each live contact among `ids` (a deleted contact is left out)."""
    if not ids:
        return {}
    rows = sql.run(con, sql.q(_CONTACTS, owners=sql.table(OWNERS)), {"ids": ids}).fetchall()
    return {str(cid): Who(str(name), str(owner), str(acc), str(acc_id)) for cid, name, owner, acc, acc_id in rows}
