"""The Salesforce mirror's tables: typed upserts of what a pull staged, the org-clock watermark, and the
follow-up Tasks the org accepted, written into the mirror at once so the next diff is right before the next pull.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from connector import sql
from connector.crm.local import schema
from connector.vocabulary import DESCRIPTION_CAP

if TYPE_CHECKING:
    import duckdb

    from connector.crm.salesforce.push import Saved

CLOSED_STATUS = "Completed"  # the closed Task status every org starts with
# In `_TrustLadderMeta`: the org's address as of the last sign-in, so read-only commands (the digest) can link to
# a record without signing in.
INSTANCE_URL_KEY = "salesforce.instance_url"


# DuckDB types of the trust fields in the mirror, whatever API names the config gives them.
TRUST_TYPES = {
    "stage": "VARCHAR",
    "stage_since": "DATE",
    "flags": "VARCHAR",
    "next_step": "VARCHAR",
    "reason": "VARCHAR",
    "rules_version": "VARCHAR",
    "held_until": "DATE",
    "previous_stage": "VARCHAR",
}


def upsert(
    con: duckdb.DuckDBPyConnection, obj: str, stage: str, fields: list[str], extra_types: dict[str, str] | None = None
) -> None:
    """Insert or update the staged rows (text columns) into the mirror's table, typed; drop the deleted ones.
    `extra_types`: columns beyond the vocabulary's (the trust fields under their configured names)."""
    types = dict(schema.TABLES[obj])
    for name, typ in (extra_types or {}).items():
        types.setdefault(name, typ)
    cols = [f for f in fields if f in types]
    casts = ", ".join(_cast(c, types[c].split()[0]) for c in cols)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c != "Id")
    con.execute(
        f'INSERT INTO "{obj}" ({", ".join(_q(c) for c in cols)}) '
        f"SELECT {casts} FROM {stage} "
        f'ON CONFLICT ("Id") DO UPDATE SET {updates}'
    )
    con.execute(f'DELETE FROM "{obj}" WHERE COALESCE("IsDeleted", false)')


# The Contact pull's account names (`Account.Name`, connector.crm.salesforce.soql) into the mirror's Account table:
# one row per account, its name on the latest-stamped of the pulled contacts (the stamps are the org's ISO text of
# one pull, so they sort as text). A rename reaches every contact of the account as soon as one of them is pulled.
# A contact without an account, or an account whose name came back empty, leaves the table as it was.
_ACCOUNTS = """
INSERT INTO "Account" ("Id", "Name", "IsDeleted")
SELECT s."AccountId", arg_max(s."Account.Name", s."SystemModstamp"), false FROM $stage s
WHERE NULLIF(s."AccountId", '') IS NOT NULL AND NULLIF(s."Account.Name", '') IS NOT NULL
GROUP BY s."AccountId"
ON CONFLICT ("Id") DO UPDATE SET "Name" = excluded."Name"
"""


def accounts(con: duckdb.DuckDBPyConnection, stage: str, *, full: bool) -> None:
    """Keep the account names a Contact pull staged. A full pull brings every contact's account: the table is made
    anew, so an account no contact names any more is gone from it."""
    if full:
        con.execute('DELETE FROM "Account"')
    sql.run(con, sql.q(_ACCOUNTS, stage=sql.table(stage)))


def created_tasks(con: duckdb.DuckDBPyConnection, saved: list[Saved], now: dt.datetime) -> None:
    """Follow-up Tasks the org accepted go into the mirror at once (`now`: a naive UTC stamp)."""
    if not saved:
        return
    cols = ["Id", "WhoId", "OwnerId", "Subject", "ActivityDate"]
    data = [[s.id for s in saved]] + [[s.fields.get(c) for s in saved] for c in cols[1:]]
    con.execute(
        'INSERT INTO "Task" ("Id", "WhoId", "OwnerId", "Subject", "ActivityDate", "TaskSubtype", "IsClosed", '
        '"CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted") '
        "SELECT i, w, o, s, CAST(d AS DATE), 'Task', false, ?, ?, ?, false FROM (SELECT unnest(?::VARCHAR[]) AS i, "
        "unnest(?::VARCHAR[]) AS w, unnest(?::VARCHAR[]) AS o, unnest(?::VARCHAR[]) AS s, "
        'unnest(?::VARCHAR[]) AS d) ON CONFLICT ("Id") DO NOTHING',
        [now, now, now, *data],
    )


