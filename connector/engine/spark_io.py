"""Relations between DuckDB (the backends, the state store) and Spark, in bulk and in bounded memory.

- DuckDB to Spark (`to_spark`): the relation is written as one Parquet file into the run's exchange folder and Spark
  reads it; nothing goes through the driver's Python row by row. The folder must be one the executors can read: any
  folder in local mode, a shared mount on a cluster.
- Spark to DuckDB (`stream`): only the rows that must leave the executors (the plan, the follow-up tasks, the watch)
  are fetched, one partition at a time (`toLocalIterator`, the next partition prefetched while one is written), and
  inserted `CHUNK_ROWS` at a time as typed column lists. The driver holds a partition and a chunk, never the
  whole relation; DuckDB spills past its memory limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from connector import sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CHUNK_ROWS = 50_000
Columns = Sequence[tuple[str, str]]  # (name, DuckDB type), in order

_COPY = "COPY (SELECT * FROM $t) TO $file (FORMAT parquet)"


def to_spark(spark: SparkSession, con: duckdb.DuckDBPyConnection, name: str, folder: Path) -> DataFrame:
    """DuckDB's relation `name` as the Spark temp view of the same name, through `folder/name.parquet`."""
    file = folder / f"{name}.parquet"
    sql.run(con, sql.q(_COPY, t=sql.table(name), file=str(file)))
    frame = spark.read.parquet(str(file))
    frame.createOrReplaceTempView(name)
    return frame


def create(con: duckdb.DuckDBPyConnection, table: str, columns: Columns) -> None:
    """An empty temp table with these columns, replacing one of that name."""
    typed = [sql.alias(exp.cast(exp.Null(), exp.DataType.build(typ, dialect=sql.DIALECT)), n) for n, typ in columns]
    sql.run(con, sql.create_temp(table, exp.Select(expressions=typed).where(exp.false())))


def insert(con: duckdb.DuckDBPyConnection, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
    """Append rows, passed as one list parameter per column and zipped back together by `unnest`."""
    if not rows:
        return
    values = [
        sql.alias(
            sql.func(
                "unnest", exp.cast(exp.Placeholder(this=f"c{i}"), exp.DataType.build(f"{typ}[]", dialect="duckdb"))
            ),
            name,
        )
        for i, (name, typ) in enumerate(columns)
    ]
    tree = exp.insert(exp.Select(expressions=values), sql.table(table))
    params = {f"c{i}": list(col) for i, col in enumerate(zip(*rows, strict=True))}
    sql.run(con, tree, params)


def stream(frame: DataFrame, con: duckdb.DuckDBPyConnection, table: str, columns: Columns) -> int:
    """The frame's rows (its `columns`, in that order) into a new temp table `table` on `con`; returns the count."""
    create(con, table, columns)
    names = [n for n, _ in columns]
    rows: Iterable[Any] = frame.select(*[frame[n] for n in names]).toLocalIterator(prefetchPartitions=True)
    chunk: list[Sequence[Any]] = []
    total = 0
    for row in rows:
        chunk.append(row)  # a Row is a tuple already
        if len(chunk) >= CHUNK_ROWS:
            insert(con, table, columns, chunk)
            total += len(chunk)
            chunk = []
    insert(con, table, columns, chunk)
    return total + len(chunk)
