"""Each Salesforce object's warehouse copy as a Spark temp view named as the object, in the API's names and types.

What a view holds: every field the local CRM's table has (connector.vocabulary), plus the `[fields]` trust fields on
Contact. A field the engine or the rules read must be in the copy (its absence is a ConfigError naming the object,
where it was looked for, the column and the mapping key that names it), but for the optional activity field
Trust_Listening__c; any other field the copy lacks is NULL, as a field the sync user cannot see is on the
Salesforce backend, and logged (`warehouse.columns_absent`).
Values are cast to the API's types: booleans also from text ('TRUE'/'FALSE', 'true', '1'/'0'), timestamps and
dates from whatever the copy stores, text that is not a date becoming NULL (then the row is set aside for having
no date, as the local CRM does).

Rows the copy marks as gone are left out: `_fivetran_deleted` true (deleted in Salesforce) and, in Fivetran's
history mode, `_fivetran_active` false (a past version of the record). Salesforce's own IsDeleted is kept, and
read as the local CRM reads it. Task and Event views get a `rowid`, the integer the activity facts join on (DuckDB's
row number there), numbered once: every view is materialised when it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from connector import sql, vocabulary
from connector.config import ActivitiesSection, FieldsSection, WarehouseSection
from connector.crm import RuleNeeds
from connector.crm.warehouse import naming
from connector.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

COPIED_AT = "copied_at"  # on Contact (and so on crm_contact): when the warehouse copy of the row was taken
ROW_NUMBER = "rowid"
_TRUST_TYPES = {
    "stage": "VARCHAR",
    "stage_since": "DATE",
    "flags": "VARCHAR",
    "next_step": "VARCHAR",
    "reason": "VARCHAR",
    "rules_version": "VARCHAR",
    "held_until": "DATE",
    "previous_stage": "VARCHAR",
}
# What every copy of a detail object must have for the activity facts to mean anything.
_KEYS = {
    "EmailMessage": ("Id", "ActivityId", "Incoming"),
    "TaskRelation": ("Id", "TaskId", "RelationId"),
    "EventRelation": ("Id", "EventId", "RelationId"),
}
_TRUTHY = """
CASE WHEN lower(trim(CAST($c AS VARCHAR))) IN ('true', '1') THEN true
     WHEN lower(trim(CAST($c AS VARCHAR))) IN ('false', '0') THEN false END
"""


def columns(obj: str, fields: FieldsSection, extra: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(API name, type) of every column of the object's view, in the local CRM's order; `extra`: Contact fields
    beyond the vocabulary's that the rules read (a contact_gone outcome's inactive field), as text."""
    out = [(name, vocabulary.base_type(typ)) for name, typ in vocabulary.TABLES[obj]]
    if obj == "Contact":
        have = {name for name, _ in out}
        out += [(n, _TRUST_TYPES[k]) for k, n in fields.owned().items() if n not in have]
        have |= {name for name, _ in out}
        out += [(n, "VARCHAR") for n in dict.fromkeys(extra) if n not in have]
    return out


def stored_fields(section: WarehouseSection, obj: str, frame: DataFrame, names: list[str]) -> set[str]:
    """Which of these API names the copy has a column for (under the naming and the mapping)."""
    stored = {name.lower() for name, _ in frame.dtypes}
    return {api for api in names if naming.column(section, obj, api).lower() in stored}


def required(obj: str, fields: FieldsSection, needs: RuleNeeds, policy: ActivitiesSection) -> list[str]:
    """The fields the engine or the rules read, which the copy must have."""
    if obj == "Contact":
        wanted = ["Id", *fields.required().values(), *needs.contact_fields]
    elif obj in vocabulary.ACTIVITY_OBJECTS:
        dates = policy.task_date if obj == "Task" else policy.event_date
        private = ["IsPrivate"] if obj == "Event" and not policy.count_private_events else []
        have = set(vocabulary.column_names(obj))
        # An optional field (Trust_Listening__c: an org may not have it) is NULL where the copy lacks it, as the
        # Salesforce backend pulls it where the describe does not list it.
        used = (f for f in needs.activity_fields if f in have and f not in vocabulary.OPTIONAL_ACTIVITY_FIELDS)
        wanted = ["Id", "WhoId", *dates, *private, *used]
    else:
        wanted = list(_KEYS[obj])
    return list(dict.fromkeys(wanted))


def check_paths(section: WarehouseSection, resolve: Callable[[Path], Path]) -> None:
    """A local Parquet or Delta folder that is not there, named before Spark starts: Spark itself finds out only
    when it reads that object, minutes into a run."""
    if section.format == "table":
        return
    for obj, where in section.objects().items():
        if "://" not in where and not resolve(Path(where)).exists():
            raise ConfigError(
                f"[warehouse] {naming.OBJECT_KEYS[obj]} = '{where}': no such folder ({resolve(Path(where))}) "
                f"for the {obj} copy"
            )


