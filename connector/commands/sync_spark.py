"""One sync on Apache Spark (`[engine] kind = "spark"`): the run connector.commands.sync makes, with the engine's
passes on a SparkSession and only the changed rows leaving the executors.

Reading (connector.commands.spark_source): from the warehouse copy when `[warehouse]` is configured, with no API pull
at all, its current values corrected by the state store for what was written since the copy was taken; otherwise
from the configured backend after its usual `prepare`. Then SparkEngine.compute with the demotion watch, and the
figures, the sample and the plan `tl_plan`, all on Spark. Writing, one of:
- to the CRM: `tl_plan` is streamed partition by partition onto the backend's connection, and the backend's own
  `apply` writes it (sObject Collections or Bulk API 2.0 ingest on Salesforce, one UPDATE on the local CRM); the
  record keeping is the embedded engine's (connector.commands.sync_steps);
- with `sync --out-table NAME`, to a Spark table (a Parquet folder when NAME is a path): the Id and the six fields
  under their API names, with the run's id and time, for a reverse-ETL tool to send. Each run appends: a plan the
  tool has not sent yet is never replaced. The CRM is not called; the plan still enters the run's
  record (pending writes, stage moves, what was written) as if written.
Follow-up tasks: the desired tasks are built on Spark and streamed to the backend the same way. From a warehouse copy
they are refused before the run (`check`): its Tasks lag the CRM, and a task created since would be created again.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from connector import failpoints, files, log, progress, sql, state, written_values
from connector import failures as failures_mod
from connector.commands import follow_up, spark_source
from connector.commands import moves as stage_moves
from connector.commands import placement_figures as figures
from connector.commands import sync_steps as steps
from connector.commands.rulefile import check_crm_picklists
from connector.commands.sync_steps import SyncResult
from connector.config import Config, FieldsSection
from connector.crm import CrmBackend, FollowUpResult, RecordFailure
from connector.crm import warehouse as warehouse_source
from connector.crm.factory import open_backend
from connector.crm.warehouse import read as warehouse_read
from connector.engine import plan, spark_io
from connector.engine import spark as spark_engine
from connector.engine.relations import CLASSIFIED, PLAN, PLAN_FIELDS
from connector.errors import ConfigError
from connector.ruleset.compiler import RuleSet

if TYPE_CHECKING:
    from connector.engine.spark import SparkEngine

_log = log.get("trust_ladder.sync")

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_COUNT = "SELECT count(*) FROM $t"
_ACCOUNTS = 'SELECT p.cid AS "Id", c."AccountId" FROM $plan p LEFT JOIN crm_contact c ON c."Id" = p.cid'


def out_target(name: str) -> tuple[str, str]:
    """`--out-table NAME` as ("table", catalog name) or ("parquet", folder): a path when it has a slash or ends
    in .parquet, else a table name of up to three dotted parts."""
    if "/" in name or "\\" in name or name.endswith(".parquet"):
        return "parquet", name
    if not _TABLE_NAME.fullmatch(name):
        raise ConfigError(
            f"--out-table {name!r}: not a table name (letters, digits and _, up to catalog.schema.table) nor a "
            "path (give ./name.parquet for a Parquet folder here)"
        )
    return "table", name


def writable_folder(name: str) -> None:
    """A local Parquet destination this process can write: made (if need be) and probed before Spark starts, not
    found out after the whole computation. A URL (s3a://, abfss://) is Spark's to reach."""
    if "://" in name:
        return
    problem = files.unwritable_folder(Path(name).expanduser().absolute())
    if problem is not None:
        raise ConfigError(f"--out-table {name!r}: {problem}; give another path")


def check(cfg: Config, *, out_table: str | None) -> None:
    """What a Spark sync refuses before it starts (exit 3), with the reason."""
    if out_table is not None and out_target(out_table)[0] == "parquet":
        writable_folder(out_table)
    if cfg.follow_up.enabled and out_table is not None:
        raise ConfigError(
            "[follow_up] enabled: follow-up tasks are written to the CRM, and sync --out-table writes only the "
            "Contact fields; turn follow-ups off in this config, or sync to the CRM"
        )
    if cfg.follow_up.enabled and cfg.warehouse is not None:
        raise ConfigError(
            "[follow_up] enabled cannot be used with [warehouse]: follow-up tasks are matched against the CRM's own "
            "Tasks, and a warehouse copy's lag them (a task created since the copy would be created again); turn "
            "follow-ups off, or sync from the CRM ([warehouse] removed)"
        )


def run(
    cfg: Config,
    rules: RuleSet,
    state_path: Path,
    store: state.Store,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
    *,
    sample_size: int,
) -> None:
    started = time.perf_counter()
    warehouse = cfg.warehouse
    _log.info(
        "sync.started",
        rules_version=rules.version,
        as_of=result.as_of.isoformat(),
        dry_run=result.dry_run,
        backend=cfg.crm.backend,
        source="warehouse" if warehouse is not None else cfg.crm.backend,
        out_table=result.out_table,
    )
    if warehouse is not None:
        warehouse_read.check_paths(warehouse, cfg.resolve)
    # The backend first: a CRM another process holds is found before Spark starts, not minutes later.
    crm = None if warehouse is not None and result.out_table else open_backend(cfg)
    try:
        spark = spark_engine.session(cfg.engine)
    except BaseException:
        if crm is not None:
            crm.close()
        raise
    state_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            tempfile.TemporaryDirectory(dir=state_path.parent, prefix="spark-exchange-") as tmp,
            progress.Steps(4, "sync") as progress_steps,
        ):
            folder = Path(tmp)
            engine = spark_engine.SparkEngine(spark, rules)
            with progress_steps.step("reading" if warehouse is not None else "pulling"):
                if warehouse is not None:
                    used = _from_warehouse(engine, cfg, rules, crm, state_path, folder, result, failed_file)
                else:
                    assert crm is not None
                    used = _from_backend(engine, cfg, rules, crm, folder, result, failed_file)
                cfg = steps.fields_in_use(cfg, used)
                failpoints.hit("after_pull")
            with progress_steps.step("placing contacts on the ladder"):
                _evaluate(engine, result, cfg.fields)
            with progress_steps.step("planning changes"):
                _plan(engine, cfg, result, sample_size)
                failpoints.hit("after_compute")
            with progress_steps.step("writing"):
                if not result.dry_run:
                    _write(
                        engine, cfg, rules, crm, state_path, store, result, failed_file, warehouse=warehouse is not None
                    )
    finally:
        if crm is not None:
            result.api_calls = crm.api_calls  # spent, however the run ends
            crm.close()
        result.failures_file = failed_file.shown
        spark_source.drop_views(spark)
    result.duration_s = time.perf_counter() - started
    steps.finished(result)


