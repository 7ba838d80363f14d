"""The steps of a sync that every engine shares: the run's figures, the rows the backend set aside, the write-back
and audit, and their record keeping (pending writes, failures file, stage moves, follow-ups).

They read the plan `tl_plan` on the backend's DuckDB connection, whichever engine made it: DuckDB makes it there,
Spark streams it there (connector.commands.sync_spark). What only the placing engine can answer (the follow-up
tasks) comes through `Placed`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from connector import failpoints, log, sql, state
from connector import failures as failures_mod
from connector.commands import follow_up
from connector.commands import moves as stage_moves
from connector.commands import placement_figures as figures
from connector.config import Config, FieldsSection
from connector.crm import CrmBackend, FollowUpResult, RecordFailure
from connector.engine import plan
from connector.engine.relations import PLAN
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.sync")

LOGGED_FAILURES = 20  # `sync.record_failed` lines per run; the rest are summarised, all are in the failures file


@dataclass
class SyncResult:
    rules_version: str
    as_of: dt.date
    contacts: int = 0
    activities: int = 0  # of a kind, dated on or before as_of, once per contact read (see contacts_read)
    contacts_read: int | None = None  # whose activities this run read; the others stand as an earlier run left them
    per_rung: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    in_grace: int = 0
    decaying: int = 0  # below the grace period: a rung above the one met, dropping one each decay period
    planned_records: int = 0
    changed: int = 0
    failed: int = 0
    failures: list[RecordFailure] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    planned_fields: dict[str, int] = field(default_factory=dict)
    sample: list[plan.FieldChange] = field(default_factory=list)
    dry_run: bool = False
    audit: bool = False
    duration_s: float = 0.0
    failures_file: str | None = None  # every failed and skipped record of the run, when there was any
    wrote_contacts: bool = False  # the Contact write finished (a later stop is in the follow-ups)
    engine: str = "duckdb"
    out_table: str | None = None  # the plan went to this table for a reverse-ETL tool, not to the CRM


@dataclass(frozen=True)
class Placed:
    """What the write step asks the engine that placed the contacts: the follow-up tasks made to match the open
    flags (after the Contact write)."""

    follow_ups: Callable[[CrmBackend], FollowUpResult]
    written: Callable[[list[RecordFailure]], None] = lambda _: None  # after the pending writes are recorded


def on_duckdb(rules: RuleSet, cfg: Config, as_of: dt.date) -> Placed:
    """The placement is on the backend's own connection (the embedded engine)."""
    return Placed(
        follow_ups=lambda c: follow_up.sync(c, rules, cfg.follow_up, as_of),
    )


def note_skipped(crm: CrmBackend, result: SyncResult, failed_file: failures_mod.FailuresFile) -> None:
    """Rows the backend set aside (malformed, or not a contact's)."""
    rows = getattr(crm, "skipped_rows", None)
    record_skipped(
        dict(getattr(crm, "skipped", {})),
        getattr(crm, "skipped_samples", {}),
        rows() if rows is not None else [],
        result,
        failed_file,
    )


def record_skipped(
    skipped: dict[str, int],
    samples: dict[str, list[str]],
    rows: list[tuple[str, str, str]],
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
) -> None:
    """Rows set aside, by a backend or a warehouse source: counted, a sample named in the log, every one in the
    failures file."""
    result.skipped = dict(skipped)
    if rows:
        failed_file.add_skipped(rows)
    for table, sample in samples.items():
        _log.warning(
            "sync.rows_skipped",
            object=table,
            count=result.skipped[table],
            ids=sample,
            reason="malformed, or not a contact's (no WhoId, a Lead, unknown)",
            failures_file=failed_file.shown,
        )


def fields_in_use(cfg: Config, usable: FieldsSection) -> Config:
    """The config as this run uses it: an optional field the CRM (or the warehouse copy) lacks is switched off,
    said once, and everything else is written."""
    absent = [k for k in cfg.fields.OPTIONAL if getattr(cfg.fields, k) and not getattr(usable, k)]
    if not absent:
        return cfg
    _log.warning(
        "sync.optional_fields_absent",
        fields=[getattr(cfg.fields, k) for k in absent],
        effect="not written; the other fields are",
        fix='deploy salesforce/force-app or run `trust-ladder fields deploy`, or set them to "" in [fields]',
    )
    return cfg.model_copy(update={"fields": usable})


def log_failures(failures: list[RecordFailure], failed_file: failures_mod.FailuresFile) -> None:
    for failure in failures[:LOGGED_FAILURES]:
        _log.warning("sync.record_failed", record_id=failure.record_id, code=failure.code, message=failure.message)
    if len(failures) > LOGGED_FAILURES:
        _log.warning(
            "sync.record_failures_summarised",
            logged=LOGGED_FAILURES,
            not_logged=len(failures) - LOGGED_FAILURES,
            total=len(failures),
            failures_file=failed_file.shown,
        )


def audit(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    store: state.Store,
    result: SyncResult,
) -> None:
    """Audit mode: what would be written (the plan on `con`) is kept in the state store. Grace periods run from
    each contact's history, so they are the same in audit mode as when enforcing."""
    audited = store.record_audit(log.current_run_id(), figures.audit_rows(con, cfg))
    result.audit = True
    _log.info(
        "sync.audited",
        records=result.planned_records,
        field_changes=audited,
        note="audit mode: nothing written; see `trust-ladder status`",
    )


def write(
    crm: CrmBackend,
    cfg: Config,
    rules: RuleSet,
    store: state.Store,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
    placed: Placed,
) -> None:
    t = time.perf_counter()
    applied = crm.apply(PLAN.name, cfg.fields, rules.version)
    result.changed, result.failures = applied.changed, list(applied.failures)
    result.failed = len(applied.failures)
    result.wrote_contacts = True
    failed_file.add_failures(applied.failures)
    log_failures(applied.failures, failed_file)
    _log.info(
        "sync.written",
        changed=result.changed,
        failed=result.failed,
        seconds=round(time.perf_counter() - t, 2),
        failures_file=failed_file.shown,
    )
    failpoints.hit("after_write")
    written = sql.run(crm.con, sql.q("SELECT cid FROM $t", t=sql.table(PLAN.name))).fetchnumpy()
    store.record_writes(applied.failures, written)
    placed.written(applied.failures)
    stage_moves.record(crm.con, store, result.as_of, applied.failures)  # who moved, for the report and digest
    if cfg.follow_up.enabled:  # optional follow-up Tasks, one per open flag (connector/follow_up.py)
        ups = placed.follow_ups(crm)
        result.failed += len(ups.failures)
        result.failures.extend(ups.failures)
        failed_file.add_failures(ups.failures)
        log_failures(ups.failures, failed_file)
        _log.info(
            "sync.follow_ups",
            created=ups.created,
            updated=ups.updated,
            closed=ups.closed,
            released=ups.released,
            failed=len(ups.failures),
        )


def finished(result: SyncResult) -> None:
    _log.info(
        "sync.finished",
        contacts=result.contacts,
        activities=result.activities,
        changed=result.changed,
        planned=result.planned_records,
        failed=result.failed,
        skipped=sum(result.skipped.values()),
        dry_run=result.dry_run,
        rules_version=result.rules_version,
        duration_s=round(result.duration_s, 2),
        api_calls=result.api_calls,
        failures_file=result.failures_file,
    )