def load(
    spark: SparkSession, section: WarehouseSection, obj: str, where: str, resolve: Callable[[Path], Path]
) -> DataFrame:
    """The copy as it is stored: a catalog table, or a Parquet or Delta folder."""
    key = naming.OBJECT_KEYS[obj]
    try:
        if section.format == "table":
            return spark.table(where)
        path = where if "://" in where else str(resolve(Path(where)))
        return spark.read.format(section.format).load(path)
    except Exception as e:  # pyspark raises AnalysisException, py4j a Java error for a format it lacks (delta)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = "; Delta needs the delta-spark package on Spark's classpath" if section.format == "delta" else ""
        raise ConfigError(
            f"[warehouse] {key} = '{where}': cannot read the {obj} copy as {section.format} ({first[:300]}){hint}"
        ) from e


def view(
    section: WarehouseSection,
    obj: str,
    where: str,
    frame: DataFrame,
    wanted: list[tuple[str, str]],
    needed: list[str],
) -> exp.Expr:
    """The statement that makes the object's view from its copy (registered as `raw`, a temp view of `frame`)."""
    key = naming.OBJECT_KEYS[obj]
    stored = {name.lower(): (name, typ) for name, typ in frame.dtypes}

    def find(column: str) -> tuple[str, str] | None:
        return stored.get(column.lower())

    missing = [
        (api, naming.column(section, obj, api)) for api in needed if find(naming.column(section, obj, api)) is None
    ]
    if missing:
        listed = ", ".join(f"{col} ({obj}.{api})" for api, col in missing)
        raise ConfigError(
            f"[warehouse] {key} = '{where}': the {obj} copy has no column {listed}; if it is there under another "
            f'name, set it in [warehouse.columns.{key}], e.g. {missing[0][0]} = "<its column>" '
            f"(columns found: {', '.join(sorted(n for n, _ in stored.values())[:12])}...)"
        )
    select: list[exp.Expr] = [
        sql.alias(_convert(find(naming.column(section, obj, api)), typ), api) for api, typ in wanted
    ]
    if obj == "Contact":
        copied = naming.copied_at(section)
        found = find(copied)
        if found is None:
            raise ConfigError(
                f"[warehouse] contact = '{where}': the Contact copy has no column {copied}, which says when each "
                f'row was copied; set [warehouse] copied_at = "<its column>"'
            )
        select.append(sql.alias(_convert(found, "TIMESTAMP"), COPIED_AT))
    if obj in vocabulary.ACTIVITY_OBJECTS:
        select.append(sql.alias(exp.Anonymous(this="monotonically_increasing_id", expressions=[]), ROW_NUMBER))
    names = [api for api, _ in wanted] + ([COPIED_AT] if obj == "Contact" else [])
    names += [ROW_NUMBER] if obj in vocabulary.ACTIVITY_OBJECTS else []
    newest = find(naming.copied_at(section) if obj == "Contact" else _row_copied_at(section, obj))
    order = [exp.Ordered(this=_convert(newest, "TIMESTAMP"), desc=True, nulls_first=False)] if newest else []
    id_col = find(naming.column(section, obj, "Id"))
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[sql.col(id_col[0]) if id_col else exp.Null()],
        order=exp.Order(expressions=[*order, exp.Ordered(this=sql.col(ROW_RANK_TIE))]),
    )
    body = exp.select(*select, sql.alias(rank, ROW_RANK)).from_(_live(obj, find))
    newest_only = sql.q("$rank = 1", rank=sql.col(ROW_RANK))
    return sql.create_temp(obj, exp.select(*[sql.col(n) for n in names]).from_(body.subquery("v")).where(newest_only))


ROW_RANK = "_copy_rank"  # 1 for the newest copy of each Id: a copy may hold one record twice (a rerun load)
ROW_RANK_TIE = "_copy_tie"


def _live(obj: str, find: Callable[[str], tuple[str, str] | None]) -> exp.Expr:
    """The stored rows that are the record as it stands: not deleted, and (history mode) the active version."""
    live: list[exp.Expr] = []
    deleted, active = find(naming.FIVETRAN_DELETED), find(naming.FIVETRAN_ACTIVE)
    if deleted is not None:
        live.append(sql.q("NOT COALESCE($d, false)", d=_convert(deleted, "BOOLEAN")))
    if active is not None:
        live.append(sql.q("COALESCE($a, true)", a=_convert(active, "BOOLEAN")))
    rows = exp.select(exp.Star(), sql.alias(exp.Anonymous(this="monotonically_increasing_id"), ROW_RANK_TIE))
    rows = rows.from_(sql.table(raw_name(obj)))
    return (rows.where(sql.all_of(live)) if live else rows).subquery("r")


