"""One sync: rules > CRM check > classify > features > evaluate > plan > write > state. Data flows one way.

The rule file is loaded and checked against the CRM's picklists before anything is computed, so a bad rule
file never reaches the CRM. The demotion watch is saved only after the write, and never on a dry run.

Every run is recorded in the run history whatever its end: its figures, and when it stops early (budget, CRM
down, deadline: the exception's `partial`; Ctrl-C or SIGTERM: `interrupted`) what it had written, refused and
spent by then. Every refused record and every row set aside is named in the run's failures file
(connector/failures.py); the log names the first few and says where the rest are.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from connector import engine, failpoints, log, progress, state
from connector import failures as failures_mod
from connector.commands import follow_up
from connector.commands import moves as stage_moves
from connector.commands.placement_figures import audit_rows as _audit_rows
from connector.commands.placement_figures import counts as _counts
from connector.commands.placement_figures import per_flag as _per_flag
from connector.commands.placement_figures import per_rung as _per_rung
from connector.commands.rulefile import check_picklists, load_rules, rules_path
from connector.config import Config
from connector.crm import ApplyResult, CrmBackend, RecordFailure
from connector.crm.factory import open_backend
from connector.engine import plan, sql, watch
from connector.engine.relations import PLAN
from connector.errors import LockHeld, TrustLadderError, interrupt_code, stop_requested
from connector.exit_codes import ExitCode
from connector.ruleset.compiler import RuleSet

__all__ = ["SyncResult", "compute", "load_rules", "rules_path", "run"]

_log = log.get("trust_ladder.sync")

LOGGED_FAILURES = 20  # `sync.record_failed` lines per run; the rest are summarised, all are in the failures file


@dataclass
class SyncResult:
    rules_version: str
    as_of: dt.date
    contacts: int = 0
    activities: int = 0
    per_rung: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    in_grace: int = 0
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


def compute(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    state_path: Path | None,
    *,
    contact_id: str | None = None,
) -> int:
    """The engine's passes over whatever `crm_contact`/`crm_activity` the backend exposes, with the demotion watch
    the last run left; returns activities kept."""
    return engine.compute(con, rules, as_of, state.read_watch(state_path, as_of), contact_id=contact_id)


def run(
    cfg: Config,
    *,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    rules_file: Path | None = None,
    sample_size: int = 20,
    lock_held: bool = False,
) -> SyncResult:
    """One run under the lock, recorded in the run history whatever its outcome. `lock_held`: the caller (`demo`)
    holds the run lock already."""
    as_of = as_of or dt.date.today()
    rules = load_rules(cfg, rules_file)  # a bad rule file fails before anything else is touched
    state_path = cfg.resolve(cfg.state.path)
    run_id = log.bind_run()  # every run its own id, even several in one process
    with state.RunLock(state.lock_path(state_path)) as lock:
        if not lock_held:
            try:
                lock.acquire(run_id, what="sync")
            except LockHeld as exc:
                _log.warning("sync.locked", holder=str(exc))
                raise
        store = state.Store(state_path)
        result = SyncResult(rules_version=rules.version, as_of=as_of, dry_run=dry_run)
        failed_file = failures_mod.FailuresFile(failures_mod.path_for(state_path, run_id), run_id)
        try:
            # Inside the try: a stop signal that lands while the run is being recorded still records it stopped.
            died = store.start_run(run_id, as_of=as_of, dry_run=dry_run)
            if died:
                _log.warning("sync.previous_run_died", runs=died)
            _run(cfg, rules, as_of, state_path, store, result, failed_file, dry_run=dry_run, sample_size=sample_size)
        except TrustLadderError as exc:
            _stopped(store, result, failed_file, exc.partial)
            _log.warning(
                "sync.stopped",
                reason=type(exc).__name__,
                exit_code=int(exc.exit_code),
                changed=result.changed,
                failed=result.failed,
                api_calls=result.api_calls,
                failures_file=result.failures_file,
            )
            store.finish_run(
                run_id,
                outcome=type(exc).__name__,
                exit_code=int(exc.exit_code),
                error=str(exc),
                figures=_figures(result),
            )
            raise
        except KeyboardInterrupt as exc:
            _interrupted(store, run_id, result, failed_file, interrupt_code(exc))
            raise
        except BaseException as exc:
            stop = stop_requested()
            if stop is not None:  # the signal cut a query short, and the engine raised its own error for it
                _interrupted(store, run_id, result, failed_file, stop.exit_code)
                raise stop from exc
            store.finish_run(
                run_id, outcome="crashed", exit_code=int(ExitCode.INTERNAL), error=repr(exc), figures=_figures(result)
            )
            raise
        outcome, code = ("partial", ExitCode.PARTIAL) if result.failed else ("ok", ExitCode.OK)
        label = "dry_run" if dry_run else "audit" if result.audit else outcome
        store.finish_run(run_id, outcome=label, exit_code=int(code), figures=_figures(result))
    return result


def _interrupted(
    store: state.Store, run_id: str, result: SyncResult, failed_file: failures_mod.FailuresFile, code: ExitCode
) -> None:
    """Ctrl-C or SIGTERM: the run is recorded `interrupted` with what it had written, refused and spent."""
    _stopped(store, result, failed_file, None)
    _log.warning(
        "sync.interrupted",
        exit_code=int(code),
        changed=result.changed,
        failed=result.failed,
        api_calls=result.api_calls,
        failures_file=result.failures_file,
    )
    store.finish_run(
        run_id,
        outcome="interrupted",
        exit_code=int(code),
        figures=_figures(result),
        error=f"interrupted by {'SIGTERM' if code == ExitCode.TERMINATED else 'SIGINT'}",
    )


def _figures(result: SyncResult) -> dict[str, object]:
    return {
        "rules_version": result.rules_version,
        "contacts": result.contacts,
        "activities": result.activities,
        "changed": result.changed,
        "failed": result.failed,
        "skipped": sum(result.skipped.values()),
        "api_calls": result.api_calls,
        "per_rung": result.per_rung,
        "failures_file": result.failures_file,
    }


def _stopped(
    store: state.Store, result: SyncResult, failed_file: failures_mod.FailuresFile, partial: ApplyResult | None
) -> None:
    """A run that stops early keeps its account: what it wrote, what was refused (in the failures file and the
    pending writes, so `status` lists them), the calls it spent."""
    if partial is not None:
        if result.wrote_contacts:  # the stop came in the follow-ups: the Contact figures stand
            result.failures.extend(partial.failures)
        else:
            result.changed, result.failures = partial.changed, list(partial.failures)
        result.api_calls = max(result.api_calls, partial.api_calls)
        new = partial.failures
        if new:
            failed_file.add_failures(new)
            _log_failures(new, failed_file)
            store.record_writes(new, None)
    result.failed = len(result.failures)
    result.failures_file = failed_file.shown


def _run(
    cfg: Config,
    rules: RuleSet,
    as_of: dt.date,
    state_path: Path,
    store: state.Store,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
    *,
    dry_run: bool,
    sample_size: int,
) -> None:
    started = time.perf_counter()
    _log.info(
        "sync.started", rules_version=rules.version, as_of=as_of.isoformat(), dry_run=dry_run, backend=cfg.crm.backend
    )
    crm = open_backend(cfg)
    try:
        with progress.Steps(4, "sync") as steps:
            with steps.step("pulling"):
                check_picklists(rules, crm.picklist_values(), cfg.fields)
                crm.tune(cfg.engine, cfg.resolve)
                crm.prepare(cfg.fields, rules.needs(), cfg.activities)
                failpoints.hit("after_pull")
                _note_skipped(crm, result, failed_file)
            with steps.step("placing contacts on the ladder"):
                _evaluate(crm, rules, as_of, state_path, result)
            with steps.step("planning changes"):
                _plan(crm, cfg, result, sample_size)
                failpoints.hit("after_compute")
            with steps.step("writing"):
                if cfg.rules.mode == "audit" and not dry_run:
                    _audit(crm, cfg, store, state_path, result)
                elif not dry_run:
                    _write(crm, cfg, rules, state_path, store, result, failed_file)
    finally:
        result.api_calls = crm.api_calls  # spent, however the run ends
        result.failures_file = failed_file.shown
        crm.close()
    result.duration_s = time.perf_counter() - started
    _log.info(
        "sync.finished",
        contacts=result.contacts,
        activities=result.activities,
        changed=result.changed,
        planned=result.planned_records,
        failed=result.failed,
        skipped=sum(result.skipped.values()),
        dry_run=dry_run,
        rules_version=rules.version,
        duration_s=round(result.duration_s, 2),
        api_calls=result.api_calls,
        failures_file=result.failures_file,
    )


def _note_skipped(crm: CrmBackend, result: SyncResult, failed_file: failures_mod.FailuresFile) -> None:
    """Rows the backend set aside (malformed, or not a contact's): counted, a sample named in the log, every one
    in the failures file."""
    result.skipped = dict(getattr(crm, "skipped", {}))
    rows = getattr(crm, "skipped_rows", None)
    if rows is not None:
        failed_file.add_skipped(rows())
    for table, sample in getattr(crm, "skipped_samples", {}).items():
        _log.warning(
            "sync.rows_skipped",
            object=table,
            count=result.skipped[table],
            ids=sample,
            reason="malformed, or not a contact's (no WhoId, a Lead, unknown)",
            failures_file=failed_file.shown,
        )


def _log_failures(failures: list[RecordFailure], failed_file: failures_mod.FailuresFile) -> None:
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


def _evaluate(crm: CrmBackend, rules: RuleSet, as_of: dt.date, state_path: Path, result: SyncResult) -> None:
    t = time.perf_counter()
    result.activities = compute(crm.con, rules, as_of, state_path)
    result.contacts, result.in_grace = _counts(crm.con)
    _log.info(
        "sync.evaluated",
        contacts=result.contacts,
        activities=result.activities,
        seconds=round(time.perf_counter() - t, 2),
    )
    result.per_rung = _per_rung(crm.con, rules)
    result.flags = _per_flag(crm.con, rules)


def _plan(crm: CrmBackend, cfg: Config, result: SyncResult, sample_size: int) -> None:
    result.planned_records = plan.build(crm.con)
    result.planned_fields = plan.field_counts(crm.con)
    result.sample = plan.sample(crm.con, cfg.fields, sample_size)
    _log.info(
        "sync.planned", changes=result.planned_records, **{f"fields_{k}": v for k, v in result.planned_fields.items()}
    )


def _audit(crm: CrmBackend, cfg: Config, store: state.Store, state_path: Path, result: SyncResult) -> None:
    audited = store.record_audit(log.current_run_id(), _audit_rows(crm.con, cfg))
    result.audit = True
    # The watch compares what the CRM shows with what a contact qualifies for: true whether or not we write,
    # so grace periods run in audit mode exactly as they would when enforcing, and carry over to enforce.
    state.write_watch(state_path, watch.rows(crm.con))
    _log.info(
        "sync.audited",
        records=result.planned_records,
        field_changes=audited,
        note="audit mode: nothing written; see `trust-ladder status`",
    )


def _write(
    crm: CrmBackend,
    cfg: Config,
    rules: RuleSet,
    state_path: Path,
    store: state.Store,
    result: SyncResult,
    failed_file: failures_mod.FailuresFile,
) -> None:
    t = time.perf_counter()
    applied = crm.apply(PLAN.name, cfg.fields, rules.version)
    result.changed, result.failures = applied.changed, list(applied.failures)
    result.failed = len(applied.failures)
    result.wrote_contacts = True
    failed_file.add_failures(applied.failures)
    _log_failures(applied.failures, failed_file)
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
    stage_moves.record(crm.con, store, result.as_of, applied.failures)  # who moved, for the report and digest
    if cfg.follow_up.enabled:  # optional follow-up Tasks, one per open flag (connector/follow_up.py)
        ups = follow_up.sync(crm, rules, cfg.follow_up, result.as_of)
        result.failed += len(ups.failures)
        result.failures.extend(ups.failures)
        failed_file.add_failures(ups.failures)
        _log_failures(ups.failures, failed_file)
        _log.info(
            "sync.follow_ups",
            created=ups.created,
            updated=ups.updated,
            closed=ups.closed,
            released=ups.released,
            failed=len(ups.failures),
        )
    watched = state.write_watch(state_path, watch.rows(crm.con))
    _log.info("sync.state_saved", watched=watched)