def patched_tasks(con: duckdb.DuckDBPyConnection, saved: list[Saved]) -> None:
    """Follow-up Task changes the org accepted, applied to the mirror."""
    if not saved:
        return
    cols = ["Subject", "OwnerId", "ActivityDate", "Status"]
    data = [[s.id for s in saved]] + [[s.fields.get(c) for s in saved] for c in cols]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE sf_task_patched AS SELECT unnest(?::VARCHAR[]) AS i, "
        + ", ".join(f'unnest(?::VARCHAR[]) AS "{c}"' for c in cols),
        data,
    )
    con.execute(
        'UPDATE "Task" SET "Subject" = COALESCE(p."Subject", "Task"."Subject"), '
        '"OwnerId" = COALESCE(p."OwnerId", "Task"."OwnerId"), '
        '"ActivityDate" = COALESCE(CAST(p."ActivityDate" AS DATE), "Task"."ActivityDate"), '
        '"Status" = COALESCE(p."Status", "Task"."Status"), '
        f'"IsClosed" = CASE WHEN p."Status" = \'{CLOSED_STATUS}\' THEN true ELSE "Task"."IsClosed" END '
        'FROM sf_task_patched p WHERE "Task"."Id" = p.i'
    )


def delete(con: duckdb.DuckDBPyConnection, obj: str, record_ids: list[str]) -> int:
    """Remove records the org reports deleted (getDeleted); returns how many the mirror held."""
    if not record_ids:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE sf_deleted AS SELECT unnest(?::VARCHAR[]) AS i", [record_ids])
    row = con.execute(f'DELETE FROM "{obj}" WHERE "Id" IN (SELECT i FROM sf_deleted)').fetchone()
    return int(row[0]) if row else 0


def newest(con: duckdb.DuckDBPyConnection, stage: str) -> dt.datetime | None:
    """The highest SystemModstamp in a pull's staging table (UTC), None when it holds no row."""
    row = con.execute(f"SELECT max({_cast_expr(_q('SystemModstamp'), 'TIMESTAMP')}) FROM {stage}").fetchone()
    return None if row is None or row[0] is None else row[0].replace(tzinfo=dt.UTC)


def watermark(newest: dt.datetime | None, org_time: dt.datetime | None) -> dt.datetime | None:
    """By the org's clock: its time when it answered the pull (it had then committed every change the pull could
    see, so a quiet org's watermark moves on with each run, and a stamp in its future is not trusted); without
    that time, the newest SystemModstamp seen; with neither, None (keep the old one)."""
    return org_time if org_time is not None else newest


def _q(name: str) -> str:
    """A quoted identifier, made by the one SQL builder."""
    return sql.render(sql.ident(name))


def _cast(name: str, duck_type: str) -> str:
    """A staged text column cast to the mirror's type, keeping its name."""
    col = _q(name)
    if name == "Description":  # notes are kept to the length rules read, as every adapter keeps them
        return f"left({col}, {DESCRIPTION_CAP}) AS {col}"
    return f"{_cast_expr(col, duck_type)} AS {col}"


def _cast_expr(col: str, duck_type: str) -> str:
    if duck_type == "TIMESTAMP":
        return f"CAST(replace(left({col}, 23), 'T', ' ') AS TIMESTAMP)"
    if duck_type == "DATE":
        return f"CAST(left({col}, 10) AS DATE)"
    if duck_type == "INTEGER":
        return f"CAST(CAST({col} AS DOUBLE) AS INTEGER)"
    if duck_type == "BOOLEAN":
        return f"CAST({col} AS BOOLEAN)"
    return col
