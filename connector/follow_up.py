"""Follow-up Tasks (optional, `[follow_up] enabled`): each open flag becomes one open Task for the contact's owner.

The subject is `subject_prefix` + the flag's own next step + the marker `[TL:<flag id>]`; the due date
(ActivityDate) is the run's as-of date + `due_in_days`. The marker, on a Task of the contact (WhoId), is how a
later run finds the task again, on the local CRM and in Salesforce alike: Subject is filterable in SOQL, and the
Task tables of both backends have it.

One set-based pass compares the desired tasks (built here from `tl_place`) with the marked tasks the backend
holds, and gives each backend four small tables to apply:
- create: an open flag with no marked task (open or closed) of its contact and flag;
- update: the open marked task of an open flag whose subject, owner or missing due date differ. A due date,
  once set, is never moved: one that slid every day would never fall due, and the owner may have changed it;
- close: an open marked task whose flag has cleared (and any duplicate beside the oldest one): Status
  Completed, and the marker becomes `[TL:<flag id>:cleared]`;
- release: a marked task the owner closed while its flag was open, once that flag has cleared: only the marker
  becomes `[TL:<flag id>:cleared]`.

Reopen policy: a task the owner closes while its flag is still open is the owner's decision. It is not reopened,
and no new task is created while that flag stays open. When the flag clears, the closed task is released, so
the flag opening again later gets a new task. Every decision is read from the tasks themselves, never from run
history, so a run killed half way converges on the next one.

Marked tasks (any Subject containing `[TL:`) are never activities for the ladder: the activity views leave them
out (`LocalCrm.prepare`, which the Salesforce mirror uses too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from connector.classify import as_of_sql
from connector.config import FollowUpSection
from connector.crm import FollowUpResult
from connector.evaluate import PLACE_TABLE, flag_column, template_sql
from connector.ruleset.compiler import AS_OF, RuleSet

if TYPE_CHECKING:
    from connector.crm import CrmBackend

DESIRED_TABLE = "tl_follow_up_desired"
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


def _str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_desired(con: duckdb.DuckDBPyConnection, rules: RuleSet, section: FollowUpSection, as_of: dt.date) -> int:
    """`tl_follow_up_desired`: one row per open flag of every placed contact, with the task it should have."""
    parts = []
    for flag in rules.flags:
        # Room is kept for the released marker, so releasing a task never pushes its subject past 255.
        room = max(0, SUBJECT_MAX - len(section.subject_prefix) - len(" " + released_marker(flag.id)))
        text = f"trim(regexp_replace({template_sql(flag.next_step, rules)}, '\\s+', ' ', 'g'))"
        subject = f"{_str(section.subject_prefix)} || left({text}, {room}) || {_str(' ' + marker(flag.id))}"
        parts.append(f'SELECT p.cid, c."OwnerId" AS owner_id, {_str(flag.id)} AS flag_id, {subject} AS subject, '
                     f"CAST({AS_OF} + {int(section.due_in_days)} AS DATE) AS due_date "
                     f'FROM {PLACE_TABLE} p LEFT JOIN crm_contact c ON c."Id" = p.cid '
                     f"WHERE p.{flag_column(flag.id)}")
    body = " UNION ALL ".join(parts) or (
        "SELECT NULL::VARCHAR AS cid, NULL::VARCHAR AS owner_id, NULL::VARCHAR AS flag_id, "
        "NULL::VARCHAR AS subject, NULL::DATE AS due_date WHERE false")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {DESIRED_TABLE} AS {body}".replace(AS_OF, as_of_sql(as_of)))
    return _count(con, DESIRED_TABLE)


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
    released = (f"concat_ws(' ', NULLIF(left(trim(regexp_replace(e.subject, '{_ANY_MARK_RE}', '', 'g')), "
                f"{SUBJECT_MAX} - 1 - length('[TL:' || e.flag_id || ':cleared]')), ''), "
                "'[TL:' || e.flag_id || ':cleared]')")
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
    active_open = ("(SELECT *, row_number() OVER (PARTITION BY cid, flag_id ORDER BY created NULLS LAST, task_id) "
                   "AS rn FROM tl_fu_existing WHERE NOT released AND NOT closed)")
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


def sync(crm: CrmBackend, rules: RuleSet, section: FollowUpSection, as_of: dt.date) -> FollowUpResult:
    """Build the desired tasks from this run's placement and let the backend make its tasks match them."""
    build_desired(crm.con, rules, section, as_of)
    return crm.sync_follow_ups(DESIRED_TABLE)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
