"""Pass 4: the write-back plan, only the contacts and fields whose value would change.

Multi-select values are compared as sets, because Salesforce returns them in picklist order whatever order we
wrote. The rules version is not compared: it is written along with a real change, never on its own, so a rule
edit that moves nobody costs no writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from connector.config import FieldsSection
from connector.evaluate import PLACE_TABLE

PLAN_TABLE = "tl_plan"

# logical name -> (column in tl_place holding the new value, column holding the current value)
FIELDS: dict[str, tuple[str, str]] = {
    "stage": ("new_stage", "cur_stage"),
    "stage_since": ("new_since", "cur_since"),
    "flags": ("new_flags", "cur_flags"),
    "next_step": ("new_next", "cur_next"),
    "reason": ("new_reason", "cur_reason"),
}


@dataclass(frozen=True)
class FieldChange:
    contact_id: str
    field: str  # API name
    old: object
    new: object


def _norm_multi(col: str) -> str:
    return f"list_sort(string_split(COALESCE({col}, ''), ';'))"


def build(con: duckdb.DuckDBPyConnection) -> int:
    changed = []
    for logical, (new, cur) in FIELDS.items():
        if logical == "flags":
            changed.append(f"({_norm_multi(new)} IS DISTINCT FROM {_norm_multi(cur)}) AS ch_{logical}")
        else:
            changed.append(f"({new} IS DISTINCT FROM {cur}) AS ch_{logical}")
    any_change = " OR ".join(f"ch_{k}" for k in FIELDS)
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {PLAN_TABLE} AS
SELECT * FROM (
  SELECT cid, {', '.join(f'{n}, {c}' for n, c in FIELDS.values())}, cur_version, {', '.join(changed)}
  FROM {PLACE_TABLE}
) WHERE {any_change}
""")
    return int(con.execute(f"SELECT count(*) FROM {PLAN_TABLE}").fetchone()[0])  # type: ignore[index]


def sample(con: duckdb.DuckDBPyConnection, fields: FieldsSection, limit: int = 20) -> list[FieldChange]:
    """The first planned changes, by contact Id, for a dry run to show."""
    rows = con.execute(
        f"SELECT cid, {', '.join(f'ch_{k}, {n}, {c}' for k, (n, c) in FIELDS.items())} "
        f"FROM {PLAN_TABLE} ORDER BY cid LIMIT {int(limit)}"
    ).fetchall()
    out: list[FieldChange] = []
    for row in rows:
        cid, rest = row[0], row[1:]
        for i, logical in enumerate(FIELDS):
            ch, new, cur = rest[3 * i : 3 * i + 3]
            if ch:
                out.append(FieldChange(cid, getattr(fields, logical), cur, new))
    return out


def field_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(f"SELECT {', '.join(f'count(*) FILTER (WHERE ch_{k})' for k in FIELDS)} FROM {PLAN_TABLE}"
                      ).fetchone()
    assert row is not None
    return dict(zip(FIELDS, (int(v) for v in row), strict=True))
