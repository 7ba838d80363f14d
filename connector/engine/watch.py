"""The demotion watch, once: which contacts fail the rung the CRM shows, since when and from which rung.

The state store keeps it between runs (connector.state); here is how it enters a run (`load`) and which rows
a run leaves behind (`rows`): contacts placed above the rung they qualify for, held by the grace period or decaying
(from the rung the CRM shows, or the one their history holds them on at a first sync). A contact that has come down
to the rung it qualifies for leaves the watch: should it slip again, it gets a whole grace period again, and a run
that restarts after its writes landed leaves the same watch as one that was not interrupted. sync, simulate and the
rule tests all go through these two functions, so the rule exists in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from connector.engine import sql
from connector.engine.relations import PLACE, WATCH

WatchRow = tuple[str, int, dt.date]  # cid, from_rung, failing_since

_CREATE = "CREATE OR REPLACE TEMP TABLE tl_watch (cid VARCHAR, from_rung INTEGER, failing_since DATE)"
_KEPT = "SELECT cid, w_from AS from_rung, w_since AS failing_since FROM $place WHERE final > qualified"


def load(con: duckdb.DuckDBPyConnection, rows: Sequence[WatchRow]) -> None:
    """Make `tl_watch` available to the engine (empty for a first run or without a state store)."""
    assert WATCH.name == "tl_watch"
    con.execute(_CREATE)
    if rows:
        con.executemany("INSERT INTO tl_watch VALUES (?, ?, ?)", list(rows))


def carry(con: duckdb.DuckDBPyConnection) -> None:
    """Make this run's watch the next run's `tl_watch`, inside the engine (simulate's weekly replay)."""
    sql.run(con, sql.create_temp(WATCH.name, sql.q(_KEPT, place=sql.table(PLACE.name))))


def rows(con: duckdb.DuckDBPyConnection) -> list[WatchRow]:
    """The watch this run leaves: every contact placed below the rung the CRM shows."""
    got = sql.run(con, sql.q(_KEPT, place=sql.table(PLACE.name))).fetchall()
    return [(str(cid), int(rung), since) for cid, rung, since in got]
