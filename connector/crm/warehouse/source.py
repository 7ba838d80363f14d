"""`register`: the warehouse objects, then `crm_contact`, the rows set aside, the activity facts and `crm_activity`,
in the order and with the statements of connector.crm.local.store's `prepare`.

Each statement is a sqlglot tree rendered for Spark (connector.engine.dialect) and, when it makes a relation,
materialised once as a temp view (as connector.engine.spark does): later steps read it several times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from connector import log, sql, vocabulary
from connector.config import ActivitiesSection, FieldsSection, WarehouseSection
from connector.crm import RuleNeeds
from connector.crm.local import activities as act
from connector.crm.local import quarantine
from connector.crm.warehouse import read
from connector.engine import dialect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_log = log.get("trust_ladder.warehouse")

OBJECTS = ("Contact", "Task", "Event", *vocabulary.ACTIVITY_DETAIL_OBJECTS)
UNREADABLE = "read as empty; an activity is then dated by its next date field, or set aside"


@dataclass(frozen=True)
class WarehouseFigures:
    """What `register` found. `skipped`: per object, the rows set aside (malformed Ids, no date, not a contact's,
    relations to contacts the copy does not hold), with up to ten Ids each in `skipped_samples`; `sources`: where
    each object was read from (None: the org has none)."""

    contacts: int
    activities: int
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_samples: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)
    absent_fields: list[str] = field(default_factory=list)  # optional trust fields ([fields] keys) the copy lacks


def register(
    spark: SparkSession,
    section: WarehouseSection,
    fields: FieldsSection,
    needs: RuleNeeds,
    activities: ActivitiesSection,
    resolve: Callable[[Path], Path],
) -> WarehouseFigures:
    """Expose the warehouse copy as the Spark temp views `crm_contact` and `crm_activity` (and the objects' own
    views, and `local_skipped`: object, id, reason of every row set aside)."""
    located = section.objects()
    absent_fields = list(fields.OPTIONAL)  # until the Contact copy says otherwise
    for obj in OBJECTS:
        wanted = read.columns(obj, fields, needs.gone_fields if obj == "Contact" else ())
        where = located.get(obj)
        if where is None:
            read.empty(spark, wanted).createOrReplaceTempView(obj)
            continue
        frame = read.load(spark, section, obj, where, resolve)
        frame.createOrReplaceTempView(read.raw_name(obj))
        lacking = read.absent(section, obj, frame, wanted)
        if obj == "Contact":
            stored = {name.lower() for name, _ in frame.dtypes}
            absent_fields = [
                k
                for k in fields.OPTIONAL
                if getattr(fields, k) and read.stored_name(section, obj, getattr(fields, k)).lower() not in stored
            ]
        if lacking:
            _log.info("warehouse.columns_absent", object=obj, source=where, columns=lacking, effect="read as NULL")
        run_statement(
            spark, read.view(section, obj, where, frame, wanted, read.required(obj, fields, needs, activities))
        )
        findings = [
            ("warehouse.values_unreadable", {"field": api}, *run_statement(spark, statement).collect()[0], UNREADABLE)
            for api, statement in read.unreadable(section, obj, frame, wanted)
        ]
        extra = int(run_statement(spark, read.live_rows(obj, frame)).collect()[0][0]) - spark.table(obj).count()
        if extra:
            (sample,) = run_statement(spark, read.duplicates(section, obj, frame)).collect()[0]
            findings.append(("warehouse.duplicate_ids", {}, extra, sample, "the newest copy of each record is read"))
        for event, what, count, ids, effect in findings:
            if count:
                _log.warning(
                    event, object=obj, source=where, **what, count=int(count), ids=[str(i) for i in ids], effect=effect
                )
        spark.catalog.dropTempView(read.raw_name(obj))
    run_statement(spark, sql.create_temp("crm_contact", quarantine.contacts(fields)))
    unknown = _facts(spark)
    run_statement(spark, sql.create_temp(quarantine.SKIPPED_TABLE, quarantine.skipped(activities)))
    skipped: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    for obj, count, sample in run_statement(spark, quarantine.skipped_counts()).collect():
        skipped[str(obj)], samples[str(obj)] = int(count), [str(i) for i in sample]
    for obj, (count, sample) in unknown.items():
        skipped[obj], samples[obj] = count, sample
    good = quarantine.good_activity()
    parts = [
        sql.q("SELECT * FROM ($rows) WHERE $good", rows=act.rows(obj, activities), good=good)
        for obj in vocabulary.ACTIVITY_OBJECTS
    ]
    run_statement(spark, sql.create_temp("crm_activity", exp.union(*parts, distinct=False)))
    figures = WarehouseFigures(
        contacts=spark.table("crm_contact").count(),
        activities=spark.table("crm_activity").count(),
        skipped=skipped,
        skipped_samples=samples,
        sources={obj: located.get(obj) for obj in OBJECTS},
        absent_fields=absent_fields,
    )
    _log.info(
        "warehouse.registered",
        naming=section.naming,
        format=section.format,
        contacts=figures.contacts,
        activities=figures.activities,
        skipped=figures.skipped,
        absent=[obj for obj, where in figures.sources.items() if where is None],
    )
    for obj, count in skipped.items():
        _log.warning("warehouse.rows_skipped", object=obj, count=count, ids=samples[obj])
    return figures


def skipped_rows(spark: SparkSession) -> list[tuple[str, str, str]]:
    """Every row the last `register` set aside: (object, Id, reason), for a run's failures file."""
    frame = spark.table(quarantine.SKIPPED_TABLE).orderBy("object", "reason", "id")
    return [(str(o), str(i), str(r)) for o, i, r in frame.collect()]


def _facts(spark: SparkSession) -> dict[str, tuple[int, list[str]]]:
    """activities.build_facts on Spark: the same steps, each dropped once its last reader has run."""
    for name, tree in act.fact_steps():
        run_statement(spark, sql.create_temp(name, tree))
        for table, last_reader in act.DONE_WITH.items():
            if last_reader == name:
                spark.catalog.dropTempView(table)
    unknown = {
        act.RELATION_OBJECTS[str(obj)]: (int(count), [str(i) for i in sample])
        for obj, count, sample in run_statement(spark, act.unknown_statement()).collect()
    }
    for table in act.KEPT_UNTIL_COUNTED:
        spark.catalog.dropTempView(table)
    return unknown


def run_statement(spark: SparkSession, tree: exp.Expr) -> DataFrame:
    """Run a statement; one that makes a relation is materialised and registered under its name."""
    st = dialect.statement(tree)
    if st.params:
        raise ValueError(f"the warehouse statements take no parameters, not {', '.join(sorted(st.params))}")
    frame = spark.sql(st.text)
    if st.target is not None:
        frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(st.target)
    return frame
