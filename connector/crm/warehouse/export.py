"""A local CRM written out as a warehouse copy of Salesforce: one folder of Parquet files per object (the deals
too), in Salesforce or Fivetran naming. For trying the Spark engine without a lakehouse, for the tests that compare
it with DuckDB, and for the benchmarks.

The copy says what the local CRM says, and carries what a real one carries beside it, none of which may change a
placement or a calibration: a Task deleted in Salesforce but still in the recycle bin (IsDeleted). With Fivetran
naming also its system columns (connector.crm.warehouse.naming): `_fivetran_synced` on every row,
`_fivetran_deleted` on every object, with a deleted Contact, a deleted Task and a deleted contact role on a won deal
among the rows; Contact in history mode (`_fivetran_active`, `_fivetran_start`, `_fivetran_end`) with past
versions of a few contacts; and Task's booleans as 'TRUE'/'FALSE' text, as some destinations store them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlglot import exp

from connector import ids, sql, vocabulary
from connector.config import WarehouseSection
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse import naming
from connector.crm.warehouse.naming import Naming

OBJECTS = ("Contact", "Task", "Event", *vocabulary.ACTIVITY_DETAIL_OBJECTS, *vocabulary.OUTCOME_OBJECTS)
TEXT_BOOLEANS = "Task"  # the object whose booleans the Fivetran copy stores as 'TRUE'/'FALSE'
PAST_VERSIONS = 3  # contacts with an older version in the history-mode Contact table
_EXTRA_N = 36**10 - 1  # Ids of the added rows: the last number `ids.make` has, clear of any generated record


def export(
    crm: LocalCrm, folder: Path, *, naming_: Naming = "fivetran", synced_at: dt.datetime | None = None
) -> WarehouseSection:
    """Write the CRM's Contact, Task, Event, EmailMessage, TaskRelation and EventRelation under `folder` (one
    sub-folder per object, named as the naming names its table) and return the `[warehouse]` section reading them.
    `synced_at`: the copy's `_fivetran_synced` (default: now, UTC)."""
    synced = synced_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    where: dict[str, str] = {}
    con = crm.con.cursor()  # its own connection to the CRM: no result of the caller's is left half-read
    try:
        present = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for obj in OBJECTS:
            if obj not in present:  # a CRM made before deals were kept: the copy has none either
                continue
            target = folder / naming.table_name(obj, naming_)
            target.mkdir(parents=True, exist_ok=True)
            con.sql(sql.render(_query(obj, naming_, synced))).write_parquet(str(target / "part-0.parquet"))
            where[naming.OBJECT_KEYS[obj]] = str(target)
    finally:
        con.close()
    return WarehouseSection.model_validate({"format": "parquet", "naming": naming_, **where})


def _query(obj: str, naming_: Naming, synced: dt.datetime) -> exp.Expr:
    """The object's rows as the copy holds them, added rows included."""
    rows = exp.select(*(sql.col(c) for c in vocabulary.column_names(obj))).from_(sql.table(obj))
    parts = [_shaped(rows, obj, naming_, synced)]
    if obj == "Task":  # deleted in Salesforce, still in the recycle bin
        parts.append(_shaped(_added(obj, ids.TASK, {"IsDeleted": exp.true()}), obj, naming_, synced))
    if naming_ == "fivetran" and obj in {"Contact", "Task"}:  # deleted, and marked so by the pipeline
        prefix = ids.CONTACT if obj == "Contact" else ids.TASK
        parts.append(_shaped(_added(obj, prefix, {}, n=_EXTRA_N - 1), obj, naming_, synced, deleted=True))
    if naming_ == "fivetran" and obj == "OpportunityContactRole":  # a role on a won deal, deleted: credits nobody
        other = sql.q('(SELECT max("Id") FROM "Contact")')
        added = _added(obj, ids.OPPORTUNITY_CONTACT_ROLE, {"ContactId": other}, n=_EXTRA_N - 1, won=True)
        parts.append(_shaped(added, obj, naming_, synced, deleted=True))
    if naming_ == "fivetran" and obj == "Contact":  # history mode: superseded versions
        parts.append(_shaped(_past_versions(), obj, naming_, synced, active=False))
    return exp.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def _added(obj: str, prefix: str, changes: dict[str, exp.Expr], n: int = _EXTRA_N, *, won: bool = False) -> exp.Expr:
    """A copy of the object's first live row (by Id) under a new Id, with `changes` (`won`: the first role on a won
    deal)."""
    cols = [
        sql.alias(changes.get(c, sql.col(c)), c) if c != "Id" else sql.alias(sql.lit(ids.make(prefix, n)), "Id")
        for c in vocabulary.column_names(obj)
    ]
    first = sql.q('SELECT min("Id") FROM $t WHERE NOT COALESCE("IsDeleted", false)', t=sql.table(obj))
    if won:
        first = sql.q(
            'SELECT min(r."Id") FROM $t r JOIN "Opportunity" o ON o."Id" = r."OpportunityId" WHERE o."IsWon"',
            t=sql.table(obj),
        )
    return exp.select(*cols).from_(sql.table(obj)).where(exp.EQ(this=sql.col("Id"), expression=exp.paren(first)))


def _past_versions() -> exp.Expr:
    """Older versions of the first few contacts: another name, and trust fields from a rung they never had."""
    changed = {
        "FirstName": sql.lit("Formerly"),
        "Trust_Stage__c": sql.lit("Forever"),
        "Trust_Flags__c": sql.lit("Missing listening"),
    }
    cols = [sql.alias(changed.get(c, sql.col(c)), c) for c in vocabulary.column_names("Contact")]
    return exp.select(*cols).from_(sql.table("Contact")).order_by(sql.col("Id")).limit(PAST_VERSIONS)


def _shaped(
    rows: exp.Expr, obj: str, naming_: Naming, synced: dt.datetime, *, deleted: bool = False, active: bool = True
) -> exp.Expr:
    """`rows` (with the object's API columns) renamed and typed as the naming stores them, with its system columns."""
    src = "r"
    types = {c: vocabulary.base_type(t) for c, t in vocabulary.TABLES[obj]}
    cols: list[exp.Expr] = []
    for c, typ in types.items():
        value: exp.Expr = sql.col(c, src)
        if naming_ == "fivetran" and obj == TEXT_BOOLEANS and typ == "BOOLEAN":
            value = sql.q("CASE WHEN $v THEN 'TRUE' WHEN NOT $v THEN 'FALSE' END", v=value)
        cols.append(sql.alias(value, naming.default_column(c, naming_)))
    if naming_ == "fivetran":
        stamp = exp.cast(exp.Literal.string(synced.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
        cols += [
            sql.alias(stamp, naming.FIVETRAN_SYNCED),
            sql.alias(exp.Boolean(this=deleted), naming.FIVETRAN_DELETED),
        ]
        if obj == "Contact":
            start = sql.col("SystemModstamp", src)
            end = sql.lit(None) if active else start.copy()
            cols += [
                sql.alias(exp.Boolean(this=active), naming.FIVETRAN_ACTIVE),
                sql.alias(start, "_fivetran_start"),
                sql.alias(exp.cast(end, exp.DataType.Type.TIMESTAMP), "_fivetran_end"),
            ]
    return exp.select(*cols).from_(exp.Subquery(this=rows, alias=exp.TableAlias(this=sql.ident(src))))
