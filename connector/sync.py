"""One sync: rules > CRM check > classify > features > evaluate > plan > write > state. Data flows one way.

The rule file is loaded and checked against the CRM's picklists before anything is computed, so a bad rule
file never reaches the CRM. The demotion watch is saved only after the write, and never on a dry run.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from connector import classify, evaluate, failpoints, features, follow_up, log, plan, progress, state
from connector.config import Config, FieldsSection
from connector.crm import CrmBackend, RecordFailure
from connector.crm.factory import open_backend
from connector.errors import Finding, LockHeld, RuleError, TrustLadderError
from connector.exit_codes import ExitCode
from connector.ruleset import compiler
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.sync")


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


def rules_path(cfg: Config) -> Path:
    """The configured rule file; when it is the default and absent here, the copy shipped with the package."""
    path = cfg.resolve(cfg.rules.path)
    if not path.exists() and cfg.rules.path == compiler_default():
        # A wheel carries the default rules inside the package; a source checkout has them beside it.
        here = Path(__file__).resolve().parent
        for shipped in (here / "_default_rules" / "ladder.yaml", here.parent / "rules" / "ladder.yaml"):
            if shipped.exists():
                return shipped
    return path


def compiler_default() -> Path:
    return Path("rules/ladder.yaml")


def load_rules(cfg: Config, override: Path | None = None) -> RuleSet:
    return compiler.load(override or rules_path(cfg))


def check_picklists(rules: RuleSet, picklists: dict[str, list[str]], fields: FieldsSection) -> None:
    """Reality check: every rung and flag must be a value the CRM's picklists accept."""
    findings: list[Finding] = []
    stages = picklists.get(fields.stage)
    if stages is not None:
        for rung in rules.rungs:
            if rung.name not in stages:
                findings.append(rules.source.finding(
                    ("rungs", rung.index, "name"),
                    f"rung '{rung.name}' is not a value of the CRM picklist {fields.stage} "
                    f"({', '.join(stages)}); add it there or rename the rung"))
    labels = picklists.get(fields.flags)
    if labels is not None:
        for i, flag in enumerate(rules.flags):
            if flag.label not in labels:
                findings.append(rules.source.finding(
                    ("flags", i, "label"),
                    f"flag label '{flag.label}' is not a value of the CRM picklist {fields.flags} "
                    f"({', '.join(labels)})"))
    if findings:
        raise RuleError(findings)


def compute(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, state_path: Path | None,
            *, contact_id: str | None = None) -> int:
    """The three passes over whatever `crm_contact`/`crm_activity` the backend exposes; returns activities kept."""
    state.load_watch(con, state_path)
    kept = classify.classify(con, rules, as_of, contact_id=contact_id)
    features.build(con, rules, as_of, contact_id=contact_id)
    evaluate.evaluate(con, rules, as_of)
    return kept


def run(cfg: Config, *, as_of: dt.date | None = None, dry_run: bool = False, rules_file: Path | None = None,
        sample_size: int = 20) -> SyncResult:
    """One run under the lock, recorded in the run history whatever its outcome."""
    as_of = as_of or dt.date.today()
    rules = load_rules(cfg, rules_file)  # a bad rule file fails before anything else is touched
    state_path = cfg.resolve(cfg.state.path)
    run_id = log.bind_run()  # every run its own id, even several in one process
    with state.RunLock(state.lock_path(state_path)) as lock:
        try:
            lock.acquire(run_id)
        except LockHeld as exc:
            _log.warning("sync.locked", holder=str(exc))
            raise
        store = state.Store(state_path)
        died = store.start_run(run_id, as_of=as_of, dry_run=dry_run)
        if died:
            _log.warning("sync.previous_run_died", runs=died)
        try:
            result = _run(cfg, rules, as_of, state_path, store, dry_run=dry_run, sample_size=sample_size)
        except TrustLadderError as exc:
            store.finish_run(run_id, outcome=type(exc).__name__, exit_code=int(exc.exit_code), error=str(exc))
            raise
        except BaseException as exc:
            store.finish_run(run_id, outcome="crashed", exit_code=int(ExitCode.INTERNAL), error=repr(exc))
            raise
        outcome, code = ("partial", ExitCode.PARTIAL) if result.failed else ("ok", ExitCode.OK)
        label = "dry_run" if dry_run else "audit" if result.audit else outcome
        store.finish_run(run_id, outcome=label, exit_code=int(code), figures={
            "rules_version": result.rules_version, "contacts": result.contacts, "activities": result.activities,
            "changed": result.changed, "failed": result.failed, "skipped": sum(result.skipped.values()),
            "api_calls": result.api_calls, "per_rung": result.per_rung,
        })
    return result