def _from_backend(
    engine: SparkEngine,
    cfg: Config,
    rules: RuleSet,
    crm: CrmBackend,
    folder: Path,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
) -> FieldsSection:
    check_crm_picklists(rules, crm, cfg.fields)
    crm.tune(cfg.engine, cfg.resolve)
    crm.prepare(cfg.fields, rules.needs(), cfg.activities)
    steps.note_skipped(crm, result, failed_file)
    t = time.perf_counter()
    spark_source.from_backend(engine.spark, crm, folder)
    # The hand-over through Parquet is the Spark path's own cost: worth a line when tuning the session.
    _log.info("sync.spark_loaded", seconds=round(time.perf_counter() - t, 2))
    return crm.usable_fields(cfg.fields)


def _from_warehouse(
    engine: SparkEngine,
    cfg: Config,
    rules: RuleSet,
    crm: CrmBackend | None,
    state_path: Path,
    folder: Path,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
) -> FieldsSection:
    """The relations from the warehouse copy, corrected by what the last runs wrote; the CRM is only written to,
    so its picklists are checked and nothing is pulled. Returns the fields both the copy and the CRM have."""
    used = cfg.fields
    if crm is not None:
        check_crm_picklists(rules, crm, cfg.fields)
        crm.tune(cfg.engine, cfg.resolve)
        crm.prepare_write(cfg.fields)
        used = crm.usable_fields(cfg.fields)
    found = spark_source.from_warehouse(engine.spark, cfg, rules)
    used = used.without(found.absent_fields)
    steps.record_skipped(
        found.skipped, found.skipped_samples, warehouse_source.skipped_rows(engine.spark), result, failed_file
    )
    held = spark_source.written(engine, state_path, folder)
    pruned = spark_source.prune(engine, state_path) if held and not result.dry_run else 0
    if held:
        spark_source.correct(engine)
    _log.info("sync.written_values", held=held - pruned, pruned=pruned)
    return used


def _fetch(engine: SparkEngine) -> figures.Fetch:
    return lambda tree: [tuple(row) for row in engine.run(tree).collect()]


def _count(engine: SparkEngine, name: str) -> int:
    return int(_fetch(engine)(sql.q(_COUNT, t=sql.table(name)))[0][0])


def _evaluate(engine: SparkEngine, result: SyncResult, fields: FieldsSection) -> None:
    t = time.perf_counter()
    engine.compute(result.as_of, fields)
    result.activities = _count(engine, CLASSIFIED.name)
    fetch = _fetch(engine)
    result.contacts, result.in_grace, result.decaying = figures.counts(fetch)
    _log.info(
        "sync.evaluated",
        contacts=result.contacts,
        activities=result.activities,
        seconds=round(time.perf_counter() - t, 2),
    )
    result.per_rung = figures.per_rung(fetch, engine.rules)
    result.flags = figures.per_flag(fetch, engine.rules)


def _plan(engine: SparkEngine, cfg: Config, result: SyncResult, sample_size: int) -> None:
    result.planned_records = _count(engine, PLAN.name)
    result.planned_fields = plan.field_counts(_fetch(engine))
    result.sample = plan.sample(_fetch(engine), cfg.fields, sample_size)
    _log.info(
        "sync.planned", changes=result.planned_records, **{f"fields_{k}": v for k, v in result.planned_fields.items()}
    )


