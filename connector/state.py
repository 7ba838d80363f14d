"""The local state store: what must survive between runs and is not the CRM's to hold.

- `runs`: one row per run (start, end, outcome, exit code, figures, API calls, rules version, the path of its
  failures file). A run inserts its row as `running` and closes it; a row left `running` by a process that died
  is marked `died` by the next run, and shown as `died` by `status` at once (its lock is free).
  Times are stored in UTC and read back with their time zone.
- `pending_writes`: records whose last write failed, with their attempt count and last error. They need no
  queue to be retried, since their fields still differ from the plan and the next run's plan holds them again;
  this table is what `status` shows, and it is cleared record by record as writes succeed.
- `demotion_watch`: no longer read or written (schema 1 to 6 kept it): the demotion grace is read from each
  contact's history (connector.engine.timeline), so nothing a run needs depends on an earlier write having landed.
- `stage_moves`: each rung change a run wrote (contact, from, to, the run's evaluation date), so the report and
  the digest can say who moved since a day; rows older than `MOVES_KEPT_DAYS` are dropped.
- `timeline_cache`: each contact's timeline outcome (rung, since, hold, flag ages, the next day anything can change)
  under one rules version, with a fingerprint of what it was computed from and a hash of what its sync meant to
  write (connector.engine.scope). A sync recomputes a contact only when
  its history or fields changed, or its next change day has come; the cache holds nothing a write decides, so a
  run stopped anywhere leaves it true.
- `written_values`: the six values a sync from a warehouse copy wrote to each contact, and when; they stand in for
  the copy's values until a copy taken after the write has them (connector.written_values).

The schema is versioned in `meta` and migrates forward by itself, one step at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from connector import files, sql
from connector.crm import RecordFailure
from connector.errors import ConfigError, StateBusy
from connector.run_lock import RunLock, lock_held, lock_path

__all__ = ["RunLock", "Store", "attached", "lock_held", "lock_path", "schema_version"]

SCHEMA_VERSION = 9
MOVES_KEPT_DAYS = 400
_BUSY_WAIT_S = 10.0
_ALIAS = "tl_state"
_ATTACH = "ATTACH $path AS tl_state"
_ATTACH_RO = "ATTACH $path AS tl_state (READ_ONLY)"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        f"CREATE TABLE IF NOT EXISTS {_ALIAS}.meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.demotion_watch "
            "(cid VARCHAR PRIMARY KEY, from_rung INTEGER NOT NULL, failing_since DATE NOT NULL)"
        ),
    ],
    2: [
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.runs (run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, "
            "finished_at TIMESTAMP, outcome VARCHAR NOT NULL, exit_code INTEGER, as_of DATE, dry_run BOOLEAN, "
            "rules_version VARCHAR, contacts BIGINT, activities BIGINT, changed BIGINT, failed BIGINT, skipped BIGINT, "
            "api_calls BIGINT, per_rung VARCHAR, error VARCHAR, pid INTEGER, host VARCHAR)"
        ),
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.pending_writes (record_id VARCHAR PRIMARY KEY, "
            "attempts INTEGER NOT NULL, last_code VARCHAR, last_error VARCHAR, first_failed_at TIMESTAMP, "
            "last_failed_at TIMESTAMP)"
        ),
    ],
    3: [
        # What an audit-mode run would have written, field by field; only the latest audit run is kept.
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.audit_changes (run_id VARCHAR NOT NULL, record_id VARCHAR NOT NULL, "
            "field VARCHAR NOT NULL, old_value VARCHAR, new_value VARCHAR)"
        ),
    ],
    4: [
        # The run's failures file (JSON lines: every record refused or skipped), see connector/failures.py.
        f"ALTER TABLE {_ALIAS}.runs ADD COLUMN IF NOT EXISTS failures_file VARCHAR",
    ],
    5: [
        # Who moved, written by a sync after a successful write (connector.commands.moves reads it).
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.stage_moves (run_id VARCHAR NOT NULL, as_of DATE NOT NULL, "
            "recorded_at TIMESTAMP NOT NULL, cid VARCHAR NOT NULL, from_stage VARCHAR, to_stage VARCHAR)"
        ),
    ],
    6: [
        # What a sync from a warehouse copy wrote, per contact (connector.written_values reads and prunes it).
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.written_values (cid VARCHAR PRIMARY KEY, stage VARCHAR, "
            "stage_since DATE, flags VARCHAR, next_step VARCHAR, reason VARCHAR, rules_version VARCHAR, "
            "written_at TIMESTAMP NOT NULL)"
        ),
    ],
    7: [
        # Each contact's timeline outcome, with what it was computed from (connector.engine.timeline): reused
        # while the contact's activities and fields are unchanged, up to the next day anything can change.
        (
            f"CREATE TABLE IF NOT EXISTS {_ALIAS}.timeline_cache (cid VARCHAR PRIMARY KEY, version VARCHAR NOT NULL, "
            "fp UBIGINT NOT NULL, as_of DATE NOT NULL, final INTEGER, qualified_now INTEGER, in_grace BOOLEAN, "
            "since DATE, held_until DATE, next_change DATE, flag_since VARCHAR)"
        ),
    ],
    8: [
        # Fingerprints now hash the rows the backend exposes, not the classified activities (so a sync can tell
        # which contacts to read before it classifies): the old rows are computed once more. `ph`: what the sync
        # that computed a contact meant to write (connector.engine.scope).
        f"DELETE FROM {_ALIAS}.timeline_cache",
        f"ALTER TABLE {_ALIAS}.timeline_cache ADD COLUMN IF NOT EXISTS ph UBIGINT",
    ],
    9: [
        # The rung before the current one (Trust_Previous_Stage__c, issue 19): rows cached without it are
        # recomputed once rather than read as "no previous rung". The two optional fields a warehouse sync wrote.
        f"ALTER TABLE {_ALIAS}.timeline_cache ADD COLUMN IF NOT EXISTS previous INTEGER",
        f"DELETE FROM {_ALIAS}.timeline_cache",
        f"ALTER TABLE {_ALIAS}.written_values ADD COLUMN IF NOT EXISTS held_until DATE",
        f"ALTER TABLE {_ALIAS}.written_values ADD COLUMN IF NOT EXISTS previous_stage VARCHAR",
        # What a run planned (a dry run's whole answer), and per field, for `status`.
        f"ALTER TABLE {_ALIAS}.runs ADD COLUMN IF NOT EXISTS planned BIGINT",
        f"ALTER TABLE {_ALIAS}.runs ADD COLUMN IF NOT EXISTS planned_fields VARCHAR",
    ],
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive, UTC) time with its time zone."""
    return None if value is None else value.replace(tzinfo=dt.UTC)


