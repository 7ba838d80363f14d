"""One sync: rules > CRM check > classify > features > evaluate > plan > write > state. Data flows one way.

The rule file is loaded and checked against the CRM's picklists before anything is computed, so a bad rule
file never reaches the CRM. Nothing the next run needs is saved after the write: since dates and demotion holds are
read from each contact's history, so a run stopped anywhere converges on the next one.

Every run is recorded in the run history whatever its end: its figures, and when it stops early (budget, CRM
down, deadline: the exception's `partial`; Ctrl-C or SIGTERM: `interrupted`) what it had written, refused and
spent by then. Every refused record and every row set aside is named in the run's failures file
(connector/failures.py); the log names the first few and says where the rest are.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import structlog

from connector import engine, failpoints, log, progress, sql, state
from connector import failures as failures_mod
from connector.commands import placement_figures as figures
from connector.commands import sync_quiet as quiet
from connector.commands import sync_steps as steps_mod
from connector.commands.rulefile import check_crm_picklists, load_rules, rules_path
from connector.commands.sync_steps import LOGGED_FAILURES, SyncResult
from connector.config import Config
from connector.crm import ApplyResult, CrmBackend
from connector.crm.factory import open_backend
from connector.engine import plan, scope, timeline
from connector.engine.scope import ActivitiesOf
from connector.errors import (
    STOP_SETTLE_SECONDS,
    ConfigError,
    LockHeld,
    TrustLadderError,
    interrupt_code,
    stop_requested,
)
from connector.exit_codes import ExitCode
from connector.ruleset.compiler import RuleSet

__all__ = ["LOGGED_FAILURES", "SyncResult", "compute", "load_rules", "rules_path", "run"]

_log = log.get("trust_ladder.sync")


def compute(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None) -> int:
    """The engine's passes over whatever `crm_contact`/`crm_activity` the backend exposes, every contact computed
    (no state store); returns activities kept. A sync reuses what the store keeps: `computed`."""
    return engine.compute(con, rules, as_of, contact_id=contact_id)


def computed(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    *,
    contact_id: str | None = None,
    store: state.Store | None = None,
    cfg: Config | None = None,
    activities_of: ActivitiesOf | None = None,
) -> tuple[int, int | None]:
    """`compute`, and how many contacts it read again: with `store`, those whose history changed or whose next
    change day came (the others stand as an earlier run left them, their activities not read); None: all.
    `activities_of`: the backend's (CrmBackend.activities_of), to read only those contacts' activities."""
    if store is None:
        return compute(con, rules, as_of, contact_id=contact_id), None
    owned = frozenset(cfg.fields.model_dump().values()) if cfg else frozenset()
    written = frozenset(cfg.fields.owned()) if cfg else None
    everyone = bool(cfg and cfg.follow_up.enabled)
    cache = store.timeline_cache(rules.version) or {}
    kept = engine.compute(
        con,
        rules,
        as_of,
        contact_id=contact_id,
        cache=cache,
        owned=owned,
        written=written,
        everyone=everyone,
        activities_of=activities_of,
    )
    saved = store.save_timeline(rules.version, scope.fresh_rows(con, written))
    sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(timeline.FRESH)))
    _log.info("sync.timelines", computed=saved)
    return kept, saved


def run(
    cfg: Config,
    *,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    rules_file: Path | None = None,
    sample_size: int = 20,
    lock_held: bool = False,
    out_table: str | None = None,
) -> SyncResult:
    """One run under the lock, recorded in the run history whatever its outcome. `lock_held`: the caller (`demo`)
    holds the run lock already. `out_table`: Spark only, the plan goes to this table instead of the CRM."""
    as_of = as_of or dt.date.today()
    if out_table is not None and cfg.engine.kind != "spark":
        raise ConfigError('sync --out-table writes the plan as a Spark table: it needs [engine] kind = "spark"')
    if cfg.engine.kind == "spark":
        from connector.commands import sync_spark  # noqa: PLC0415 - pyspark is an optional extra

        sync_spark.check(cfg, out_table=out_table)  # refused before the run, like a bad rule file
    rules = load_rules(cfg, rules_file)  # a bad rule file fails before anything else is touched
    state_path = cfg.resolve(cfg.state.path)
    run_id = log.bind_run()  # every run its own id, even several in one process
    if cfg.engine.kind == "spark":  # every event of the run says so, the backend's too
        structlog.contextvars.bind_contextvars(engine="spark")
    else:
        structlog.contextvars.unbind_contextvars("engine")
    with state.RunLock(state.lock_path(state_path)) as lock:
        if not lock_held:
            try:
                lock.acquire(run_id, what="sync")
            except LockHeld as exc:
                _log.warning("sync.locked", holder=str(exc))
                raise
        store = state.Store(state_path)
        result = SyncResult(
            rules_version=rules.version, as_of=as_of, dry_run=dry_run, engine=cfg.engine.kind, out_table=out_table
        )
        failed_file = failures_mod.FailuresFile(failures_mod.path_for(state_path, run_id), run_id)
        try:
            # Inside the try: a stop signal that lands while the run is being recorded still records it stopped.
            died = store.start_run(run_id, as_of=as_of, dry_run=dry_run)
            if died:
                _log.warning("sync.previous_run_died", runs=died)
            if cfg.engine.kind == "spark":
                from connector.commands import sync_spark  # noqa: PLC0415 - pyspark is an optional extra

                sync_spark.run(cfg, rules, state_path, store, result, failed_file, sample_size=sample_size)
            else:
                _run(cfg, rules, as_of, store, result, failed_file, dry_run=dry_run, sample_size=sample_size)
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
            stop = stop_requested(settle=STOP_SETTLE_SECONDS)
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
        "planned": result.planned_records,
        "planned_fields": result.planned_fields,
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
            steps_mod.log_failures(new, failed_file)
            store.record_writes(new, None)
    result.failed = len(result.failures)
    result.failures_file = failed_file.shown


def _run(
    cfg: Config,
    rules: RuleSet,
    as_of: dt.date,
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
    writes = not dry_run and cfg.rules.mode != "audit"
    try:
        with progress.Steps(4, "sync") as steps:
            with steps.step("pulling"):
                check_crm_picklists(rules, crm, cfg.fields)
                crm.tune(cfg.engine, cfg.resolve)
                crm.pull(cfg.fields, rules.needs(), cfg.activities)
                cfg = steps_mod.fields_in_use(cfg, crm.usable_fields(cfg.fields))
                failpoints.hit("after_pull")
                standing = quiet.unchanged(store, quiet.digest(crm, cfg, rules, as_of)) if writes else None
                if standing is None:
                    crm.expose(cfg.fields, cfg.activities)
                    steps_mod.note_skipped(crm, result, failed_file)
            if standing is not None:  # nothing changed since the last complete run: its result stands
                quiet.stand(result, standing)
            else:
                with steps.step("placing contacts on the ladder"):
                    _evaluate(crm, cfg, rules, as_of, result, store)
                with steps.step("planning changes"):
                    _plan(crm, cfg, result, sample_size)
                    failpoints.hit("after_compute")
                with steps.step("writing"):
                    placed = steps_mod.on_duckdb(rules, cfg, as_of)
                    if cfg.rules.mode == "audit" and not dry_run:
                        steps_mod.audit(crm.con, cfg, store, result)
                    elif not dry_run:
                        quiet.forget(store)
                        steps_mod.write(crm, cfg, rules, store, result, failed_file, placed)
                        if not result.failed:
                            quiet.keep(store, quiet.digest(crm, cfg, rules, as_of), result)
    finally:
        result.api_calls = crm.api_calls  # spent, however the run ends
        result.failures_file = failed_file.shown
        result.duration_s = time.perf_counter() - started
        crm.close()
    steps_mod.finished(result)


def _evaluate(
    crm: CrmBackend, cfg: Config, rules: RuleSet, as_of: dt.date, result: SyncResult, store: state.Store
) -> None:
    t = time.perf_counter()
    result.activities, read = computed(crm.con, rules, as_of, store=store, cfg=cfg, activities_of=crm.activities_of)
    fetch = figures.on(crm.con)
    standing = scope.STANDING  # every contact, computed now or standing since an earlier run
    result.contacts, result.in_grace, result.decaying = figures.counts(fetch, standing)
    result.contacts_read = result.contacts if read is None else read
    _log.info(
        "sync.evaluated",
        contacts=result.contacts,
        activities=result.activities,
        seconds=round(time.perf_counter() - t, 2),
    )
    result.per_rung = figures.per_rung(fetch, rules, standing)
    result.flags = figures.per_flag(fetch, rules, standing)


def _plan(crm: CrmBackend, cfg: Config, result: SyncResult, sample_size: int) -> None:
    result.planned_records = plan.build(crm.con, cfg.fields)
    result.planned_fields = plan.field_counts(figures.on(crm.con))
    result.sample = plan.sample(figures.on(crm.con), cfg.fields, sample_size)
    _log.info(
        "sync.planned", changes=result.planned_records, **{f"fields_{k}": v for k, v in result.planned_fields.items()}
    )