def _run(cfg: Config, rules: RuleSet, as_of: dt.date, state_path: Path, store: state.Store, *, dry_run: bool,
         sample_size: int) -> SyncResult:
    started = time.perf_counter()
    _log.info("sync.started", rules_version=rules.version, as_of=as_of.isoformat(), dry_run=dry_run,
              backend=cfg.crm.backend)
    result = SyncResult(rules_version=rules.version, as_of=as_of, dry_run=dry_run)
    crm = open_backend(cfg)
    try:
        with progress.Steps(4, "sync") as steps:
            with steps.step("pulling"):
                check_picklists(rules, crm.picklist_values(), cfg.fields)
                crm.tune(cfg.engine, cfg.resolve)
                crm.prepare(cfg.fields, rules)
                failpoints.hit("after_pull")
                _note_skipped(crm, result)
            with steps.step("placing contacts on the ladder"):
                _evaluate(crm, rules, as_of, state_path, result)
            with steps.step("planning changes"):
                _plan(crm, cfg, result, sample_size)
                failpoints.hit("after_compute")
            with steps.step("writing"):
                if cfg.rules.mode == "audit" and not dry_run:
                    _audit(crm, cfg, store, state_path, result)
                elif not dry_run:
                    _write(crm, cfg, rules, state_path, store, result)
        result.api_calls = crm.api_calls
    finally:
        crm.close()
    result.duration_s = time.perf_counter() - started
    _log.info("sync.finished", contacts=result.contacts, activities=result.activities,
              changed=result.changed, planned=result.planned_records, failed=result.failed,
              skipped=sum(result.skipped.values()), dry_run=dry_run, rules_version=rules.version,
              duration_s=round(result.duration_s, 2), api_calls=result.api_calls)
    return result


def _note_skipped(crm: CrmBackend, result: SyncResult) -> None:
    result.skipped = dict(getattr(crm, "skipped", {}))
    for table, sample in getattr(crm, "skipped_samples", {}).items():
        _log.warning("sync.rows_skipped", object=table, count=result.skipped[table], ids=sample,
                     reason="malformed Id, WhoId or date")


def _evaluate(crm: CrmBackend, rules: RuleSet, as_of: dt.date, state_path: Path, result: SyncResult) -> None:
    t = time.perf_counter()
    result.activities = compute(crm.con, rules, as_of, state_path)
    result.contacts, result.in_grace = _counts(crm.con)
    _log.info("sync.evaluated", contacts=result.contacts, activities=result.activities,
              seconds=round(time.perf_counter() - t, 2))
    result.per_rung = _per_rung(crm.con, rules)
    result.flags = _per_flag(crm.con, rules)


def _plan(crm: CrmBackend, cfg: Config, result: SyncResult, sample_size: int) -> None:
    result.planned_records = plan.build(crm.con)
    result.planned_fields = plan.field_counts(crm.con)
    result.sample = plan.sample(crm.con, cfg.fields, sample_size)
    _log.info("sync.planned", changes=result.planned_records,
              **{f"fields_{k}": v for k, v in result.planned_fields.items()})


def _audit(crm: CrmBackend, cfg: Config, store: state.Store, state_path: Path, result: SyncResult) -> None:
    audited = store.record_audit(log.current_run_id(), crm.con, plan.PLAN_TABLE, {
        k: (getattr(cfg.fields, k), new, cur) for k, (new, cur) in plan.FIELDS.items()})
    result.audit = True
    # The watch compares what the CRM shows with what a contact qualifies for: true whether or not we write,
    # so grace periods run in audit mode exactly as they would when enforcing, and carry over to enforce.
    state.save_watch(crm.con, state_path)
    _log.info("sync.audited", records=result.planned_records, field_changes=audited,
              note="audit mode: nothing written; see `trust-ladder status`")


def _write(crm: CrmBackend, cfg: Config, rules: RuleSet, state_path: Path, store: state.Store,
           result: SyncResult) -> None:
    t = time.perf_counter()
    applied = crm.apply(plan.PLAN_TABLE, cfg.fields, rules.version)
    result.changed, result.failures = applied.changed, applied.failures
    result.failed = len(applied.failures)
    for failure in applied.failures[:50]:
        _log.warning("sync.record_failed", record_id=failure.record_id, code=failure.code, message=failure.message)
    _log.info("sync.written", changed=result.changed, failed=result.failed, seconds=round(time.perf_counter() - t, 2))
    failpoints.hit("after_write")
    store.record_writes(applied.failures, plan.PLAN_TABLE, crm.con)
    if cfg.follow_up.enabled:  # optional follow-up Tasks, one per open flag (connector/follow_up.py)
        ups = follow_up.sync(crm, rules, cfg.follow_up, result.as_of)
        result.failed += len(ups.failures)
        result.failures.extend(ups.failures)
        _log.info("sync.follow_ups", created=ups.created, updated=ups.updated, closed=ups.closed,
                  released=ups.released, failed=len(ups.failures))
    watched = state.save_watch(crm.con, state_path)
    _log.info("sync.state_saved", watched=watched)


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    row = con.execute(f"SELECT count(*), count(*) FILTER (WHERE in_grace) FROM {evaluate.PLACE_TABLE}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _per_rung(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, int]:
    got = dict(con.execute(f"SELECT new_stage, count(*) FROM {evaluate.PLACE_TABLE} GROUP BY 1").fetchall())
    return {r.name: int(got.get(r.name, 0)) for r in rules.rungs}


def _per_flag(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, int]:
    if not rules.flags:
        return {}
    cols = ", ".join(f"count(*) FILTER (WHERE {evaluate.flag_column(f.id)})" for f in rules.flags)
    row = con.execute(f"SELECT {cols} FROM {evaluate.PLACE_TABLE}").fetchone()
    assert row is not None
    return {f.label: int(v) for f, v in zip(rules.flags, row, strict=True)}
