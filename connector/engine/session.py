"""The engine's connection: tuned, then locked before any rule-derived statement runs.

Once the backend has attached and pulled what the engine reads, `lock` turns off every way out of the database
(file readers and writers, ATTACH, extensions) and freezes the configuration, so not even a statement built from a
hostile rule file could read a file or lift the memory limit. Import and demo use connections of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from connector import sql
from connector.config import EngineSection, available_cores


def tune(con: duckdb.DuckDBPyConnection, engine: EngineSection, resolve: Callable[[Path], Path]) -> None:
    """Bound the engine's memory, so a million-contact sync fits a modest machine (it spills to disk)."""
    _set(con, "memory_limit", engine.memory_limit)
    _set(con, "preserve_insertion_order", value=False)  # we never rely on row order; it saves memory
    # DuckDB starts a thread per core of the machine, even where this process may run on fewer (taskset, a
    # cpuset-pinned container, each worker of a parallel test run): the extra threads only take turns. Its own
    # count is kept where it is lower (a CPU quota it read).
    row = con.execute("SELECT current_setting('threads')").fetchone()
    own = int(row[0]) if row else 1
    _set(con, "threads", min(engine.threads or own, available_cores()))
    if engine.temp_directory:
        _set(con, "temp_directory", str(resolve(engine.temp_directory)))


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """No file, network or extension access from here on, and no setting can change back."""
    if locked(con):
        return
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def locked(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT current_setting('lock_configuration')").fetchone()
    return bool(row and row[0])


def _set(con: duckdb.DuckDBPyConnection, name: str, value: object) -> None:
    # SET takes no bound parameters; the value is a literal made by the one literal function.
    con.execute(sql.render(sql.q("SET $name = $value", name=sql.col(name), value=sql.lit(value))))
