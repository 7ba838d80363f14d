"""Follow-up Tasks as the backends see them: the marker, the four tables a backend applies, and the diff.

The desired tasks (one per open flag) are built above the engine (connector.commands.follow_up); a backend only
compares them with the marked Tasks it holds (`diff`) and applies the result. See connector.commands.follow_up for
the policy (reopen, release, due dates).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

CREATE_TABLE = "tl_fu_create"  # cid, owner_id, flag_id, subject, due_date
UPDATE_TABLE = "tl_fu_update"  # task_id, subject, owner_id, due_date, ch_subject, ch_owner, ch_due
CLOSE_TABLE = "tl_fu_close"  # task_id, subject (the released one)
RELEASE_TABLE = "tl_fu_release"  # task_id, subject (the released one)

SUBJECT_MAX = 255  # Task.Subject is a 255-character string in Salesforce
MARK_LIKE = "%[TL:%"  # what every marked subject contains; also what the activity views leave out
# The marker at the end of a subject: the flag id (group 1) and whether it has been released (group 2).
_MARK_RE = r"\[TL:([a-z][a-z0-9_]*)(:cleared)?\]"
_ANY_MARK_RE = r"\s*\[TL:[^\]]*\]"


def marker(flag_id: str) -> str:
    return f"[TL:{flag_id}]"


def released_marker(flag_id: str) -> str:
    return f"[TL:{flag_id}:cleared]"


@dataclass(frozen=True)
class Diff:
    create: int
    update: int
    close: int
    release: int

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.close or self.release)


def diff(con: duckdb.DuckDBPyConnection, desired_table: str) -> Diff:
    """Compare the desired tasks with the marked tasks in the `Task` table of the contacts in `crm_contact`;
    fill the four tables the backend applies. Set-based; the same SQL for the local CRM and the mirror."""
    released = (
        f"concat_ws(' ', NULLIF(left(trim(regexp_replace(e.subject, '{_ANY_MARK_RE}', '', 'g')), "
        f"{SUBJECT_MAX} - 1 - length('[TL:' || e.flag_id || ':cleared]')), ''), "
        "'[TL:' || e.flag_id || ':cleared]')"
    )
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE tl_fu_existing AS
SELECT t."Id" AS task_id, t."WhoId" AS cid, t."OwnerId" AS owner_id, t."Subject" AS subject,
       t."ActivityDate" AS due_date, COALESCE(t."IsClosed", t."Status" = 'Completed', false) AS closed,
       regexp_extract(t."Subject", '{_MARK_RE}', 1) AS flag_id,
       regexp_extract(t."Subject", '{_MARK_RE}', 2) <> '' AS released, t."CreatedDate" AS created
FROM "Task" t
WHERE NOT COALESCE(t."IsDeleted", false) AND t."Subject" LIKE '{MARK_LIKE}'
  AND regexp_matches(t."Subject", '{_MARK_RE}') AND t."WhoId" IN (SELECT "Id" FROM crm_contact)
""")
    # The open, unreleased marked tasks; rn = 1 is the one kept, any other is a duplicate to close.
    active_open = (
        "(SELECT *, row_number() OVER (PARTITION BY cid, flag_id ORDER BY created NULLS LAST, task_id) "
        "AS rn FROM tl_fu_existing WHERE NOT released AND NOT closed)"
    )
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {CREATE_TABLE} AS
SELECT d.cid, d.owner_id, d.flag_id, d.subject, d.due_date FROM {desired_table} d
WHERE NOT EXISTS (SELECT 1 FROM tl_fu_existing e WHERE e.cid = d.cid AND e.flag_id = d.flag_id AND NOT e.released)
""")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {UPDATE_TABLE} AS
SELECT * FROM (
  SELECT e.task_id, d.subject, COALESCE(d.owner_id, e.owner_id) AS owner_id,
         COALESCE(e.due_date, d.due_date) AS due_date,
         e.subject IS DISTINCT FROM d.subject AS ch_subject,
         (d.owner_id IS NOT NULL AND e.owner_id IS DISTINCT FROM d.owner_id) AS ch_owner,
         (e.due_date IS NULL) AS ch_due
  FROM {desired_table} d JOIN {active_open} e ON e.cid = d.cid AND e.flag_id = d.flag_id AND e.rn = 1
) WHERE ch_subject OR ch_owner OR ch_due
""")
    wanted = f"EXISTS (SELECT 1 FROM {desired_table} d WHERE d.cid = e.cid AND d.flag_id = e.flag_id)"
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {CLOSE_TABLE} AS
SELECT e.task_id, {released} AS subject FROM {active_open} e WHERE e.rn > 1 OR NOT {wanted}
""")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {RELEASE_TABLE} AS
SELECT e.task_id, {released} AS subject FROM tl_fu_existing e WHERE NOT e.released AND e.closed AND NOT {wanted}
""")
    return Diff(*(_count(con, t) for t in (CREATE_TABLE, UPDATE_TABLE, CLOSE_TABLE, RELEASE_TABLE)))


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