def _write(
    engine: SparkEngine,
    cfg: Config,
    rules: RuleSet,
    crm: CrmBackend | None,
    state_path: Path,
    store: state.Store,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
    *,
    warehouse: bool,
) -> None:
    con = crm.con if crm is not None else duckdb.connect()  # the out-table's plan is kept on a connection of its own

    def written(refused: list[RecordFailure]) -> None:
        if warehouse:  # the next runs from the copy need them, until a copy taken after this write lands
            ids = [f.record_id for f in refused]
            written_values.record(con, state_path, PLAN.name, ids, result.rules_version, written_values.now())

    placed = steps.Placed(
        follow_ups=lambda backend: _follow_ups(engine, backend, cfg, result),
        written=written,
    )
    try:
        streamed = spark_io.stream(engine.spark.table(PLAN.name), con, PLAN.name, PLAN.columns)
        _log.info("sync.plan_streamed", rows=streamed)
        if cfg.rules.mode == "audit":
            steps.audit(con, cfg, store, result)
        elif result.out_table is not None:
            _to_table(engine, cfg, rules, con, store, result, placed)
        else:
            assert crm is not None
            if warehouse:  # the Salesforce write orders rows by account, read from `crm_contact`
                _accounts(engine, con)
            steps.write(crm, cfg, rules, store, result, failed_file, placed)
    finally:
        if crm is None:
            con.close()


def _accounts(engine: SparkEngine, con: duckdb.DuckDBPyConnection) -> None:
    columns = [("Id", "VARCHAR"), ("AccountId", "VARCHAR")]
    if "AccountId" in engine.columns("crm_contact"):
        spark_io.stream(engine.run(sql.q(_ACCOUNTS, plan=sql.table(PLAN.name))), con, "crm_contact", columns)
    else:
        spark_io.create(con, "crm_contact", columns)


def _to_table(
    engine: SparkEngine,
    cfg: Config,
    rules: RuleSet,
    con: duckdb.DuckDBPyConnection,
    store: state.Store,
    result: SyncResult,
    placed: steps.Placed,
) -> None:
    """The plan as a table for a reverse-ETL tool: one row per changed contact, its Id and all six fields."""
    assert result.out_table is not None
    kind, name = out_target(result.out_table)
    t = time.perf_counter()
    frame = engine.run(_out_rows(cfg, rules, log.current_run_id(), dt.datetime.now(dt.UTC)))
    writer = frame.write.mode("append")  # a plan not sent yet is never replaced by the next run's
    if kind == "parquet":
        writer.parquet(name)
    else:
        writer.saveAsTable(name)
    result.changed = result.planned_records
    _log.info(
        "sync.written", changed=result.changed, failed=0, out_table=name, seconds=round(time.perf_counter() - t, 2)
    )
    failpoints.hit("after_write")
    store.record_writes([], sql.run(con, sql.q("SELECT cid FROM $t", t=sql.table(PLAN.name))).fetchnumpy())
    placed.written([])
    stage_moves.record(con, store, result.as_of, [])


def _out_rows(cfg: Config, rules: RuleSet, run_id: str, planned_at: dt.datetime) -> exp.Expr:
    """Id and the six fields under their API names (an empty text is a null, as the CRM stores it), then the run
    that planned them and when: each run appends, and the newest row of an Id is the one to send."""
    values = [sql.alias(sql.col("cid"), "Id")]
    for logical, name in cfg.fields.owned().items():  # the six, then the optional ones in use
        if logical == "rules_version":
            values.append(sql.alias(sql.lit(rules.version), name))
            continue
        new = PLAN_FIELDS[logical][0]
        dated = logical in ("stage_since", "held_until")
        values.append(sql.alias(sql.col(new) if dated else sql.q("NULLIF($v, '')", v=sql.col(new)), name))
    values.append(sql.alias(sql.lit(run_id), OUT_RUN_ID))
    stamp = planned_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    values.append(sql.alias(exp.cast(sql.lit(stamp), exp.DataType.Type.TIMESTAMP), OUT_PLANNED_AT))
    return sql.select(*values, from_=PLAN.name)


OUT_RUN_ID, OUT_PLANNED_AT = "trust_ladder_run_id", "trust_ladder_planned_at"  # after the fields in --out-table


def _follow_ups(engine: SparkEngine, crm: CrmBackend, cfg: Config, result: SyncResult) -> FollowUpResult:
    """The desired follow-up tasks made on Spark, streamed to the backend, which makes its tasks match them."""
    engine.run(follow_up.desired_statement(engine.rules, cfg.follow_up), {"as_of": result.as_of})
    frame = engine.spark.table(follow_up.DESIRED_TABLE)
    spark_io.stream(frame, crm.con, follow_up.DESIRED_TABLE, follow_up.DESIRED_COLUMNS)
    return crm.sync_follow_ups(follow_up.DESIRED_TABLE)