def _row_copied_at(section: WarehouseSection, obj: str) -> str:
    """The column of a non-Contact object that orders its copies of one record: Fivetran's sync time, else the
    record's SystemModstamp."""
    return naming.FIVETRAN_SYNCED if section.naming == "fivetran" else naming.column(section, obj, "SystemModstamp")


def live_rows(obj: str, frame: DataFrame) -> exp.Expr:
    """How many stored rows are live: more than the view holds only when a record is copied twice. A count, with
    no shuffle, so the grouping that names the duplicates runs only when there are some."""
    stored = {name.lower(): (name, typ) for name, typ in frame.dtypes}
    return exp.select(sql.q("count(*)")).from_(_live(obj, lambda c: stored.get(c.lower())))


def duplicates(section: WarehouseSection, obj: str, frame: DataFrame) -> exp.Expr:
    """Up to ten Ids of records the copy holds more than once."""
    stored = {name.lower(): (name, typ) for name, typ in frame.dtypes}
    key = stored[naming.column(section, obj, "Id").lower()][0]
    live = _live(obj, lambda c: stored.get(c.lower()))
    per_id = exp.select(sql.alias(sql.col(key), "id")).from_(live).group_by(sql.col(key))
    return sql.q("SELECT list(id ORDER BY id)[1:10] FROM ($per_id) d", per_id=per_id.having(sql.q("count(*) > 1")))


def unreadable(
    section: WarehouseSection, obj: str, frame: DataFrame, wanted: list[tuple[str, str]]
) -> list[tuple[str, exp.Expr]]:
    """For each date or time field the copy stores as text: the statement counting the values no cast reads
    ('05/12/2024'), with up to ten Ids. `view` reads them as NULL, so the next field of `[activities] task_date`
    dates the activity, or none does and the row is set aside: either way the admin should hear of it."""
    stored = {name.lower(): (name, typ) for name, typ in frame.dtypes}
    key = stored[naming.column(section, obj, "Id").lower()][0]
    out: list[tuple[str, exp.Expr]] = []
    for api, typ in wanted:
        found = stored.get(naming.column(section, obj, api).lower())
        if typ not in {"DATE", "TIMESTAMP"} or found is None or found[1] != "string":
            continue
        bad = sql.q(
            "SELECT $id AS id FROM $rows WHERE NULLIF(trim($c), '') IS NOT NULL AND $cast IS NULL",
            id=sql.col(key),
            rows=_live(obj, lambda c: stored.get(c.lower())),
            c=sql.col(found[0]),
            cast=_convert(found, typ),
        )
        out.append((api, sql.q("SELECT count(*), list(id ORDER BY id)[1:10] FROM ($bad) b", bad=bad)))
    return out


def absent(section: WarehouseSection, obj: str, frame: DataFrame, wanted: list[tuple[str, str]]) -> list[str]:
    """The columns the copy lacks and `view` reads as NULL: the rules need none of them, but an admin should
    know (a pipeline that stopped copying a field, a mapping that names the wrong column)."""
    stored = {name.lower() for name, _ in frame.dtypes}
    return [
        f"{naming.column(section, obj, api)} ({obj}.{api})"
        for api, _ in wanted
        if naming.column(section, obj, api).lower() not in stored
    ]


def stored_name(section: WarehouseSection, obj: str, api: str) -> str:
    """The copy's column for a field's API name, under the configured naming."""
    return naming.column(section, obj, api)


def raw_name(obj: str) -> str:
    return f"wh_raw_{naming.snake_case(obj)}"


def _convert(found: tuple[str, str] | None, typ: str) -> exp.Expr:
    """A stored column as the API type (a typed NULL when the copy has no such column)."""
    target = exp.DataType.build(typ, dialect=sql.DIALECT)
    if found is None:
        return exp.cast(exp.Null(), target)
    name, stored = found
    column = sql.col(name)
    if typ == "BOOLEAN":
        return column if stored == "boolean" else sql.q(_TRUTHY, c=column)
    if typ == "VARCHAR":
        return column if stored == "string" else exp.cast(column, target)
    return exp.TryCast(this=column, to=target)


def empty(spark: SparkSession, wanted: list[tuple[str, str]]) -> DataFrame:
    """No rows, with the object's columns and types: an object the org does not have."""
    from pyspark.sql import types  # noqa: PLC0415 - optional extra

    kinds = {
        "VARCHAR": types.StringType(),
        "BOOLEAN": types.BooleanType(),
        "DATE": types.DateType(),
        "TIMESTAMP": types.TimestampType(),
        "INTEGER": types.IntegerType(),
    }
    schema = types.StructType([types.StructField(name, kinds[typ]) for name, typ in wanted])
    return spark.createDataFrame([], schema)
