"""Pulled activities the engine cannot use, counted per reason and named, never dropped in silence.

An activity counts for a contact only when its WhoId is a Contact the mirror holds and it has a day (a Task's
completion, due or creation date; an Event's start or all-day date). Each run looks at the activities it has
just pulled that changed since the previous watermark (deleted ones aside; the rows an incremental pull reads
again at the watermark were reported by the run before), and sets aside, with a reason:
- `no_who`: no WhoId at all (a task on an Account or Opportunity only);
- `lead`: the WhoId is a Lead (key prefix 00Q): leads have no trust ladder;
- `not_a_contact`: any other kind of record;
- `unknown_contact`: a Contact Id the mirror does not hold (deleted, or hidden from the sync user by sharing);
- `no_date`: no usable date.
The full list is kept in the temp table `SKIPPED_TABLE` (object, Id, reason) for the caller's failures file;
the log names the count per reason and a sample of Ids.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import duckdb

from connector import ids, log

_log = log.get("trust_ladder.salesforce")

SKIPPED_TABLE = "sf_skipped"
SAMPLE = 10  # Ids named in a log line, per object and reason

# The columns a pulled activity's day may come from, per object ([activities] task_date / event_date).
_DAY_COLUMNS = {
    "Task": ("ActivityDate", "CompletedDateTime", "CreatedDate"),
    "Event": ("ActivityDateTime", "StartDateTime", "ActivityDate"),
}


class SkippedRow(NamedTuple):
    object: str
    id: str
    reason: str


def reset(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SKIPPED_TABLE} (object VARCHAR, id VARCHAR, reason VARCHAR)")


def note(con: duckdb.DuckDBPyConnection, obj: str, stage: str, fields: list[str], after: dt.datetime | None) -> None:
    """Add the unusable activities of this pull (in `stage`, text columns), changed after `after` (the previous
    watermark; None for a full pull), to `SKIPPED_TABLE`."""
    if obj not in _DAY_COLUMNS:
        return
    stamp = "CAST(replace(left(s.\"SystemModstamp\", 23), 'T', ' ') AS TIMESTAMP)"
    new = f"{stamp} > ?" if after is not None and "SystemModstamp" in fields else "true"
    params: list[object] = [obj]
    if new != "true" and after is not None:
        params.append(after.astimezone(dt.UTC).replace(tzinfo=None))
    day = [f"NULLIF(s.\"{c}\", '')" for c in _DAY_COLUMNS[obj] if c in fields]
    has_day = f"COALESCE({', '.join(day)}) IS NOT NULL" if day else "false"
    deleted = "COALESCE(lower(s.\"IsDeleted\"), 'false') = 'true'" if "IsDeleted" in fields else "false"
    con.execute(
        f'INSERT INTO {SKIPPED_TABLE} SELECT ?, s."Id", CASE '
        "WHEN NULLIF(s.\"WhoId\", '') IS NULL THEN 'no_who' "
        f"WHEN s.\"WhoId\" LIKE '{ids.LEAD}%' THEN 'lead' "
        f"WHEN s.\"WhoId\" NOT LIKE '{ids.CONTACT}%' THEN 'not_a_contact' "
        "WHEN c.\"Id\" IS NULL THEN 'unknown_contact' "
        "ELSE 'no_date' END "
        f'FROM {stage} s LEFT JOIN "Contact" c ON c."Id" = s."WhoId" '
        f'WHERE NOT ({deleted}) AND {new} AND (c."Id" IS NULL OR NOT ({has_day}))',
        params,
    )


class Summary(NamedTuple):
    per_object: dict[str, int]
    per_reason: dict[str, dict[str, int]]  # object -> reason -> count
    samples: dict[str, list[str]]  # object -> a few Ids, every reason mixed


def summarise(con: duckdb.DuckDBPyConnection) -> Summary:
    """Counts and samples; logs one line per object and reason."""
    per_object: dict[str, int] = {}
    per_reason: dict[str, dict[str, int]] = {}
    samples: dict[str, list[str]] = {}
    for obj, reason, count, sample in con.execute(
        f"SELECT object, reason, count(*), list(id ORDER BY id)[1:{SAMPLE}] FROM {SKIPPED_TABLE} "
        "GROUP BY ALL ORDER BY object, reason"
    ).fetchall():
        per_object[obj] = per_object.get(obj, 0) + int(count)
        per_reason.setdefault(obj, {})[reason] = int(count)
        samples[obj] = (samples.get(obj, []) + [str(i) for i in sample])[:SAMPLE]
        _log.warning(
            "salesforce.rows_skipped",
            object=obj,
            reason=reason,
            count=int(count),
            ids=[str(i) for i in sample],
            all_ids=f"{count} in the run's skipped list" if count > SAMPLE else "all named here",
        )
    return Summary(per_object, per_reason, samples)


def rows(con: duckdb.DuckDBPyConnection) -> list[SkippedRow]:
    """Every skipped activity of this run, for the caller's failures file."""
    return [
        SkippedRow(str(o), str(i), str(r))
        for o, i, r in con.execute(
            f"SELECT object, id, reason FROM {SKIPPED_TABLE} ORDER BY object, reason, id"
        ).fetchall()
    ]
