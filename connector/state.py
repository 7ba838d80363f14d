"""The local state store: what must survive between runs and is not the CRM's to hold.

Today it holds the demotion watch: for each contact that no longer meets the rung the CRM shows, since when
and from which rung. A row stays until the CRM shows the rung the contact qualifies for, so a demotion whose
write failed does not restart its grace period. The schema is versioned in `meta` and migrates forward.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from connector.errors import ConfigError
from connector.evaluate import PLACE_TABLE

SCHEMA_VERSION = 1
_ALIAS = "tl_state"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        f"CREATE TABLE IF NOT EXISTS {_ALIAS}.meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        (f"CREATE TABLE IF NOT EXISTS {_ALIAS}.demotion_watch "
         "(cid VARCHAR PRIMARY KEY, from_rung INTEGER NOT NULL, failing_since DATE NOT NULL)"),
    ],
}


def _attach(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con.execute(f"ATTACH '{_quote(path)}' AS {_ALIAS}")
    except duckdb.Error as exc:
        raise ConfigError(f"{path}: cannot open the state store: {exc}") from None
    version = 0
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [_ALIAS]).fetchall()}
    if "meta" in tables:
        row = con.execute(f"SELECT value FROM {_ALIAS}.meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        con.execute(f"DETACH {_ALIAS}")
        raise ConfigError(f"{path}: the state store is from a newer trust-ladder (schema {version}); upgrade")
    for v in range(version + 1, SCHEMA_VERSION + 1):
        for stmt in _MIGRATIONS[v]:
            con.execute(stmt)
        con.execute(f"INSERT OR REPLACE INTO {_ALIAS}.meta VALUES ('schema_version', ?)", [str(v)])


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def load_watch(con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
    """Make `tl_watch` available to the engine (empty without a state store)."""
    con.execute("CREATE OR REPLACE TEMP TABLE tl_watch (cid VARCHAR, from_rung INTEGER, failing_since DATE)")
    if path is None or not path.exists():
        return
    _attach(con, path)
    try:
        con.execute(f"INSERT INTO tl_watch SELECT cid, from_rung, failing_since FROM {_ALIAS}.demotion_watch")
    finally:
        con.execute(f"DETACH {_ALIAS}")


def save_watch(con: duckdb.DuckDBPyConnection, path: Path | None, *, contact_id: str | None = None) -> int:
    """Replace the watch with this run's: contacts below the rung the CRM shows. Returns how many are watched."""
    if path is None:
        return 0
    _attach(con, path)
    try:
        con.execute("BEGIN TRANSACTION")
        if contact_id is None:
            con.execute(f"DELETE FROM {_ALIAS}.demotion_watch")
        else:
            con.execute(f"DELETE FROM {_ALIAS}.demotion_watch WHERE cid = ?", [contact_id])
        con.execute(
            f"INSERT INTO {_ALIAS}.demotion_watch SELECT cid, w_from, w_since FROM {PLACE_TABLE} "
            "WHERE held IS NOT NULL AND qualified < held"
        )
        con.execute("COMMIT")
        row = con.execute(f"SELECT count(*) FROM {_ALIAS}.demotion_watch").fetchone()
    finally:
        con.execute(f"DETACH {_ALIAS}")
    return int(row[0]) if row else 0
