"""Who moved: the rung changes syncs wrote, kept in the state store (`stage_moves`), for the report and the digest.

A sync records its moves after a successful write (`record`): the planned contacts whose stage changed, minus
those the CRM refused. Readers ask for the moves since a day (`since`), the earliest `from` and the latest `to` of
each contact, so a contact that went up and came back within the window is not a move at all. "Since the previous
run" is since the evaluation date of the last sync that wrote (`last_run_day`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from connector import log, sql, state
from connector.crm import RecordFailure
from connector.engine.relations import PLAN, changed_col

_log = log.get("trust_ladder.moves")

_PLANNED = """SELECT cid, cur_stage AS from_stage, new_stage AS to_stage FROM $plan
WHERE $changed AND NOT list_contains(CAST($refused AS VARCHAR[]), cid)"""
_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'tl_state'"
_SINCE = """
SELECT cid, arg_min(from_stage, recorded_at) AS from_stage, arg_max(to_stage, recorded_at) AS to_stage,
       max(as_of) AS day
FROM tl_state.stage_moves WHERE as_of >= $since GROUP BY cid
HAVING arg_min(from_stage, recorded_at) IS DISTINCT FROM arg_max(to_stage, recorded_at)
"""
_LAST_DAY = "SELECT max(as_of) FROM tl_state.runs WHERE outcome IN ('ok', 'partial') AND NOT COALESCE(dry_run, false)"


@dataclass(frozen=True)
class Move:
    cid: str
    from_stage: str | None  # None: the contact had no rung on the record before (new, or never synced)
    to_stage: str | None
    day: dt.date  # evaluation date of the run that wrote the latest move


def record(con: duckdb.DuckDBPyConnection, store: state.Store, as_of: dt.date, refused: list[RecordFailure]) -> int:
    """After a successful write: keep the stage changes the CRM accepted. Returns how many were kept."""
    tree = sql.q(_PLANNED, plan=sql.table(PLAN.name), changed=sql.col(changed_col("stage")))
    moves = sql.run(con, tree, {"refused": [f.record_id for f in refused]}).fetchnumpy()
    store.record_stages(log.current_run_id(), as_of, moves)
    kept = len(moves["cid"])
    _log.info("sync.moves_recorded", moves=kept)
    return kept


def _read(path: Path | None, tree: exp.Expr, params: dict[str, object]) -> list[tuple[object, ...]] | None:
    """Rows from the state store, read-only; None when it or its moves table does not exist yet."""
    if path is None or not path.exists():
        return None
    con = duckdb.connect()
    try:
        with state.attached(con, path, read_only=True):
            if "stage_moves" not in {r[0] for r in con.execute(_TABLES).fetchall()}:
                return None
            return sql.run(con, tree, params).fetchall()
    finally:
        con.close()


def last_run_day(path: Path | None) -> dt.date | None:
    """Evaluation date of the last sync that wrote, or None before the first."""
    rows = _read(path, sql.q(_LAST_DAY), {})
    return rows[0][0] if rows and isinstance(rows[0][0], dt.date) else None


def since(path: Path | None, day: dt.date) -> list[Move] | None:
    """Each contact whose rung on the record changed in runs evaluated on or after `day`; None when no sync has
    recorded moves yet (a state store from before they were kept, or none at all)."""
    rows = _read(path, sql.q(_SINCE), {"since": day})
    if rows is None:
        return None
    found = [Move(str(cid), _text(a), _text(b), day) for cid, a, b, day in rows if isinstance(day, dt.date)]
    return sorted(found, key=lambda m: (m.day, m.cid))


def _text(value: object) -> str | None:
    return None if value is None else str(value)