def check_path(path: Path) -> None:
    """`[state] path` must name a state store file (DuckDB): a folder, a device, a file holding something else, or
    a parent that is a file is a configuration problem, said at once (exit 3), not a busy store waited on."""
    problem = files.database_file_problem(path)
    if problem is not None:
        raise ConfigError(f"[state] path: {problem}")


@contextlib.contextmanager
def attached(con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool = False) -> Iterator[str]:
    """The state store attached to `con` as `tl_state`, migrated to the current schema (unless read-only).

    Only one process may open the file at a time, and every opener holds it for milliseconds: a `status` poll
    that collides with a sync is waited out for a few seconds rather than failing the run.
    """
    check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attach = sql.render(sql.q(_ATTACH_RO if read_only else _ATTACH, path=str(path)))
    deadline = time.monotonic() + _BUSY_WAIT_S
    while True:
        try:
            con.execute(attach)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise StateBusy(
                    f"{path}: the state store is held by another process (a run or a `status` poll) "
                    f"for more than {_BUSY_WAIT_S:.0f} s; try again when it is free ({exc})"
                ) from None
            time.sleep(0.05)
        except duckdb.Error as exc:
            raise ConfigError(f"{path}: cannot open the state store: {exc}") from None
    try:
        if not read_only:
            _migrate(con, path)
        yield _ALIAS
    finally:
        con.execute(f"DETACH {_ALIAS}")


