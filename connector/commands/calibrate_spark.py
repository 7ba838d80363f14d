"""`calibrate` on Spark: the statements DuckDB runs (connector.commands.calibrate), rendered by the dialect.

The data comes as a Spark sync's does (connector.commands.sync_spark): from the configured backend (the local CRM,
the Salesforce mirror) through Parquet in an exchange folder, or from the warehouse copy, read in place. What only
calibration reads comes the same way: Opportunity and OpportunityContactRole (the backend's tables, or the copy's
`opportunity` / `opportunity_contact_role`, connector.crm.warehouse.outcomes), and Contact for a gone outcome's
fields.

The timeline runs once over every contact (`timeline.statements`, as a Spark sync runs it), not in DuckDB's
batches: Spark spills and spreads the work itself. The rung on each month's first day, the criteria met that day,
the outcome events and the counts are the same trees as on DuckDB, so both engines give the same table
(tests/spark/test_calibrate.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from connector import log, sql, vocabulary
from connector.commands import calibrate as cal_mod
from connector.commands import calibrate_months, rung_days, spark_source
from connector.commands.calibration import Calibration
from connector.config import Config
from connector.crm.factory import open_data
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse import outcomes as warehouse_outcomes
from connector.crm.warehouse import read as warehouse_read
from connector.engine import classify, features, spark_io, timeline
from connector.engine import spark as spark_engine
from connector.engine.timeline._base import TODO
from connector.ruleset.compiler import RuleSet
from connector.vocabulary import OUTCOME_OBJECTS

if TYPE_CHECKING:
    from connector.engine.spark import SparkEngine

_log = log.get("trust_ladder.calibrate")


def run(cfg: Config, rules: RuleSet, as_of: dt.date, *, since: dt.date | None, horizon: int | None) -> Calibration:
    """`trust-ladder calibrate` with `[engine] kind = "spark"`: from the warehouse copy when `[warehouse]` is set,
    else from the configured CRM's data."""
    if cfg.warehouse is not None:
        warehouse_read.check_paths(cfg.warehouse, cfg.resolve)
    spark = spark_engine.session(cfg.engine)
    engine = spark_engine.SparkEngine(spark, rules)
    try:
        with _sources(cfg, engine) as holds:
            return calibrate(engine, rules, as_of, since=since, horizon=horizon, holds=holds)
    finally:
        spark_source.drop_views(spark)


@contextmanager
def _sources(cfg: Config, engine: SparkEngine) -> Iterator[cal_mod.Holdings]:
    """`crm_contact`, `crm_activity`, Contact and (when there) Opportunity and OpportunityContactRole as Spark
    views, kept readable while the caller computes; yields what they hold."""
    spark = engine.spark
    if cfg.warehouse is not None:
        section = cfg.warehouse
        spark_source.from_warehouse(spark, cfg, engine.rules)
        have = warehouse_outcomes.register(spark, section, cfg.resolve)
        # The Contact view has every field, NULL where the copy has none: the gone fields it really has.
        copy = warehouse_read.load(spark, section, "Contact", section.contact, cfg.resolve)
        names = [*vocabulary.column_names("Contact"), *engine.rules.needs().gone_fields]
        yield cal_mod.Holdings(have, warehouse_read.stored_fields(section, "Contact", copy, names))
        return
    state_dir = cfg.resolve(cfg.state.path).parent
    state_dir.mkdir(parents=True, exist_ok=True)
    crm = open_data(cfg)  # the local CRM or the Salesforce mirror, read in place; nothing is written to it
    try:
        crm.tune(cfg.engine, cfg.resolve)
        crm.prepare(cfg.fields, activities=cfg.activities)
        with tempfile.TemporaryDirectory(dir=state_dir, prefix="spark-exchange-") as tmp:
            yield _from_backend(engine, crm, Path(tmp))
    finally:
        crm.close()


def _from_backend(engine: SparkEngine, crm: LocalCrm, folder: Path) -> cal_mod.Holdings:
    """The backend's relations and tables as Spark views, through Parquet files in `folder`."""
    spark = engine.spark
    spark_source.from_backend(spark, crm, folder)
    spark_io.to_spark(spark, crm.con, "Contact", folder)
    present = {str(r[0]) for r in crm.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    have = all(obj in present for obj in OUTCOME_OBJECTS)
    if have:
        for obj in OUTCOME_OBJECTS:
            spark_io.to_spark(spark, crm.con, obj, folder)
    return cal_mod.Holdings.of(crm.con, have)


def calibrate(
    engine: SparkEngine,
    rules: RuleSet,
    as_of: dt.date,
    *,
    since: dt.date | None = None,
    horizon: int | None = None,
    holds: cal_mod.Holdings,
) -> Calibration:
    """Calibrate `rules` on the Spark views `crm_contact`, `crm_activity`, Contact (and Opportunity and
    OpportunityContactRole when `holds` says so)."""
    started = time.process_time()
    params = {"as_of": as_of}
    have = frozenset(engine.columns("crm_activity"))
    holds = dataclasses.replace(holds, logged="LoggedDate" in have)
    newest = engine.run(holds.last_day_query(), params).collect()[0][0]
    cal, p = cal_mod.plan(
        rules, as_of, since=since, horizon=horizon, holds=holds, last=calibrate_months.covered(as_of, newest)
    )
    if p is None:
        cal.seconds = time.process_time() - started
        return cal
    engine.run(classify.statement(rules, have=have), params)
    for stmt in [*features.statements(rules), *timeline.statements(rules, answered=features.answered_tables(rules))]:
        engine.run(stmt, params)
    days = exp.values(
        [(exp.convert(k), sql.lit(day)) for k, day in enumerate(cal.days)], alias="d", columns=["k", "day"]
    )
    engine.run(sql.create_temp(rung_days.DAYS, exp.select(exp.Star()).from_(days)))
    engine.run(sql.create_temp(TODO, sql.q('SELECT "Id" AS cid, hash("Id") AS h FROM crm_contact')))  # one batch
    engine.run(timeline.on_days(rung_days.DAYS))
    engine.run(sql.create_temp(rung_days.OUT, rung_days.rows_of(rules, with_criteria=True)))
    for tree in (
        cal_mod.outcomes_table(p),
        cal_mod.events_table(p),
        cal_mod.gone_table(),
        cal_mod.hits_table(p, rung_days.OUT),
    ):
        engine.run(tree, params)
    per_rung, people, per_crit = cal_mod.count_queries(p)
    counts = cal_mod.Counts()
    counts.add_events([tuple(r) for r in engine.run(cal_mod.events_query()).collect()])
    counts.add(
        [tuple(r) for r in engine.run(per_rung).collect()],
        [tuple(r) for r in engine.run(people).collect()],
        [tuple(r) for r in engine.run(per_crit).collect()] if per_crit is not None else [],
    )
    cal_mod.finish(cal, rules, p, counts)
    cal.seconds = time.process_time() - started
    _log.info(
        "calibrate.finished",
        engine="spark",
        outcomes=len(cal.outcomes),
        days=len(cal.days),
        cpu_s=round(cal.seconds, 2),
    )
    return cal
