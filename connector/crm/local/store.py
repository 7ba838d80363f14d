"""The local CRM: one DuckDB file holding Salesforce-shaped User, Contact, Task and Event tables.

It is the embedded default backend: the engine reads it in place (no copy), and write-back is a set-based
UPDATE of only the changed fields, stamping `LastModifiedDate`/`SystemModstamp` as Salesforce would.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from connector import ids
from connector.crm.local import schema
from connector.errors import ConfigError


class LocalCrm:
    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.con = con
        self.path = path
        for stmt in ids.sql_macros():
            con.execute(stmt)

    @classmethod
    def create(cls, path: Path | None, *, replace: bool = False) -> LocalCrm:
        """A new, empty local CRM (in memory when `path` is None), with the default trust picklists."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if replace:
                for p in (path, path.with_name(path.name + ".wal")):
                    p.unlink(missing_ok=True)
        con = duckdb.connect(str(path) if path else ":memory:")
        for stmt in schema.ddl():
            con.execute(stmt)
        crm = cls(con, path)
        if not crm.picklist_values():
            for field, values in schema.DEFAULT_PICKLISTS.items():
                crm.set_picklist(field, values)
        return crm

    @classmethod
    def open(cls, path: Path) -> LocalCrm:
        if not path.exists():
            raise ConfigError(
                f"{path}: no local CRM here yet. Create one with `trust-ladder demo` "
                "or load a Salesforce Data Export with `trust-ladder import DIR`."
            )
        try:
            con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise ConfigError(f"{path}: cannot open the local CRM: {exc}") from None
        return cls(con, path)

    def close(self) -> None:
        self.con.close()

    def set_picklist(self, field: str, values: list[str]) -> None:
        self.con.execute('DELETE FROM "FieldPicklist" WHERE "Field" = ?', [field])
        self.con.executemany(
            'INSERT INTO "FieldPicklist" VALUES (?, ?, ?)', [(field, v, i) for i, v in enumerate(values)]
        )

    def picklist_values(self) -> dict[str, list[str]]:
        rows = self.con.execute(
            'SELECT "Field", "Value" FROM "FieldPicklist" ORDER BY "Field", "SortOrder"'
        ).fetchall()
        out: dict[str, list[str]] = {}
        for field, value in rows:
            out.setdefault(field, []).append(value)
        return out

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f'DESCRIBE "{table}"').fetchall()]

    def counts(self) -> dict[str, int]:
        return {
            t: int(self.con.execute(f'SELECT count(*) FROM "{t}" WHERE NOT COALESCE("IsDeleted", false)').fetchone()[0])  # type: ignore[index]
            if t != "User"
            else int(self.con.execute('SELECT count(*) FROM "User"').fetchone()[0])  # type: ignore[index]
            for t in schema.TABLES
        }