def _migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    version = 0
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [_ALIAS]
        ).fetchall()
    }
    if "meta" in tables:
        rows = con.execute(f"SELECT value FROM {_ALIAS}.meta WHERE key = 'schema_version'").fetchall()
        version = int(rows[0][0]) if rows else 0
    if version > SCHEMA_VERSION:
        raise ConfigError(f"{path}: the state store is from a newer trust-ladder (schema {version}); upgrade")
    for v in range(version + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        for stmt in _MIGRATIONS[v]:
            con.execute(stmt)
        con.execute(f"INSERT OR REPLACE INTO {_ALIAS}.meta VALUES ('schema_version', ?)", [str(v)])
        con.execute("COMMIT")


_HOST: duckdb.DuckDBPyConnection | None = None  # see `opened`
_HOST_LOCK = threading.RLock()


@contextlib.contextmanager
def opened(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the state store attached (`attached`), for one short operation.

    The store is attached to one in-memory DuckDB kept for the whole process, through a cursor of its own, and
    detached when the operation ends, so the file is held only as long as before. A new in-memory DuckDB for each
    operation cost about 13 ms of CPU, a cursor of the kept one microseconds; a run makes dozens of them. One
    operation at a time: the store is always attached under the same name."""
    global _HOST  # noqa: PLW0603 - one in-memory DuckDB for the process, made on first use
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = duckdb.connect()
        con = _HOST.cursor()
        try:
            with attached(con, path, read_only=read_only):
                yield con
        finally:
            con.close()


def schema_version(path: Path) -> int:
    with opened(path, read_only=True) as con:
        row = con.execute(f"SELECT value FROM {_ALIAS}.meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0


# -- run history and pending writes --------------------------------------------------------------------------


class Store:
    """Run history and pending writes, in their own short connections so a crash never holds them open."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only  # readers (status, report) never take the write lock a sync needs

    @contextlib.contextmanager
    def _con(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with opened(self.path, read_only=self.read_only) as con:
            yield con

    def start_run(self, run_id: str, *, as_of: dt.date, dry_run: bool) -> int:
        """Record a run as running; returns how many earlier runs were found dead (left `running`)."""
        with self._con() as con:
            died = con.execute(
                f"UPDATE {_ALIAS}.runs SET outcome = 'died', finished_at = NULL "
                "WHERE outcome = 'running' RETURNING run_id"
            ).fetchall()
            con.execute(
                f"INSERT INTO {_ALIAS}.runs (run_id, started_at, outcome, as_of, dry_run, pid, host) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                [run_id, _now(), as_of, dry_run, os.getpid(), socket.gethostname()],
            )
        return len(died)

    def finish_run(
        self,
        run_id: str,
        *,
        outcome: str,
        exit_code: int,
        figures: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        f = figures or {}
        with self._con() as con:
            con.execute(
                f"UPDATE {_ALIAS}.runs SET finished_at = ?, outcome = ?, exit_code = ?, rules_version = ?, "
                "contacts = ?, activities = ?, changed = ?, failed = ?, skipped = ?, api_calls = ?, per_rung = ?, "
                "error = ?, failures_file = ?, planned = ?, planned_fields = ? WHERE run_id = ?",
                [
                    _now(),
                    outcome,
                    exit_code,
                    f.get("rules_version"),
                    f.get("contacts"),
                    f.get("activities"),
                    f.get("changed"),
                    f.get("failed"),
                    f.get("skipped"),
                    f.get("api_calls"),
                    json.dumps(f["per_rung"]) if f.get("per_rung") else None,
                    error,
                    f.get("failures_file"),
                    f.get("planned"),
                    json.dumps(f["planned_fields"]) if f.get("planned_fields") else None,
                    run_id,
                ],
            )

    def record_writes(self, failures: list[RecordFailure], written: Any | None) -> None:
        """Failed records are counted up; records written this run leave the pending list. `written` holds the
        planned contact Ids as one column (`{"cid": array}`, from the engine's plan): set-based, because a million
        written contacts must not cost a million round trips. None: a run stopped early, which only adds its
        failures (what it wrote leaves the list on the next full run)."""
        now = _now()
        with self._con() as con:
            if written is None:
                con.execute("CREATE TEMP TABLE tl_written (cid VARCHAR)")
            else:
                con.register("tl_written", written)
            con.execute("CREATE TEMP TABLE tl_failed (record_id VARCHAR, code VARCHAR, message VARCHAR)")
            if failures:
                con.executemany(
                    "INSERT INTO tl_failed VALUES (?, ?, ?)", [(f.record_id, f.code, f.message) for f in failures]
                )
            con.execute("BEGIN TRANSACTION")
            con.execute(
                f"DELETE FROM {_ALIAS}.pending_writes WHERE record_id IN (SELECT cid FROM tl_written) "
                "AND record_id NOT IN (SELECT record_id FROM tl_failed)"
            )
            con.execute(
                f"INSERT INTO {_ALIAS}.pending_writes SELECT record_id, 1, code, message, ?, ? FROM tl_failed "
                "ON CONFLICT (record_id) DO UPDATE SET attempts = attempts + 1, last_code = excluded.last_code, "
                "last_error = excluded.last_error, last_failed_at = excluded.last_failed_at",
                [now, now],
            )
            con.execute("COMMIT")

    def record_audit(self, run_id: str, changes: Any) -> int:
        """Keep what this audit run would have written: one row per changed field (`changes` holds the columns
        record_id, field, old_value, new_value). Returns the row count."""
        with self._con() as con:
            con.register("tl_audit", changes)
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM {_ALIAS}.audit_changes")
            con.execute(
                f"INSERT INTO {_ALIAS}.audit_changes SELECT ?, record_id, field, old_value, new_value FROM tl_audit",
                [run_id],
            )
            con.execute("COMMIT")
            row = con.execute(f"SELECT count(*) FROM {_ALIAS}.audit_changes").fetchone()
        return int(row[0]) if row else 0

    def record_stages(self, run_id: str, as_of: dt.date, moves: Any) -> None:
        """Keep the rung changes this run wrote (`moves` holds the columns cid, from_stage, to_stage), and forget
        those older than MOVES_KEPT_DAYS."""
        with self._con() as con:
            con.register("tl_moved", moves)
            con.execute("BEGIN TRANSACTION")
            con.execute(
                f"INSERT INTO {_ALIAS}.stage_moves SELECT ?, ?, ?, cid, from_stage, to_stage FROM tl_moved",
                [run_id, as_of, _now()],
            )
            con.execute(
                f"DELETE FROM {_ALIAS}.stage_moves WHERE as_of < ?", [as_of - dt.timedelta(days=MOVES_KEPT_DAYS)]
            )
            con.execute("COMMIT")

    def audit(self, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        with self._con() as con:
            total = con.execute(f"SELECT count(*) FROM {_ALIAS}.audit_changes").fetchone()
            cur = con.execute(f"SELECT * FROM {_ALIAS}.audit_changes ORDER BY record_id, field LIMIT ?", [limit])
            cols = [d[0] for d in cur.description]
            return int(total[0]) if total else 0, [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def meta_value(self, key: str) -> str | None:
        with self._con() as con:
            row = con.execute(f"SELECT value FROM {_ALIAS}.meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta_value(self, key: str, value: str | None) -> None:
        """Keep `value` under `key`; None removes it."""
        with self._con() as con:
            con.execute(f"DELETE FROM {_ALIAS}.meta WHERE key = ?", [key])
            if value is not None:
                con.execute(f"INSERT INTO {_ALIAS}.meta VALUES (?, ?)", [key, value])

    def timeline_cache(self, version: str) -> Any | None:
        """The cached timeline rows of one rules version as columns (`fetchnumpy`), or None without a store."""
        if not self.path.exists():
            return None
        with self._con() as con:
            return con.execute(
                "SELECT cid, fp, ph, as_of, final, qualified_now, in_grace, since, held_until, next_change, previous, "
                f"flag_since FROM {_ALIAS}.timeline_cache WHERE version = ?",
                [version],
            ).fetchnumpy()

    def save_timeline(self, version: str, rows: Any) -> int:
        """Keep the timeline rows a run computed (columns as `timeline_cache` gives them, `rows` from
        `fetchnumpy`); rows of another rules version go. Returns how many were saved."""
        with self._con() as con:
            con.register("tl_new_timeline", rows)
            con.execute("BEGIN TRANSACTION")
            con.execute(
                f"DELETE FROM {_ALIAS}.timeline_cache WHERE version <> ? OR cid IN (SELECT cid FROM tl_new_timeline)",
                [version],
            )
            con.execute(
                # by name: columns came by migrations, so they stand last in older stores and in order in new ones
                f"INSERT INTO {_ALIAS}.timeline_cache BY NAME SELECT cid, ? AS version, fp, ph, as_of, final, "
                "qualified_now, in_grace, since, held_until, next_change, previous, flag_since FROM tl_new_timeline",
                [version],
            )
            con.execute("COMMIT")
            return len(rows["cid"])

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last runs, newest first: times in UTC with their time zone, `per_rung` as a dict."""
        with self._con() as con:
            cur = con.execute(f"SELECT * FROM {_ALIAS}.runs ORDER BY started_at DESC LIMIT ?", [limit])
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        for row in rows:
            for key in ("started_at", "finished_at"):
                row[key] = _utc(row[key])
            row["per_rung"] = json.loads(row["per_rung"]) if row["per_rung"] else None
            row["planned_fields"] = json.loads(row["planned_fields"]) if row.get("planned_fields") else None
        return rows

    def pending(self, limit: int | None = 50) -> tuple[int, list[dict[str, Any]]]:
        """How many records wait for retry, and the latest `limit` of them (all with None)."""
        with self._con() as con:
            total = con.execute(f"SELECT count(*) FROM {_ALIAS}.pending_writes").fetchone()
            cur = con.execute(
                f"SELECT * FROM {_ALIAS}.pending_writes ORDER BY last_failed_at DESC, record_id LIMIT ?", [limit]
            )
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for row in rows:
            for key in ("first_failed_at", "last_failed_at"):
                row[key] = _utc(row[key])
        return int(total[0]) if total else 0, rows
